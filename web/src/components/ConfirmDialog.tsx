import { useEffect, useState } from "react";
import { AlertTriangle } from "lucide-react";
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from "@/components/ui/dialog";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { FormError } from "@/components/FormParts";

/** Confirmation dialog; with `confirmText` the user must type it exactly
 * (project deletion, restore) before the action is enabled. */
export function ConfirmDialog({
  open,
  onOpenChange,
  title,
  description,
  confirmText,
  actionLabel = "Confirm",
  destructive = true,
  onConfirm,
  testId = "confirm-dialog",
  children,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: string;
  description?: React.ReactNode;
  confirmText?: string;
  actionLabel?: string;
  destructive?: boolean;
  onConfirm: () => Promise<unknown> | unknown;
  testId?: string;
  children?: React.ReactNode;
}) {
  const [typed, setTyped] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (open) {
      setTyped("");
      setError(null);
      setBusy(false);
    }
  }, [open]);
  const matches = !confirmText || typed === confirmText;
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!matches || busy) return;
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onOpenChange(false);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} onOpenChange={(o) => !busy && onOpenChange(o)}>
      <DialogContent data-testid={testId}>
        <form onSubmit={submit} className="grid gap-4">
          <DialogHeader>
            <DialogTitle className="flex items-center gap-2">
              {destructive && <AlertTriangle className="h-4 w-4 text-destructive" />}
              {title}
            </DialogTitle>
            {description && <DialogDescription asChild><div>{description}</div></DialogDescription>}
          </DialogHeader>
          {children}
          {confirmText && (
            <div className="grid gap-1.5">
              <Label htmlFor={`${testId}-input`}>
                Type <code className="rounded bg-muted px-1 py-0.5 font-mono text-foreground">{confirmText}</code> to
                confirm
              </Label>
              <Input
                id={`${testId}-input`}
                value={typed}
                onChange={(e) => setTyped(e.target.value)}
                autoComplete="off"
                autoFocus
                spellCheck={false}
                data-testid={`${testId}-input`}
              />
            </div>
          )}
          <FormError error={error} />
          <DialogFooter>
            <Button type="button" variant="outline" onClick={() => onOpenChange(false)} disabled={busy}>
              Cancel
            </Button>
            <Button
              type="submit"
              variant={destructive ? "destructive" : "default"}
              disabled={!matches}
              loading={busy}
              data-testid={`${testId}-submit`}
            >
              {actionLabel}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}
