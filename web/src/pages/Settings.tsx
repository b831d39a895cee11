import { useEffect, useMemo, useState } from "react";
import { FileCog, Moon, Settings as SettingsIcon, Sun } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Switch } from "@/components/ui/switch";
import { Textarea } from "@/components/ui/textarea";
import { Skeleton } from "@/components/ui/skeleton";
import { toast } from "@/components/ui/sonner";
import { Page } from "@/components/AppShell";
import { ErrorAlert, PageHeader, Section } from "@/components/States";
import { useQuery } from "@/hooks/useQuery";
import { useTheme } from "@/context/theme";
import { errorMessage, settingsApi, ApiError, type SettingValue } from "@/api";
import type { SettingMeta } from "@/api/settings";
import { formatRelative } from "@/lib/format";
import { CLEAR, RESET, buildPatch, describeValue, draftsFor, groupKeys, isChanged, type Draft, type DraftValue } from "@/lib/settingsForm";

/** The server names the key in its message ("gateway.max_limit: must be …"); the field already does. */
function fieldMessage(key: string, message: string) {
  return message.startsWith(`${key}: `) ? message.slice(key.length + 2) : message;
}

function SettingField({
  k,
  value,
  meta,
  draft,
  error,
  onChange,
}: {
  k: string;
  value: SettingValue;
  meta: SettingMeta;
  draft: DraftValue | undefined;
  error?: string;
  onChange: (v: DraftValue) => void;
}) {
  const id = `setting-${k}`;
  const pending = typeof draft === "object" ? draft : null;
  const text = typeof draft === "string" ? draft : "";
  const secretSet = meta.secret && value !== null && typeof value === "object" && "set" in value && Boolean(value.set);
  let control;
  if (meta.type === "bool") {
    control = <Switch id={id} checked={Boolean(draft)} onCheckedChange={(c) => onChange(c)} data-testid={id} />;
  } else if (meta.type !== "secret" && value !== null && typeof value === "object" && !Array.isArray(value)) {
    control = (
      <Textarea id={id} rows={4} className="font-mono text-xs" value={text} onChange={(e) => onChange(e.target.value)} data-testid={id} />
    );
  } else {
    const numeric = meta.type === "int" || meta.type === "float";
    control = (
      <div className="flex items-center gap-2">
        <Input
          id={id}
          type={meta.secret ? "password" : "text"}
          autoComplete="off"
          inputMode={numeric ? "decimal" : undefined}
          placeholder={
            meta.secret ? (secretSet ? "set — type a new value to replace it" : "not set") : meta.type === "string_list" ? "a@example.com, b@example.com" : undefined
          }
          value={text}
          disabled={pending !== null}
          onChange={(e) => onChange(e.target.value)}
          aria-invalid={!!error || undefined}
          data-testid={id}
        />
        {meta.unit && <span className="shrink-0 text-xs text-muted-foreground">{meta.unit}</span>}
        {meta.secret && secretSet && pending === null && (
          <Button variant="ghost" size="sm" onClick={() => onChange(CLEAR)} data-testid={`setting-clear-${k}`}>
            Clear
          </Button>
        )}
      </div>
    );
  }
  return (
    <div
      className="grid gap-2 px-4 py-3 sm:grid-cols-[16rem_1fr] sm:items-start"
      data-testid="setting-row"
      data-key={k}
      data-source={meta.source}
    >
      <div className="min-w-0">
        <Label htmlFor={id}>{meta.label}</Label>
        <div className="truncate font-mono text-2xs text-muted-foreground">{k}</div>
      </div>
      <div className="grid min-w-0 gap-1">
        {control}
        {meta.description && <p className="text-xs text-muted-foreground">{meta.description}</p>}
        <div className="flex flex-wrap items-center gap-2 text-2xs text-muted-foreground">
          {meta.source === "runtime" ? (
            <Badge variant="default" data-testid={`setting-source-${k}`}>
              changed here{meta.updated_by ? ` by ${meta.updated_by}` : ""}
              {meta.updated_at ? ` ${formatRelative(meta.updated_at)}` : ""}
            </Badge>
          ) : (
            <Badge variant="outline" data-testid={`setting-source-${k}`}>
              from the file
            </Badge>
          )}
          <span>file value: {describeValue(meta.file_value, meta)}</span>
          {meta.source === "runtime" && pending === null && (
            <Button variant="link" size="sm" className="h-auto p-0 text-2xs" onClick={() => onChange(RESET)} data-testid={`setting-reset-${k}`}>
              Use the file value
            </Button>
          )}
          {pending !== null && (
            <span className="text-warning">
              {"reset" in pending ? "returns to the file value on save" : "cleared on save"}{" "}
              <Button
                variant="link"
                size="sm"
                className="h-auto p-0 text-2xs"
                onClick={() => onChange(draftsFor({ [k]: value }, { [k]: meta })[k])}
              >
                Undo
              </Button>
            </span>
          )}
        </div>
        {error && (
          <p className="text-xs text-destructive" data-testid={`setting-error-${k}`}>
            {error}
          </p>
        )}
      </div>
    </div>
  );
}

