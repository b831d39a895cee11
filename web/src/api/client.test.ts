import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  ApiError,
  api,
  buildUrl,
  onUnauthorized,
  parseError,
  setCsrfToken,
  setDevToken,
  getDevToken,
  xhrUpload,
} from "./client";
import { sessionApi } from "./session";
import { storageApi } from "./storage";

type FetchArgs = [RequestInfo | URL, RequestInit | undefined];

function mockFetch(...responses: Response[]) {
  const fn = vi.fn<(...a: FetchArgs) => Promise<Response>>();
  for (const r of responses) fn.mockResolvedValueOnce(r);
  vi.stubGlobal("fetch", fn);
  return fn;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

const headersOf = (call: FetchArgs) => (call[1]?.headers ?? {}) as Record<string, string>;

describe("admin API client", () => {
  beforeEach(() => {
    setCsrfToken(null);
    setDevToken(null);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("turns the error envelope into an ApiError carrying code, message and details", async () => {
    mockFetch(json({ error: { code: "sql_syntax_error", message: 'syntax error at or near "selec"', details: { position: 1 } } }, 400));
    const err = (await api.post("/projects/p1/sql", { sql: "selec 1" }).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.code).toBe("sql_syntax_error");
    expect(err.message).toBe('syntax error at or near "selec"');
    expect(err.detail("position")).toBe(1);
  });

  it("keeps a readable message when the error body is not JSON (proxy page)", async () => {
    const err = await parseError(new Response("<html>Bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    expect(err.status).toBe(502);
    expect(err.code).toBe("http_502");
    expect(err.message).toBe("Bad Gateway");
  });

  it("reports a network failure as an ApiError with code network_error", async () => {
    vi.stubGlobal("fetch", vi.fn().mockRejectedValue(new TypeError("Failed to fetch")));
    const err = (await api.get("/overview").catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("network_error");
  });

  it("sends x-csrf-token on state-changing requests only", async () => {
    const f = mockFetch(json({ ok: 1 }), json({ ok: 1 }), new Response(null, { status: 204 }));
    setCsrfToken("csrf-123");
    await api.get("/projects");
    await api.post("/projects", { name: "a" });
    await api.del("/projects/x", { confirm: "x" });
    expect(headersOf(f.mock.calls[0])["x-csrf-token"]).toBeUndefined();
    expect(headersOf(f.mock.calls[1])["x-csrf-token"]).toBe("csrf-123");
    expect(headersOf(f.mock.calls[1])["content-type"]).toBe("application/json");
    expect(f.mock.calls[1][1]?.body).toBe(JSON.stringify({ name: "a" }));
    expect(headersOf(f.mock.calls[2])["x-csrf-token"]).toBe("csrf-123");
    expect(f.mock.calls[2][1]?.method).toBe("DELETE");
  });

  it("remembers the csrf token from GET /session", async () => {
    const f = mockFetch(
      json({ authenticated: true, mode: "local", user: { name: "admin" }, csrf_token: "tok-9", setup_required: false }),
      json({}),
    );
    await sessionApi.get();
    await api.post("/cron-jobs/1/run");
    expect(headersOf(f.mock.calls[1])["x-csrf-token"]).toBe("tok-9");
  });

  it("sends the dev admin token (kept in sessionStorage) on every request", async () => {
    const f = mockFetch(json({}), json({}));
    setDevToken("dev-abc");
    expect(sessionStorage.getItem("atlashub.devAdminToken")).toBe("dev-abc");
    await api.get("/overview");
    await api.patch("/settings", { a: 1 });
    expect(headersOf(f.mock.calls[0])["x-dev-admin-token"]).toBe("dev-abc");
    expect(headersOf(f.mock.calls[1])["x-dev-admin-token"]).toBe("dev-abc");
    setDevToken(null);
    expect(getDevToken()).toBeNull();
  });

  it("uses same-origin credentials so the session cookie is sent", async () => {
    const f = mockFetch(json({}));
    await api.get("/overview");
    expect(f.mock.calls[0][1]?.credentials).toBe("same-origin");
  });

  it("notifies 401 listeners, except for quiet probes", async () => {
    const listener = vi.fn();
    const off = onUnauthorized(listener);
    mockFetch(
      json({ error: { code: "unauthorized", message: "Sign in" } }, 401),
      json({ error: { code: "unauthorized", message: "Sign in" } }, 401),
    );
    await api.get("/projects").catch(() => {});
    expect(listener).toHaveBeenCalledTimes(1);
    await api.get("/session", undefined, { quiet401: true }).catch(() => {});
    expect(listener).toHaveBeenCalledTimes(1);
    off();
  });

  it("returns undefined for 204 responses", async () => {
    mockFetch(new Response(null, { status: 204 }));
    await expect(api.del("/session")).resolves.toBeUndefined();
  });

  it("builds URLs under /admin/api and drops empty query values", () => {
    expect(buildUrl("/audit", { project: "", limit: 50, before: undefined })).toBe("/admin/api/audit?limit=50");
    expect(buildUrl("/projects/a%20b/tables", { order: "name.asc" })).toBe("/admin/api/projects/a%20b/tables?order=name.asc");
  });

  it("storage.upload asks for a signed URL then PUTs the file with progress events", async () => {
    const f = mockFetch(json({ objectKey: "docs/a.txt", uploadUrl: "http://127.0.0.1:8080/v1/storage/signed/abc", expiresIn: 60 }));
    setCsrfToken("c1");
    const sent: { method?: string; url?: string; headers: Record<string, string>; body?: unknown } = { headers: {} };
    class FakeXHR {
      upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };
      onload: (() => void) | null = null;
      onerror: (() => void) | null = null;
      onabort: (() => void) | null = null;
      status = 0;
      statusText = "";
      responseText = "";
      withCredentials = false;
      open(m: string, u: string) {
        sent.method = m;
        sent.url = u;
      }
      setRequestHeader(k: string, v: string) {
        sent.headers[k] = v;
      }
      abort() {}
      send(body: unknown) {
        sent.body = body;
        this.upload.onprogress?.({ lengthComputable: true, loaded: 5, total: 10 } as ProgressEvent);
        this.status = 200;
        this.onload?.();
      }
    }
    vi.stubGlobal("XMLHttpRequest", FakeXHR);
    const file = new File(["0123456789"], "a.txt", { type: "text/plain" });
    const progress: number[] = [];
    await storageApi.upload("p1", "docs", "a.txt", file, (p) => progress.push(p.percent));
    const [, init] = f.mock.calls[0];
    expect(JSON.parse(String(init?.body))).toEqual({ path: "a.txt", contentType: "text/plain", maxSize: 10 });
    expect(sent.method).toBe("PUT");
    expect(sent.url).toBe("http://127.0.0.1:8080/v1/storage/signed/abc");
    expect(sent.headers["content-type"]).toBe("text/plain");
    // The signed URL carries its own authorization: no admin credentials leak to it.
    expect(sent.headers["x-csrf-token"]).toBeUndefined();
    expect(sent.body).toBe(file);
    expect(progress).toEqual([50, 100]);
  });

  it("xhrUpload rejects with the server's error message", async () => {
    class FailXHR {
      upload = { onprogress: null };
      onload: (() => void) | null = null;
      onerror = null;
      onabort = null;
      status = 0;
      statusText = "";
      responseText = "";
      withCredentials = false;
      open() {}
      setRequestHeader() {}
      send() {
        this.status = 413;
        this.statusText = "Payload Too Large";
        this.responseText = JSON.stringify({ error: { code: "too_large", message: "File exceeds the 50 MB limit" } });
        this.onload?.();
      }
    }
    vi.stubGlobal("XMLHttpRequest", FailXHR);
    const err = (await xhrUpload({ url: "/x", body: new Blob(["x"]) }).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(413);
    expect(err.message).toBe("File exceeds the 50 MB limit");
  });
});
