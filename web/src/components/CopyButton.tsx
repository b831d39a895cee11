import { useEffect, useState } from "react";
import { Check, Copy } from "lucide-react";
import { Button } from "@/components/ui/button";
import { SimpleTooltip } from "@/components/ui/tooltip";
import { toast } from "@/components/ui/sonner";
import { copyText } from "@/lib/clipboard";
import { cn } from "@/lib/utils";

export function CopyButton({
  value,
  label = "Copy",
  className,
  size = "icon-sm",
  testId,
  toastMessage,
  children,
}: {
  value: string;
  label?: string;
  className?: string;
  size?: "icon-sm" | "icon" | "sm";
  testId?: string;
  toastMessage?: string;
  children?: React.ReactNode;
}) {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const t = setTimeout(() => setCopied(false), 1500);
    return () => clearTimeout(t);
  }, [copied]);
  const onClick = async (e: React.MouseEvent) => {
    e.stopPropagation();
    const ok = await copyText(value);
    if (ok) {
      setCopied(true);
      if (toastMessage) toast.success(toastMessage);
    } else {
      toast.error("Could not copy to the clipboard");
    }
  };
  const icon = copied ? <Check className="text-success" /> : <Copy />;
  return (
    <SimpleTooltip content={copied ? "Copied" : label}>
      <Button
        type="button"
        variant="ghost"
        size={size}
        className={cn("text-muted-foreground hover:text-foreground", className)}
        onClick={onClick}
        aria-label={label}
        data-testid={testId}
        data-copied={copied || undefined}
      >
        {icon}
        {children}
      </Button>
    </SimpleTooltip>
  );
}

/** Read-only monospace value with a copy button (keys, connection strings, ids). */
export function CopyField({
  value,
  label,
  testId,
  masked,
  className,
}: {
  value: string;
  label?: string;
  testId?: string;
  masked?: boolean;
  className?: string;
}) {
  const [shown, setShown] = useState(!masked);
  return (
    <div className={cn("min-w-0 space-y-1", className)}>
      {label && <div className="text-xs font-medium text-muted-foreground">{label}</div>}
      <div className="flex items-center gap-1 rounded-md border bg-muted/40 py-0.5 pl-2.5 pr-1">
        <code
          className="min-w-0 flex-1 truncate font-mono text-xs"
          data-testid={testId}
          title={shown ? value : undefined}
        >
          {shown ? value : "•".repeat(Math.min(32, Math.max(8, value.length)))}
        </code>
        {masked && (
          <Button type="button" variant="ghost" size="sm" className="h-6 px-2 text-xs" onClick={() => setShown((s) => !s)}>
            {shown ? "Hide" : "Reveal"}
          </Button>
        )}
        <CopyButton value={value} label={`Copy ${label ?? "value"}`} testId={testId ? `${testId}-copy` : undefined} />
      </div>
    </div>
  );
}
