import { useState } from "react";
import { Plus, ShieldOff, X } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Badge } from "@/components/ui/badge";
import { toast } from "@/components/ui/sonner";
import { Section } from "@/components/States";
import { FormError } from "@/components/FormParts";
import { analyticsApi, parseTableList, toggleTable } from "@/api/analytics";

/** Tables no analytics view may read (secrets, tokens). Kept while analytics access is off. */
export function NeverExposableSection({
  projectId,
  tables,
  onChanged,
}: {
  projectId: string;
  tables: string[];
  onChanged: () => void;
}) {
  const [adding, setAdding] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const save = async (next: string[], done: string) => {
    setBusy(true);
    setError(null);
    try {
      await analyticsApi.setNeverExposable(projectId, next);
      toast.success(done);
      setAdding("");
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const add = (e: React.FormEvent) => {
    e.preventDefault();
    const wanted = parseTableList(adding);
    if (wanted.length === 0) return;
    void save(parseTableList([...tables, ...wanted].join(",")), `Never exposable: ${wanted.join(", ")}`);
  };

  return (
    <Section
      title="Never-exposable tables"
      description="No analytics view may read these tables, directly, in a join or through another view."
    >
      <div className="grid gap-3 p-4">
        {tables.length === 0 ? (
          <p className="text-xs text-muted-foreground" data-testid="analytics-never-exposable-empty">
            No table is marked. Mark tables holding secrets (credentials, tokens) before publishing views.
          </p>
        ) : (
          <div className="flex flex-wrap gap-1.5" data-testid="analytics-never-exposable">
            {tables.map((t) => (
              <Badge
                key={t}
                variant="destructive"
                className="gap-1 py-1 pl-2 pr-1 font-mono"
                data-testid="analytics-never-exposable-item"
                data-table={t}
              >
                <ShieldOff className="h-3 w-3" />
                {t}
                <button
                  type="button"
                  className="rounded-sm p-0.5 hover:bg-destructive/20 disabled:opacity-50"
                  onClick={() => void save(toggleTable(tables, t, false), `${t} may be exposed again`)}
                  disabled={busy}
                  aria-label={`Allow ${t} again`}
                  data-testid="analytics-never-exposable-remove"
                >
                  <X className="h-3 w-3" />
                </button>
              </Badge>
            ))}
          </div>
        )}
        <form onSubmit={add} className="flex items-center gap-2">
          <Input
            className="max-w-sm font-mono text-xs"
            value={adding}
            onChange={(e) => setAdding(e.target.value)}
            placeholder="vf_credentials, event_write_tokens"
            aria-label="Tables to mark never exposable"
            data-testid="analytics-never-exposable-input"
          />
          <Button type="submit" size="sm" variant="outline" loading={busy} data-testid="analytics-never-exposable-add">
            <Plus /> Mark never exposable
          </Button>
        </form>
        <FormError error={error} testId="analytics-never-exposable-error" />
      </div>
    </Section>
  );
}
