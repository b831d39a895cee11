import { AtlasHubError, errorFromResponse } from "./errors.js";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** The gateway, e.g. `process.env.ATLASHUB_API_URL` (`https://api.example.com`). */
  url: string;
  /** A publishable (`ah_pub_…`) or secret (`ah_sec_…`) key of the project. */
  key: string;
  /** An end-user access token from `auth.signIn`: sent as `Authorization: Bearer …` so RLS policies apply. */
  accessToken?: string | null | undefined;
  /** Another `fetch` (tests, instrumentation); defaults to the global one at call time. */
  fetch?: FetchLike | undefined;
  /** Extra `fetch` options for every API call, e.g. `{ cache: "no-store" }` in Next.js server code. */
  fetchOptions?: RequestInit | undefined;
}

type Query = Array<[string, string]>;

export interface RequestSpec {
  method: string;
  path: string;
  query?: Query | undefined;
  body?: unknown;
  /** Overrides the client's access token for this call (`null`: send none). */
  accessToken?: string | null | undefined;
}

/** Sends API calls: base URL, `x-api-key`, bearer token, JSON in and out, errors as AtlasHubError. */
export class Transport {
  readonly options: ClientOptions;
  private readonly base: string;

  constructor(options: ClientOptions) {
    if (!options.url) throw new TypeError("createClient: url is required (e.g. process.env.ATLASHUB_API_URL)");
    if (!options.key) throw new TypeError("createClient: key is required (a publishable or secret key)");
    this.options = options;
    this.base = options.url.replace(/\/+$/, "");
  }

  url(path: string, query?: Query): string {
    const qs = query && query.length > 0 ? `?${new URLSearchParams(query).toString()}` : "";
    return `${this.base}${path}${qs}`;
  }

  /** The raw answer of an API call; throws AtlasHubError on any non-2xx status. */
  async send(spec: RequestSpec): Promise<Response> {
    const headers: Record<string, string> = { "x-api-key": this.options.key };
    const token = spec.accessToken === undefined ? this.options.accessToken : spec.accessToken;
    if (token) headers["authorization"] = `Bearer ${token}`;
    const init: RequestInit = { ...this.options.fetchOptions, method: spec.method };
    if (spec.body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(spec.body);
    }
    init.headers = { ...toRecord(this.options.fetchOptions?.headers), ...headers };
    const res = await this.fetch(this.url(spec.path, spec.query), init);
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  /** An API call whose answer is JSON (or nothing, as `null`, for 204). */
  async json<T>(spec: RequestSpec): Promise<T> {
    const res = await this.send(spec);
    if (res.status === 204) return null as T;
    return (await res.json()) as T;
  }

  /** `fetch` with network failures turned into AtlasHubError (status 0, code `network_error`). */
  async fetch(url: string, init: RequestInit): Promise<Response> {
    const doFetch: FetchLike = this.options.fetch ?? ((input, i) => globalThis.fetch(input, i));
    try {
      return await doFetch(url, init);
    } catch (err) {
      const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      throw new AtlasHubError(0, "network_error", `cannot reach ${new URL(url).origin}: ${reason}`, null);
    }
  }
}

function toRecord(headers: HeadersInit | undefined): Record<string, string> {
  if (!headers) return {};
  const out: Record<string, string> = {};
  new Headers(headers).forEach((value, name) => {
    out[name] = value;
  });
  return out;
}
