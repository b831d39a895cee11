import { useEffect, useMemo, useRef, useState } from "react";
import { CalendarClock, Loader2 } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Textarea } from "@/components/ui/textarea";
import { Switch } from "@/components/ui/switch";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "@/components/ui/select";
import { Sheet, SheetBody, SheetContent, SheetDescription, SheetFooter, SheetHeader, SheetTitle } from "@/components/ui/sheet";
import { Alert, AlertDescription } from "@/components/ui/alert";
import { ApiError, cronApi, errorMessage, type CronJob, type Project } from "@/api";
import { createPreviewController, IDLE_PREVIEW, type PreviewState } from "@/lib/cronPreview";
import {
  defaultCronValues,
  jobToValues,
  serverFieldToFormField,
  valuesToInput,
  type CronFormErrors,
  type CronFormValues,
} from "@/lib/cronForm";
import { formatDateTime, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

const PRESETS = [
  { label: "Every 5 min", cron: "*/5 * * * *" },
  { label: "Hourly", cron: "0 * * * *" },
  { label: "Daily 03:00", cron: "0 3 * * *" },
  { label: "Weekly Mon", cron: "0 6 * * 1" },
];

// Suggestions only; the node's own list is GET /admin/api/cron-jobs/actions.
const PLATFORM_ACTIONS = [
  "backup_project",
  "backup_control_plane",
  "apply_retention",
  "clean_expired_tokens",
  "cleanup_runs",
];

function timeZones(): string[] {
  try {
    const f = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf;
    if (f) return ["UTC", ...f("timeZone").filter((z) => z !== "UTC")];
  } catch {
    /* ignore */
  }
  return ["UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"];
}

function Field({
  label,
  htmlFor,
  error,
  hint,
  children,
  className,
  testId,
}: {
  label: string;
  htmlFor?: string;
  error?: string;
  hint?: React.ReactNode;
  children: React.ReactNode;
  className?: string;
  testId?: string;
}) {
  return (
    <div className={cn("grid gap-1.5", className)}>
      <Label htmlFor={htmlFor}>{label}</Label>
      {children}
      {error ? (
        <p className="text-xs text-destructive" data-testid={testId ? `${testId}-error` : undefined}>
          {error}
        </p>
      ) : hint ? (
        <p className="text-xs text-muted-foreground">{hint}</p>
      ) : null}
    </div>
  );
}

export function CronFormSheet({
  open,
  onOpenChange,
  job,
  projectId,
  projects,
  onSaved,
}: {
  open: boolean;
  onOpenChange: (o: boolean) => void;
  job?: CronJob | null;
  /** Fixed project (project page) — hides the project picker. */
  projectId?: string | null;
  projects?: Project[];
  onSaved: (job: CronJob) => void;
}) {
  const initial = useMemo(() => (job ? jobToValues(job) : defaultCronValues(projectId)), [job, projectId]);
  const [v, setV] = useState<CronFormValues>(initial);
  const [errors, setErrors] = useState<CronFormErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [preview, setPreview] = useState<PreviewState>(IDLE_PREVIEW);
  const controller = useRef<ReturnType<typeof createPreviewController> | null>(null);
  const zones = useMemo(timeZones, []);

  useEffect(() => {
    if (open) {
      setV(initial);
      setErrors({});
      setFormError(null);
    }
  }, [open, initial]);

  useEffect(() => {
    const c = createPreviewController((cron, tz, signal) => cronApi.preview(cron, tz, 5, signal), setPreview);
    controller.current = c;
    return () => c.dispose();
  }, []);

  useEffect(() => {
    if (open) controller.current?.update(v.schedule_cron, v.timezone);
  }, [open, v.schedule_cron, v.timezone]);

  const set = <K extends keyof CronFormValues>(k: K, value: CronFormValues[K]) => {
    setV((prev) => ({ ...prev, [k]: value }));
    setErrors((e) => ({ ...e, [k]: undefined }));
  };

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const { input, errors: errs } = valuesToInput(v, job ? initial : undefined);
    if (!input) {
      setErrors(errs);
      return;
    }
    setBusy(true);
    setFormError(null);
    try {
      const saved = job ? await cronApi.update(job.id, input) : await cronApi.create(input);
      onSaved(saved);
    } catch (err) {
      const field = err instanceof ApiError ? serverFieldToFormField(err.detail<string>("field")) : null;
      if (field) setErrors((x) => ({ ...x, [field]: errorMessage(err) }));
      else setFormError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  const cronError = errors.schedule_cron ?? preview.fieldErrors.schedule_cron;
  const tzError = errors.timezone ?? preview.fieldErrors.timezone;

  return (
    <Sheet open={open} onOpenChange={(o) => !busy && onOpenChange(o)}>
      <SheetContent className="p-0 sm:max-w-xl" data-testid="cron-form-sheet">
        <form onSubmit={submit} className="flex h-full flex-col" data-testid="cron-form" noValidate>
          <SheetHeader>
            <SheetTitle>{job ? `Edit ${job.name}` : "New cron job"}</SheetTitle>
            <SheetDescription>Runs on the master node. HTTP targets must be on the allowlist in settings.</SheetDescription>
          </SheetHeader>
          <SheetBody className="space-y-4 py-4">
            <div className="grid grid-cols-2 gap-3">
              <Field label="Name" htmlFor="cron-name" error={errors.name} testId="cron-name" className="col-span-2">
                <Input
                  id="cron-name"
                  value={v.name}
                  onChange={(e) => set("name", e.target.value)}
                  placeholder="nightly-report"
                  aria-invalid={!!errors.name || undefined}
                  data-testid="cron-name"
                />
              </Field>
              {!projectId && (
                <Field label="Project" error={errors.project_id} testId="cron-project">
                  <Select value={v.project_id || "__global"} onValueChange={(x) => set("project_id", x === "__global" ? "" : x)}>
                    <SelectTrigger data-testid="cron-project">
                      <SelectValue />
                    </SelectTrigger>
                    <SelectContent>
                      <SelectItem value="__global">Global (platform)</SelectItem>
                      {(projects ?? []).map((p) => (
                        <SelectItem key={p.id} value={p.id}>
                          {p.name}
                        </SelectItem>
                      ))}
                    </SelectContent>
                  </Select>
                </Field>
              )}
              <Field label="Type" className={projectId ? "col-span-2" : undefined}>
                <Select value={v.type} onValueChange={(x) => set("type", x as "http" | "platform")}>
                  <SelectTrigger data-testid="cron-type">
                    <SelectValue />
                  </SelectTrigger>
                  <SelectContent>
                    <SelectItem value="http">HTTP request</SelectItem>
                    <SelectItem value="platform">Platform action</SelectItem>
                  </SelectContent>
                </Select>
              </Field>
            </div>

            <div className="rounded-lg border p-3">
              <div className="grid grid-cols-5 gap-3">
                <Field label="Schedule (cron)" htmlFor="cron-schedule" error={cronError} testId="cron-schedule" className="col-span-3">
                  <Input
                    id="cron-schedule"
                    className="font-mono"
                    value={v.schedule_cron}
                    onChange={(e) => set("schedule_cron", e.target.value)}
                    aria-invalid={!!cronError || undefined}
                    spellCheck={false}
                    data-testid="cron-schedule"
                  />
                </Field>
                <Field label="Time zone" htmlFor="cron-timezone" error={tzError} testId="cron-timezone" className="col-span-2">
                  <Input
                    id="cron-timezone"
                    list="cron-tz-list"
                    value={v.timezone}
                    onChange={(e) => set("timezone", e.target.value)}
                    aria-invalid={!!tzError || undefined}
                    data-testid="cron-timezone"
                  />
                  <datalist id="cron-tz-list">
                    {zones.map((z) => (
                      <option key={z} value={z} />
                    ))}
                  </datalist>
                </Field>
              </div>
              <div className="mt-2 flex flex-wrap gap-1">
                {PRESETS.map((p) => (
                  <Button
                    key={p.cron}
                    type="button"
                    variant="secondary"
                    size="sm"
                    className="h-6 px-2 text-2xs"
                    onClick={() => set("schedule_cron", p.cron)}
                  >
                    {p.label}
                  </Button>
                ))}
              </div>
              <div className="mt-3" data-testid="cron-preview" data-status={preview.status}>
                <div className="mb-1 flex items-center gap-1.5 text-xs font-medium text-muted-foreground">
                  <CalendarClock className="h-3.5 w-3.5" /> Next runs
                  {preview.status === "loading" && <Loader2 className="h-3 w-3 animate-spin" />}
                </div>
                {preview.status === "ok" && preview.runs.length > 0 ? (
                  <ol className="grid gap-0.5 font-mono text-xs">
                    {preview.runs.map((r) => (
                      <li key={r} className="flex justify-between" data-testid="cron-preview-item">
                        <span>{formatDateTime(r)}</span>
                        <span className="text-muted-foreground">{formatRelative(r)}</span>
                      </li>
                    ))}
                  </ol>
                ) : preview.error ? (
                  <p className="text-xs text-destructive">{preview.error}</p>
                ) : preview.status === "ok" ? (
                  <p className="text-xs text-muted-foreground">This schedule never fires.</p>
                ) : preview.status === "error" ? (
                  <p className="text-xs text-muted-foreground">Fix the schedule to see the next runs.</p>
                ) : (
                  <p className="text-xs text-muted-foreground">…</p>
                )}
                <p className="mt-1 text-2xs text-muted-foreground">Times shown in your browser&apos;s time zone.</p>
              </div>
            </div>

            {v.type === "http" ? (
              <div className="grid grid-cols-4 gap-3">
                <Field label="Method">
                  <Select value={v.http_method} onValueChange={(x) => set("http_method", x)}>
                    <SelectTrigger data-testid="cron-method">
                      <SelectValue />
                    </SelectTrigger>
                    <SelectContent>
                      {["GET", "POST", "PUT", "PATCH", "DELETE"].map((m) => (
                        <SelectItem key={m} value={m}>
                          {m}
                        </SelectItem>
                      ))}
                    </SelectContent>
                  </Select>
                </Field>
                <Field label="URL" htmlFor="cron-url" error={errors.http_url} testId="cron-url" className="col-span-3">
                  <Input
                    id="cron-url"
                    value={v.http_url}
                    onChange={(e) => set("http_url", e.target.value)}
                    placeholder="https://app.internal/api/cron/report"
                    aria-invalid={!!errors.http_url || undefined}
                    data-testid="cron-url"
                  />
                </Field>
                <Field
                  label="Headers"
                  htmlFor="cron-headers"
                  error={errors.http_headers}
                  testId="cron-headers"
                  hint={job ? "Stored encrypted; values show as •••• — leave them unchanged to keep them." : "One per line: Name: value. Stored encrypted."}
                  className="col-span-4"
                >
                  <Textarea
                    id="cron-headers"
                    rows={3}
                    className="font-mono text-xs"
                    value={v.http_headers}
                    onChange={(e) => set("http_headers", e.target.value)}
                    placeholder={"Authorization: Bearer …"}
                    spellCheck={false}
                    data-testid="cron-headers"
                  />
                </Field>
                {v.http_method !== "GET" && (
                  <Field label="JSON body" htmlFor="cron-body" error={errors.http_body} testId="cron-body" className="col-span-4">
                    <Textarea
                      id="cron-body"
                      rows={4}
                      className="font-mono text-xs"
                      value={v.http_body}
                      onChange={(e) => set("http_body", e.target.value)}
                      placeholder='{"task": "report"}'
                      spellCheck={false}
                      data-testid="cron-body"
                    />
                  </Field>
                )}
              </div>
            ) : (
              <Field label="Action" htmlFor="cron-action" error={errors.action} testId="cron-action" hint="Allowlisted platform actions only.">
                <Input id="cron-action" list="cron-actions" value={v.action} onChange={(e) => set("action", e.target.value)} data-testid="cron-action" />
                <datalist id="cron-actions">
                  {PLATFORM_ACTIONS.map((a) => (
                    <option key={a} value={a} />
                  ))}
                </datalist>
              </Field>
            )}

            <div className="grid grid-cols-3 gap-3">
              <Field label="Timeout (ms)" htmlFor="cron-timeout" error={errors.timeout_ms} testId="cron-timeout">
                <Input id="cron-timeout" inputMode="numeric" value={v.timeout_ms} onChange={(e) => set("timeout_ms", e.target.value)} data-testid="cron-timeout" />
              </Field>
              <Field label="Retries" htmlFor="cron-retries" error={errors.retries} testId="cron-retries">
                <Input id="cron-retries" inputMode="numeric" value={v.retries} onChange={(e) => set("retries", e.target.value)} data-testid="cron-retries" />
              </Field>
              <Field label="Backoff (ms)" htmlFor="cron-backoff" error={errors.retry_backoff_ms} testId="cron-backoff">
                <Input id="cron-backoff" inputMode="numeric" value={v.retry_backoff_ms} onChange={(e) => set("retry_backoff_ms", e.target.value)} data-testid="cron-backoff" />
              </Field>
              <Field label="Missed runs" className="col-span-2" hint="What happens to runs missed while the master was down.">
                <Select value={v.missed_run_policy} onValueChange={(x) => set("missed_run_policy", x)}>
                  <SelectTrigger data-testid="cron-missed-policy">
                    <SelectValue />
                  </SelectTrigger>
                  <SelectContent>
                    <SelectItem value="skip">Skip them</SelectItem>
                    <SelectItem value="run_once">Run once on start</SelectItem>
                  </SelectContent>
                </Select>
              </Field>
              <div className="flex items-center gap-2 pt-5">
                <Switch id="cron-enabled" checked={v.enabled} onCheckedChange={(c) => set("enabled", c)} data-testid="cron-enabled" />
                <Label htmlFor="cron-enabled">Enabled</Label>
              </div>
            </div>
            {formError && (
              <Alert variant="destructive" data-testid="cron-form-error">
                <AlertDescription className="text-foreground">{formError}</AlertDescription>
              </Alert>
            )}
          </SheetBody>
          <SheetFooter>
            <Button type="button" variant="outline" onClick={() => onOpenChange(false)} disabled={busy}>
              Cancel
            </Button>
            <Button type="submit" loading={busy} data-testid="cron-submit">
              {job ? "Save changes" : "Create job"}
            </Button>
          </SheetFooter>
        </form>
      </SheetContent>
    </Sheet>
  );
}
