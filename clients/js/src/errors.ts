/** Every failure of the client: an AtlasHub error answer, a failed upload, or no answer at all. */
export class AtlasHubError extends Error {
  /** HTTP status; 0 when no answer arrived (network failure, DNS, refused connection). */
  readonly status: number;
  /** AtlasHub's error code (`invalid_api_key`, `filter_required`, …), `network_error`, or `http_<status>`. */
  readonly code: string;
  /** `error.details` of the answer: often `{ field }` or `{ parameter }` naming the culprit. */
  readonly details: unknown;
  /** Seconds to wait before retrying, from `Retry-After` (429 answers). */
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string, details: unknown = null, retryAfter: number | null = null) {
    super(message);
    this.name = "AtlasHubError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

type ErrorBody = { error?: { code?: unknown; message?: unknown; details?: unknown } };

/** The error of a non-2xx answer: AtlasHub's `{"error": {code, message, details}}`, or a generic one. */
export async function errorFromResponse(res: Response): Promise<AtlasHubError> {
  const retry = res.headers.get("retry-after");
  const retryAfter = retry !== null && /^\d+$/.test(retry) ? Number(retry) : null;
  const text = await res.text().catch(() => "");
  let parsed: ErrorBody | null = null;
  try {
    parsed = JSON.parse(text) as ErrorBody;
  } catch {
    parsed = null;
  }
  const error = parsed?.error;
  if (error && typeof error.code === "string") {
    const message = typeof error.message === "string" ? error.message : error.code;
    return new AtlasHubError(res.status, error.code, message, error.details ?? null, retryAfter);
  }
  const snippet = text.trim().slice(0, 200);
  const message = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}${snippet ? `: ${snippet}` : ""}`;
  return new AtlasHubError(res.status, `http_${res.status}`, message, null, retryAfter);
}
