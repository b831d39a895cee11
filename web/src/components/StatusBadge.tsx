import { Badge, type BadgeProps } from "@/components/ui/badge";

const MAP: Record<string, BadgeProps["variant"]> = {
  active: "success",
  healthy: "success",
  success: "success",
  succeeded: "success",
  ok: "success",
  verified: "success",
  applied: "success",
  enabled: "success",
  expiring: "warning",
  running: "default",
  queued: "secondary",
  pending: "secondary",
  skipped: "secondary",
  unknown: "secondary",
  disabled: "secondary",
  revoked: "destructive",
  fail: "destructive",
  failed: "destructive",
  failure: "destructive",
  error: "destructive",
  denied: "destructive",
  timeout: "warning",
  unhealthy: "destructive",
};

export function StatusBadge({ status, className, testId }: { status: string; className?: string; testId?: string }) {
  const variant = MAP[status?.toLowerCase?.() ?? ""] ?? "outline";
  return (
    <Badge variant={variant} className={className} data-testid={testId} data-status={status}>
      <span
        className={
          "inline-block h-1.5 w-1.5 rounded-full " +
          (variant === "success"
            ? "bg-success"
            : variant === "destructive"
              ? "bg-destructive"
              : variant === "warning"
                ? "bg-warning"
                : variant === "default"
                  ? "animate-pulse bg-primary"
                  : "bg-muted-foreground")
        }
      />
      {status}
    </Badge>
  );
}
