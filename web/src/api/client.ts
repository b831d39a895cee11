/** Typed HTTP client for the AtlasHub admin API (/admin/api).
 *
 * - The browser sends the session cookie (same origin, credentials: "same-origin").
 * - State-changing requests (POST/PUT/PATCH/DELETE) carry `x-csrf-token` with the
 *   token from GET /admin/api/session.
 * - In dev mode the sign-in page accepts a dev admin token; it is kept in
 *   sessionStorage and sent as `x-dev-admin-token` on every request.
 * - Every error body is {"error": {"code","message","details"}}; it becomes an ApiError.
 */

export const API_BASE = "/admin/api";
const DEV_TOKEN_KEY = "atlashub.devAdminToken";

export interface ApiErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details ?? null;
  }

  /** details.field / details.position etc., typed loosely. */
  detail<T = unknown>(name: string): T | undefined {
    const d = this.details;
    if (d && typeof d === "object" && name in (d as Record<string, unknown>)) {
      return (d as Record<string, unknown>)[name] as T;
    }
    return undefined;
  }

  get isUnauthorized() {
    return this.status === 401;
  }
}

/** Human message for anything thrown by the client or by fetch itself. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message || "Unexpected error";
  return String(err ?? "Unexpected error");
}

let csrfToken: string | null = null;

export function setCsrfToken(token: string | null | undefined) {
  csrfToken = token ?? null;
}
export function getCsrfToken(): string | null {
  return csrfToken;
}

export function getDevToken(): string | null {
  try {
    return sessionStorage.getItem(DEV_TOKEN_KEY);
  } catch {
    return null;
  }
}
export function setDevToken(token: string | null) {
  try {
    if (token) sessionStorage.setItem(DEV_TOKEN_KEY, token);
    else sessionStorage.removeItem(DEV_TOKEN_KEY);
  } catch {
    /* ignore */
  }
}

type UnauthorizedListener = () => void;
const unauthorizedListeners = new Set<UnauthorizedListener>();
/** Called when any request gets a 401 (session expired): the app goes to sign-in. */
export function onUnauthorized(fn: UnauthorizedListener): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Headers every request carries (auth), plus CSRF for unsafe methods. */
export function authHeaders(method: string): Record<string, string> {
  const h: Record<string, string> = {};
  const dev = getDevToken();
  if (dev) h["x-dev-admin-token"] = dev;
  if (UNSAFE.has(method.toUpperCase()) && csrfToken) h["x-csrf-token"] = csrfToken;
  return h;
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function buildUrl(path: string, query?: Query): string {
  const url = path.startsWith("/admin/") ? path : `${API_BASE}${path.startsWith("/") ? "" : "/"}${path}`;
  if (!query) return url;
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    qs.set(k, String(v));
  }
  const s = qs.toString();
  return s ? `${url}?${s}` : url;
}

/** Encode one path segment (project ids, table and bucket names). */
export const seg = (s: string | number) => encodeURIComponent(String(s));

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Raw body (File/Blob) sent as-is, e.g. table import. */
  rawBody?: BodyInit;
  contentType?: string;
  signal?: AbortSignal;
  /** Don't notify unauthorized listeners (used by the session probe itself). */
  quiet401?: boolean;
}

export async function parseError(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = res.statusText || `Request failed with status ${res.status}`;
  let details: unknown = null;
  try {
    const text = await res.text();
    if (text) {
      try {
        const body = JSON.parse(text);
        const e = body && typeof body === "object" ? (body as { error?: Partial<ApiErrorBody> }).error : undefined;
        if (e && typeof e === "object") {
          if (typeof e.code === "string") code = e.code;
          if (typeof e.message === "string" && e.message) message = e.message;
          details = e.details ?? null;
        }
      } catch {
        // Not JSON (proxy error page…): keep the status text, never dump HTML.
        if (text.length < 200 && !/[<>]/.test(text)) message = text;
      }
    }
  } catch {
    /* body unreadable */
  }
  return new ApiError(res.status, code, message, details);
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json", ...authHeaders(method) };
  let body: BodyInit | undefined;
  if (opts.rawBody !== undefined) {
    body = opts.rawBody;
    if (opts.contentType) headers["content-type"] = opts.contentType;
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  let res: Response;
  try {
    res = await fetch(buildUrl(path, opts.query), {
      method,
      headers,
      body,
      credentials: "same-origin",
      signal: opts.signal,
    });
  } catch (err) {
    if ((err as { name?: string })?.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "Cannot reach the AtlasHub server. Check that the daemon is running.");
  }
  if (!res.ok) {
    const err = await parseError(res);
    if (res.status === 401 && !opts.quiet401) unauthorizedListeners.forEach((fn) => fn());
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, "invalid_response", "The server returned an invalid response.");
  }
}

