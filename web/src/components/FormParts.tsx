import type { ReactNode } from "react";
import { Alert, AlertDescription } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { DialogFooter } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
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

/** A project-name field as the create and clone dialogs ask for it: focused, required, 64 characters at most. */
export function ProjectNameField({
  id,
  label,
  value,
  onChange,
  testId,
  placeholder,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  testId: string;
  placeholder?: string;
}) {
  return (
    <div className="grid gap-1.5">
      <Label htmlFor={id}>{label}</Label>
      <Input
        id={id}
        autoFocus
        required
        maxLength={64}
        placeholder={placeholder}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        data-testid={testId}
      />
    </div>
  );
}
