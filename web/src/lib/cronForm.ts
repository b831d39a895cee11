import type { CronJob, CronJobInput } from "@/api/types";

/** Form state of the cron job editor (all strings, as typed). */
export interface CronFormValues {
  name: string;
  project_id: string; // "" = global job
  type: "http" | "platform";
  schedule_cron: string;
  timezone: string;
  http_url: string;
  http_method: string;
  http_headers: string; // "Name: value" per line
  http_body: string; // JSON text or ""
  action: string;
  enabled: boolean;
  timeout_ms: string;
  retries: string;
  retry_backoff_ms: string;
  missed_run_policy: string;
}

export type CronFormErrors = Partial<Record<keyof CronFormValues, string>>;

export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

export function defaultCronValues(projectId?: string | null): CronFormValues {
  return {
    name: "",
    project_id: projectId ?? "",
    type: "http",
    schedule_cron: "*/5 * * * *",
    timezone: browserTimeZone(),
    http_url: "",
    http_method: "GET",
    http_headers: "",
    http_body: "",
    action: "backup",
    enabled: true,
    timeout_ms: "30000",
    retries: "0",
    retry_backoff_ms: "1000",
    missed_run_policy: "skip",
  };
}

export function headersToText(h: Record<string, string> | null | undefined): string {
  if (!h) return "";
  return Object.entries(h)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\n");
}

export function parseHeaders(text: string): { headers: Record<string, string>; error?: string } {
  const headers: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const idx = line.indexOf(":");
    if (idx <= 0) return { headers, error: `Line ${i + 1}: expected "Header-Name: value"` };
    const name = line.slice(0, idx).trim();
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) return { headers, error: `Line ${i + 1}: invalid header name` };
    headers[name] = line.slice(idx + 1).trim();
  }
  return { headers };
}

export function jobToValues(job: CronJob): CronFormValues {
  return {
    name: job.name,
    project_id: job.project_id ?? "",
    type: job.type,
    schedule_cron: job.schedule_cron,
    timezone: job.timezone,
    http_url: job.http_url ?? "",
    http_method: job.http_method ?? "GET",
    http_headers: headersToText(job.http_headers),
    http_body:
      job.http_body === null || job.http_body === undefined
        ? ""
        : typeof job.http_body === "string"
          ? job.http_body
          : JSON.stringify(job.http_body, null, 2),
    action: job.action ?? "backup",
    enabled: job.enabled,
    timeout_ms: String(job.timeout_ms ?? 30000),
    retries: String(job.retries ?? 0),
    retry_backoff_ms: String(job.retry_backoff_ms ?? 1000),
    missed_run_policy: job.missed_run_policy ?? "skip",
  };
}

const int = (s: string) => (/^\d+$/.test(s.trim()) ? Number(s.trim()) : NaN);

/** Validate and convert the form to the API payload. `initial` (when editing)
 * makes unchanged headers be left out, so masked values ("••••") are never sent back. */
export function valuesToInput(
  v: CronFormValues,
  initial?: CronFormValues,
): { input?: CronJobInput; errors: CronFormErrors } {
  const errors: CronFormErrors = {};
  if (!v.name.trim()) errors.name = "Give the job a name";
  if (!v.schedule_cron.trim()) errors.schedule_cron = "Enter a cron expression";
  if (!v.timezone.trim()) errors.timezone = "Choose a time zone";
  const timeout = int(v.timeout_ms);
  if (Number.isNaN(timeout) || timeout < 100) errors.timeout_ms = "Whole milliseconds, at least 100";
  const retries = int(v.retries);
  if (Number.isNaN(retries) || retries > 10) errors.retries = "0 to 10";
  const backoff = int(v.retry_backoff_ms);
  if (Number.isNaN(backoff)) errors.retry_backoff_ms = "Whole milliseconds";

  const input: CronJobInput = {
    name: v.name.trim(),
    project_id: v.project_id || null,
    type: v.type,
    schedule_cron: v.schedule_cron.trim(),
    timezone: v.timezone.trim(),
    enabled: v.enabled,
    timeout_ms: timeout,
    retries,
    retry_backoff_ms: backoff,
    missed_run_policy: v.missed_run_policy,
  };

  if (v.type === "http") {
    const url = v.http_url.trim();
    if (!url) errors.http_url = "Enter the URL to call";
    else if (!/^https?:\/\/[^\s]+$/i.test(url)) errors.http_url = "Must start with http:// or https://";
    input.http_url = url;
    input.http_method = v.http_method;
    if (!initial || v.http_headers !== initial.http_headers) {
      const h = parseHeaders(v.http_headers);
      if (h.error) errors.http_headers = h.error;
      input.http_headers = h.headers;
    }
    // The server masks a stored body; send it only when the admin changed it.
    if (initial && v.http_body === initial.http_body) {
      // unchanged: keep what is stored
    } else if (v.http_body.trim()) {
      try {
        input.http_body = JSON.parse(v.http_body);
      } catch {
        errors.http_body = "Body must be valid JSON";
      }
    } else {
      input.http_body = null;
    }
    input.action = null;
  } else {
    if (!v.action.trim()) errors.action = "Choose an action";
    input.action = v.action.trim();
    input.http_url = null;
  }
  return Object.keys(errors).length ? { errors } : { input, errors };
}

/** Map a server validation error's details.field to a form field. */
export function serverFieldToFormField(field: string | undefined | null): keyof CronFormValues | null {
  if (!field) return null;
  const map: Record<string, keyof CronFormValues> = {
    cron: "schedule_cron",
    schedule: "schedule_cron",
    schedule_cron: "schedule_cron",
    timezone: "timezone",
    tz: "timezone",
    url: "http_url",
    http_url: "http_url",
    http_method: "http_method",
    method: "http_method",
    http_headers: "http_headers",
    headers: "http_headers",
    http_body: "http_body",
    body: "http_body",
    name: "name",
    action: "action",
    timeout_ms: "timeout_ms",
    retries: "retries",
    retry_backoff_ms: "retry_backoff_ms",
    missed_run_policy: "missed_run_policy",
    project_id: "project_id",
  };
  return map[field] ?? null;
}