export const api = {
  get: <T>(path: string, query?: Query, opts?: Omit<RequestOptions, "query">) =>
    request<T>("GET", path, { ...opts, query }),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>("POST", path, { ...opts, body }),
  patch: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>("PATCH", path, { ...opts, body }),
  put: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>("PUT", path, { ...opts, body }),
  del: <T = void>(path: string, body?: unknown, opts?: RequestOptions) =>
    request<T>("DELETE", path, { ...opts, body }),
};

export interface UploadProgress {
  loaded: number;
  total: number;
  /** 0..100 */
  percent: number;
}

export interface XhrUploadOptions {
  method?: string;
  url: string;
  body: Blob;
  headers?: Record<string, string>;
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
  /** Send admin auth headers (cookie is sent anyway for same-origin). */
  withAuth?: boolean;
  withCredentials?: boolean;
}

/** Upload with XMLHttpRequest (fetch has no upload progress events). Resolves with
 * the parsed JSON body (or null) and rejects with ApiError. */
export function xhrUpload<T = unknown>(opts: XhrUploadOptions): Promise<T> {
  const method = opts.method ?? "PUT";
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, opts.url, true);
    xhr.withCredentials = !!opts.withCredentials;
    const headers = { ...(opts.withAuth ? authHeaders(method) : {}), ...(opts.headers ?? {}) };
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (!opts.onProgress) return;
      const total = e.lengthComputable ? e.total : opts.body.size;
      opts.onProgress({ loaded: e.loaded, total, percent: total ? Math.min(100, (e.loaded / total) * 100) : 0 });
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        opts.onProgress?.({ loaded: opts.body.size, total: opts.body.size, percent: 100 });
        const text = xhr.responseText;
        if (!text) return resolve(null as T);
        try {
          resolve(JSON.parse(text) as T);
        } catch {
          resolve(null as T);
        }
      } else {
        const res = new Response(xhr.responseText || null, { status: xhr.status, statusText: xhr.statusText });
        parseError(res).then(reject, () => reject(new ApiError(xhr.status, `http_${xhr.status}`, "Upload failed")));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "Upload failed: the server could not be reached."));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "Upload cancelled."));
    if (opts.signal) {
      if (opts.signal.aborted) return xhr.abort();
      opts.signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.send(opts.body);
  });
}

/** Start a browser download of an admin API resource. With a cookie session a
 * plain link is enough; with a dev admin token (sent as a header) the file is
 * fetched into a Blob first. */
export async function downloadFromApi(path: string, query?: Query, filename?: string): Promise<void> {
  const url = buildUrl(path, query);
  if (!getDevToken()) {
    triggerDownload(url, filename);
    return;
  }
  const res = await fetch(url, { headers: authHeaders("GET"), credentials: "same-origin" });
  if (!res.ok) throw await parseError(res);
  const blob = await res.blob();
  const objectUrl = URL.createObjectURL(blob);
  const disp = res.headers.get("content-disposition") ?? "";
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disp);
  triggerDownload(objectUrl, filename ?? (m ? decodeURIComponent(m[1]) : undefined));
  setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
}

export function triggerDownload(url: string, filename?: string) {
  const a = document.createElement("a");
  a.href = url;
  if (filename) a.download = filename;
  else a.setAttribute("download", "");
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
}

/** Objects larger than this open in a new tab instead of being buffered in memory. */
const MAX_BUFFERED_DOWNLOAD = 100 * 1024 * 1024;

/** Save a signed URL of another origin (the gateway or the object store) as a file.
 *
 * Browsers ignore `<a download>` across origins and navigate to the URL instead, which
 * would replace the dashboard with the object itself. The bytes are fetched (signed URLs
 * answer CORS) and saved from a blob URL under `filename`; a large object, or a store that
 * refuses CORS, opens in a new tab so the dashboard stays where it is. */
export async function downloadSignedUrl(url: string, filename?: string, size?: number | null): Promise<void> {
  const openInNewTab = () => window.open(url, "_blank", "noopener");
  if (size !== undefined && size !== null && size > MAX_BUFFERED_DOWNLOAD) {
    openInNewTab();
    return;
  }
  let res: Response;
  try {
    res = await fetch(url, { credentials: "omit" });
  } catch {
    openInNewTab();
    return;
  }
  if (!res.ok) throw await parseError(res);
  const objectUrl = URL.createObjectURL(await res.blob());
  triggerDownload(objectUrl, filename);
  setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
}
