import { errorFromResponse } from "./errors.js";
import type { Transport } from "./http.js";

export interface SignedUploadRequest {
  /** A logical bucket of the project (`uploads` and `private` exist from the start). */
  bucket: string;
  /** Path inside the bucket, e.g. `notes/${crypto.randomUUID()}.png`. */
  path: string;
  /** `type/subtype`; the upload must send exactly this `Content-Type`. */
  contentType: string;
  /** Largest accepted body in bytes (1 byte to 1 GiB). */
  maxSize: number;
}

export interface SignedUpload {
  /** `<bucket>/<path>`: store this in your table, not the URL. */
  objectKey: string;
  uploadUrl: string;
  expiresIn: number;
}

export interface SignedDownload {
  downloadUrl: string;
  expiresIn: number;
}

export interface StorageObject {
  key: string;
  size: number;
  etag: string;
  contentType: string;
  lastModified: string;
}

export interface ObjectList {
  objects: StorageObject[];
  /** Pass back as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null;
}

export interface ListOptions {
  bucket: string;
  /** Relative to the bucket, e.g. `notes/`. */
  prefix?: string;
  /** 1–1000, default 100. */
  limit?: number;
  cursor?: string | null;
}

/** Bytes `storage.upload` can send (a `File` from an `<input type="file">` is a Blob). */
export type UploadBody = Blob | ArrayBuffer | ArrayBufferView | string | ReadableStream<Uint8Array>;

/** `/v1/storage`: private files through signed, expiring URLs. */
export class StorageClient {
  constructor(private readonly transport: Transport) {}

  /** `POST /v1/storage/signed-upload`: a URL the browser (or anyone holding it) can `PUT` one object to. */
  signedUpload(request: SignedUploadRequest): Promise<SignedUpload> {
    const { bucket, path, contentType, maxSize } = request;
    return this.transport.json<SignedUpload>({
      method: "POST",
      path: "/v1/storage/signed-upload",
      body: { bucket, path, contentType, maxSize },
    });
  }

  /**
   * `PUT` the bytes to an `uploadUrl` with the signed content type. The URL is the credential:
   * no API key is sent, so this works in the browser with a URL your server handed out.
   */
  async upload(uploadUrl: string, body: UploadBody, contentType: string): Promise<void> {
    const init: RequestInit & { duplex?: "half" } = {
      method: "PUT",
      body: body as BodyInit,
      headers: { "content-type": contentType },
    };
    if (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) init.duplex = "half";
    const res = await this.transport.fetch(uploadUrl, init);
    if (!res.ok) throw await errorFromResponse(res);
    await res.body?.cancel();
  }

  /** `GET /v1/storage/signed-download`: a URL that serves the object until it expires. */
  signedDownload(bucket: string, objectKey: string): Promise<SignedDownload> {
    return this.transport.json<SignedDownload>({
      method: "GET",
      path: "/v1/storage/signed-download",
      query: [
        ["bucket", bucket],
        ["objectKey", objectKey],
      ],
    });
  }

  /** `GET /v1/storage/list` (secret key only): one page of objects under a prefix. */
  list(options: ListOptions): Promise<ObjectList> {
    const query: Array<[string, string]> = [["bucket", options.bucket]];
    if (options.prefix) query.push(["prefix", options.prefix]);
    if (options.limit !== undefined) query.push(["limit", String(options.limit)]);
    if (options.cursor) query.push(["cursor", options.cursor]);
    return this.transport.json<ObjectList>({ method: "GET", path: "/v1/storage/list", query });
  }

  /** `DELETE /v1/storage/object` (secret key only); deleting a missing object is not an error. */
  remove(bucket: string, objectKey: string): Promise<{ deleted: boolean }> {
    return this.transport.json<{ deleted: boolean }>({
      method: "DELETE",
      path: "/v1/storage/object",
      query: [
        ["bucket", bucket],
        ["objectKey", objectKey],
      ],
    });
  }
}