function shownConfigValue(v: SettingValue): string {
  if (Array.isArray(v)) return v.length ? v.join(", ") : "[]";
  if (v === "") return '""';
  if (v !== null && typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function FileConfig() {
  const q = useQuery(() => settingsApi.fileConfig(), []);
  if (q.error && !q.data) {
    const missing = q.error instanceof ApiError && (q.error.status === 404 || q.error.status === 405);
    if (missing) return null;
    return (
      <div className="p-3">
        <ErrorAlert error={q.error} title="Could not load the configuration" onRetry={() => void q.reload()} />
      </div>
    );
  }
  if (!q.data) return <Skeleton className="m-4 h-24" />;
  const overridden = new Set(q.data.overridden);
  const reloadable = new Set(q.data.reloadable);
  return (
    <div className="divide-y" data-testid="settings-file-config">
      {Object.entries(q.data.config).map(([section, values]) => (
        <div key={section} className="px-4 py-3">
          <h3 className="mb-1 font-mono text-xs font-semibold">[{section}]</h3>
          <dl className="grid gap-x-4 gap-y-0.5 text-xs sm:grid-cols-[16rem_1fr]">
            {Object.entries(values).map(([key, v]) => {
              const full = `${section}.${key}`;
              return (
                <div key={key} className="contents" data-testid="file-config-row" data-key={full}>
                  <dt className="truncate font-mono text-muted-foreground">{key}</dt>
                  <dd className="flex min-w-0 items-center gap-2">
                    <span className="truncate font-mono" data-testid="file-config-value">
                      {shownConfigValue(v)}
                    </span>
                    {overridden.has(full) && <Badge variant="warning">overridden at runtime</Badge>}
                    {reloadable.has(full) && <Badge variant="outline">applies on reload</Badge>}
                  </dd>
                </div>
              );
            })}
          </dl>
        </div>
      ))}
    </div>
  );
}

export default function SettingsPage() {
  const { theme, setTheme } = useTheme();
  const q = useQuery(() => settingsApi.get(), []);
  const [draft, setDraft] = useState<Draft>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [fileKey, setFileKey] = useState(0);

  useEffect(() => {
    if (q.data) setDraft(draftsFor(q.data.settings, q.data.meta));
  }, [q.data]);

  // Nodes whose admin API has no /settings keep every setting in their configuration file.
  const unavailable = q.error instanceof ApiError && (q.error.status === 404 || q.error.status === 405);

  const changed = useMemo(
    () => (q.data ? Object.keys(q.data.settings).filter((k) => isChanged(q.data!.settings[k], q.data!.meta[k], draft[k])) : []),
    [q.data, draft],
  );

  const save = async () => {
    if (!q.data) return;
    const { patch, errors: errs } = buildPatch(q.data.settings, q.data.meta, draft);
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      const r = await settingsApi.update(patch);
      toast.success("Settings saved and applied");
      q.setData(r);
      setFileKey((n) => n + 1);
    } catch (e) {
      const key = e instanceof ApiError ? (e.detail<string>("key") ?? e.detail<string>("field")) : undefined;
      if (key) setErrors({ [key]: fieldMessage(key, errorMessage(e)) });
      else toast.error(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const set = (k: string) => (v: DraftValue) => {
    setDraft((d) => ({ ...d, [k]: v }));
    setErrors((e) => {
      if (!(k in e)) return e;
      const { [k]: _gone, ...rest } = e;
      return rest;
    });
  };

  return (
    <Page>
      <PageHeader icon={SettingsIcon} title="Settings" description="Node and platform settings. Changes are recorded in the audit log." />
      <div className="grid gap-4">
        <Section title="Appearance" description="Stored in this browser only.">
          <div className="flex items-center gap-2 p-4">
            <Button variant={theme === "dark" ? "secondary" : "ghost"} size="sm" onClick={() => setTheme("dark")}>
              <Moon /> Dark
            </Button>
            <Button variant={theme === "light" ? "secondary" : "ghost"} size="sm" onClick={() => setTheme("light")}>
              <Sun /> Light
            </Button>
          </div>
        </Section>
        <Section
          title="Platform"
          description={unavailable ? undefined : "Applied at once, without a restart, and kept on this node. A value never changed here is the configuration file's."}
          actions={
            <>
              {changed.length > 0 && (
                <Button variant="ghost" size="sm" onClick={() => q.data && (setDraft(draftsFor(q.data.settings, q.data.meta)), setErrors({}))}>
                  Discard
                </Button>
              )}
              {!unavailable && (
                <Button size="sm" onClick={() => void save()} disabled={!changed.length} loading={busy} data-testid="settings-save">
                  Save{changed.length ? ` (${changed.length})` : ""}
                </Button>
              )}
            </>
          }
        >
          {unavailable ? (
            <p className="p-4 text-xs text-muted-foreground" data-testid="settings-unavailable">
              This node has no settings editable here: they live in its configuration file (
              <code className="font-mono">atlashub.toml</code>, plus <code className="font-mono">ATLASHUB_*</code>{" "}
              environment overrides) and take effect after a restart.
            </p>
          ) : q.error && !q.data ? (
            <div className="p-3">
              <ErrorAlert error={q.error} title="Could not load settings" onRetry={() => void q.reload()} />
            </div>
          ) : q.initialLoading ? (
            <div className="space-y-3 p-4">
              {Array.from({ length: 4 }).map((_, i) => (
                <Skeleton key={i} className="h-8" />
              ))}
            </div>
          ) : q.data && Object.keys(q.data.settings).length === 0 ? (
            <p className="p-4 text-xs text-muted-foreground">No editable settings on this node.</p>
          ) : (
            <div data-testid="settings-form">
              {groupKeys(q.data?.meta ?? {}).map(([group, keys]) => (
                <div key={group} data-testid="settings-group" data-group={group}>
                  <h3 className="border-b bg-muted/40 px-4 py-1.5 text-xs font-semibold text-muted-foreground">{group}</h3>
                  <div className="divide-y">
                    {keys.map((k) => (
                      <SettingField
                        key={k}
                        k={k}
                        value={q.data!.settings[k]}
                        meta={q.data!.meta[k]}
                        draft={draft[k]}
                        error={errors[k]}
                        onChange={set(k)}
                      />
                    ))}
                  </div>
                </div>
              ))}
            </div>
          )}
        </Section>
        {!unavailable && (
          <Section
            title={
              <span className="inline-flex items-center gap-1.5">
                <FileCog className="size-4" /> Configuration file
              </span>
            }
            description="What this node runs with, from atlashub.toml and ATLASHUB_* overrides; secrets redacted. Changing these needs an edit of the file and a restart."
          >
            <FileConfig key={fileKey} />
          </Section>
        )}
      </div>
    </Page>
  );
}
