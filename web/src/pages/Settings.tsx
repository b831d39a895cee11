import { useEffect, useMemo, useState } from "react";
import { Moon, Settings as SettingsIcon, Sun } from "lucide-react";
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

type Draft = Record<string, string | boolean>;

function toDraft(v: SettingValue): string | boolean {
  if (typeof v === "boolean") return v;
  if (v === null) return "";
  if (typeof v === "object") return JSON.stringify(v, null, 2);
  return String(v);
}

/** Convert an edited field back to the type of the original value. */
export function fromDraft(original: SettingValue, draft: string | boolean): SettingValue {
  if (typeof original === "boolean") return Boolean(draft);
  if (typeof draft === "boolean") return draft;
  if (typeof original === "number") {
    const n = Number(draft);
    if (draft.trim() === "" || !Number.isFinite(n)) throw new Error("must be a number");
    return n;
  }
  if (original !== null && typeof original === "object") {
    try {
      return JSON.parse(draft);
    } catch {
      throw new Error("must be valid JSON");
    }
  }
  if (original === null && draft === "") return null;
  return draft;
}

function humanize(key: string) {
  return key.replace(/[._]/g, " ").replace(/^\w/, (c) => c.toUpperCase());
}

export default function SettingsPage() {
  const { theme, setTheme } = useTheme();
  const q = useQuery(() => settingsApi.get(), []);
  const [draft, setDraft] = useState<Draft>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (q.data) setDraft(Object.fromEntries(Object.entries(q.data).map(([k, v]) => [k, toDraft(v)])));
  }, [q.data]);

  // Nodes whose admin API has no /settings keep every setting in their configuration file.
  const unavailable = q.error instanceof ApiError && (q.error.status === 404 || q.error.status === 405);

  const changed = useMemo(
    () => (q.data ? Object.keys(q.data).filter((k) => draft[k] !== undefined && draft[k] !== toDraft(q.data![k])) : []),
    [q.data, draft],
  );

  const save = async () => {
    if (!q.data) return;
    const patch: Record<string, SettingValue> = {};
    const errs: Record<string, string> = {};
    for (const k of changed) {
      try {
        patch[k] = fromDraft(q.data[k], draft[k]);
      } catch (e) {
        errs[k] = (e as Error).message;
      }
    }
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      const r = await settingsApi.update(patch);
      toast.success("Settings saved");
      if (r?.settings) q.setData(r.settings);
      else await q.reload();
    } catch (e) {
      const field = e instanceof ApiError ? e.detail<string>("field") : undefined;
      if (field) setErrors({ [field]: errorMessage(e) });
      else toast.error(errorMessage(e));
    } finally {
      setBusy(false);
    }
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
          actions={
            <>
              {changed.length > 0 && (
                <Button
                  variant="ghost"
                  size="sm"
                  onClick={() => q.data && setDraft(Object.fromEntries(Object.entries(q.data).map(([k, v]) => [k, toDraft(v)])))}
                >
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
          ) : q.data && Object.keys(q.data).length === 0 ? (
            <p className="p-4 text-xs text-muted-foreground">No editable settings on this node.</p>
          ) : (
            <div className="divide-y" data-testid="settings-form">
              {Object.entries(q.data ?? {}).map(([k, original]) => {
                const v = draft[k];
                const id = `setting-${k}`;
                return (
                  <div key={k} className="grid gap-2 px-4 py-3 sm:grid-cols-[14rem_1fr] sm:items-start">
                    <div>
                      <Label htmlFor={id}>{humanize(k)}</Label>
                      <div className="font-mono text-2xs text-muted-foreground">{k}</div>
                    </div>
                    <div className="grid gap-1">
                      {typeof original === "boolean" ? (
                        <Switch id={id} checked={Boolean(v)} onCheckedChange={(c) => setDraft((d) => ({ ...d, [k]: c }))} data-testid={id} />
                      ) : original !== null && typeof original === "object" ? (
                        <Textarea
                          id={id}
                          rows={4}
                          className="font-mono text-xs"
                          value={String(v ?? "")}
                          onChange={(e) => setDraft((d) => ({ ...d, [k]: e.target.value }))}
                          data-testid={id}
                        />
                      ) : (
                        <Input
                          id={id}
                          inputMode={typeof original === "number" ? "numeric" : undefined}
                          value={String(v ?? "")}
                          onChange={(e) => setDraft((d) => ({ ...d, [k]: e.target.value }))}
                          aria-invalid={!!errors[k] || undefined}
                          data-testid={id}
                        />
                      )}
                      {errors[k] && <p className="text-xs text-destructive">{errors[k]}</p>}
                    </div>
                  </div>
                );
              })}
            </div>
          )}
        </Section>
      </div>
    </Page>
  );
}
