/**
 * AtlasHub's public API from TypeScript: `/v1/db`, `/v1/storage`, `/v1/auth`.
 * Fetch-based, no dependencies; Node 18+, browsers, Next.js server code.
 *
 * ```ts
 * const atlas = createClient({ url: process.env.ATLASHUB_API_URL!, key: process.env.ATLASHUB_SECRET_KEY! });
 * const notes = await atlas.db.from<Note>("notes").select("id,body").order("id", { ascending: false }).limit(20);
 * ```
 */
import { AuthClient } from "./auth.js";
import { DbClient } from "./db.js";
import { type ClientOptions, Transport } from "./http.js";
import { StorageClient } from "./storage.js";

export class AtlasHubClient {
  readonly db: DbClient;
  readonly storage: StorageClient;
  readonly auth: AuthClient;
  private readonly transport: Transport;

  constructor(options: ClientOptions) {
    this.transport = new Transport(options);
    this.db = new DbClient(this.transport);
    this.storage = new StorageClient(this.transport);
    this.auth = new AuthClient(this.transport);
  }

  /** The same client acting as an end user (`Authorization: Bearer <accessToken>`), or as nobody with `null`. */
  withAccessToken(accessToken: string | null): AtlasHubClient {
    return new AtlasHubClient({ ...this.transport.options, accessToken });
  }
}

/** A client for one project: `url` is the gateway, `key` its publishable or secret key. */
export function createClient(options: ClientOptions): AtlasHubClient {
  return new AtlasHubClient(options);
}

export { AtlasHubError } from "./errors.js";
export type { ClientOptions, FetchLike } from "./http.js";
export type { ColumnInfo, FilterValue, Returning, Row, TableInfo } from "./db.js";
export { DbClient, SelectQuery, TableRef, WriteQuery, inListItem } from "./db.js";
export type {
  ListOptions,
  ObjectList,
  SignedDownload,
  SignedUpload,
  SignedUploadRequest,
  StorageObject,
  UploadBody,
} from "./storage.js";
export { StorageClient } from "./storage.js";
export type { Credentials, Session, User } from "./auth.js";
export { AuthClient } from "./auth.js";
