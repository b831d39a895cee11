import { KeyRound, ShieldAlert } from "lucide-react";
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from "@/components/ui/dialog";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { CopyField } from "@/components/CopyButton";

export interface SecretItem {
  label: string;
  value: string;
  testId?: string;
}

/** Secrets the server returns exactly once (new project keys, rotated key,
 * analytics password). Copy buttons and a clear warning; nothing is stored. */
export function SecretDialog({
  open,
  onOpenChange,
  title,
  description,
  items,
  testId = "secret-dialog",
  footer,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: string;
  description?: React.ReactNode;
  items: SecretItem[];
  testId?: string;
  footer?: React.ReactNode;
}) {
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent
        className="max-w-xl"
        data-testid={testId}
        onInteractOutside={(e) => e.preventDefault()}
      >
        <DialogHeader>
          <DialogTitle className="flex items-center gap-2">
            <KeyRound className="h-4 w-4 text-primary" />
            {title}
          </DialogTitle>
          {description && <DialogDescription>{description}</DialogDescription>}
        </DialogHeader>
        <Alert variant="warning">
          <ShieldAlert />
          <AlertTitle>Shown only once</AlertTitle>
          <AlertDescription>
            Copy these values now and store them somewhere safe. AtlasHub keeps only a hash and cannot show them again;
            if one is lost, rotate it.
          </AlertDescription>
        </Alert>
        <div className="grid gap-3">
          {items.map((it) => (
            <CopyField key={it.label} label={it.label} value={it.value} testId={it.testId} />
          ))}
        </div>
        <DialogFooter>
          {footer}
          <Button onClick={() => onOpenChange(false)} data-testid={`${testId}-close`}>
            I have saved them
          </Button>
        </DialogFooter>
      </DialogContent>
    </Dialog>
  );
}
