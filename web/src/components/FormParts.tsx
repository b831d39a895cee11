import type { ReactNode } from "react";
import { Alert, AlertDescription } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { DialogFooter } from "@/components/ui/dialog";
import { errorMessage } from "@/api/client";

/** A form's failed submission, shown above its buttons (nothing when there is no error). */
export function FormError({ error, testId }: { error: unknown; testId?: string }) {
  if (!error) return null;
  return (
    <Alert variant="destructive" data-testid={testId}>
      <AlertDescription className="text-foreground">{errorMessage(error)}</AlertDescription>
    </Alert>
  );
}

/** A dialog form's footer: Cancel (closes it) and the submit button, both held while ``busy``. */
export function DialogActions({
  onCancel,
  busy,
  submitDisabled,
  submitTestId,
  children,
}: {
  onCancel: () => void;
  busy: boolean;
  submitDisabled?: boolean;
  submitTestId: string;
  children: ReactNode;
}) {
  return (
    <DialogFooter>
      <Button type="button" variant="outline" onClick={onCancel} disabled={busy}>
        Cancel
      </Button>
      <Button type="submit" loading={busy} disabled={submitDisabled} data-testid={submitTestId}>
        {children}
      </Button>
    </DialogFooter>
  );
}
