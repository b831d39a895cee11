import { useState } from "react";
import { Navigate, useSearchParams } from "react-router-dom";
import { KeyRound, Loader2, LockKeyhole, ShieldCheck } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { ErrorAlert } from "@/components/States";
import { FormError } from "@/components/FormParts";
import { useSession } from "@/context/session";
import { ApiError } from "@/api/client";

function safeNext(next: string | null): string {
  // Only same-app paths: never redirect to another origin after sign-in.
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/sign-in")) return "/";
  return next;
}

function PasswordForm() {
  const { signIn } = useSession();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [needTotp, setNeedTotp] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password, totp || undefined);
    } catch (err) {
      if (err instanceof ApiError && /totp|2fa|mfa/i.test(err.code)) setNeedTotp(true);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="grid gap-3" onSubmit={submit} data-testid="signin-form">
      <div className="grid gap-1.5">
        <Label htmlFor="username">Username</Label>
        <Input
          id="username"
          autoComplete="username"
          autoFocus
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          data-testid="signin-username"
        />
      </div>
      <div className="grid gap-1.5">
        <Label htmlFor="password">Password</Label>
        <Input
          id="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          data-testid="signin-password"
        />
      </div>
      <div className="grid gap-1.5">
        <Label htmlFor="totp" className="flex items-center justify-between">
          <span>Authenticator code</span>
          {!needTotp && <span className="font-normal text-muted-foreground">if enabled</span>}
        </Label>
        <Input
          id="totp"
          inputMode="numeric"
          autoComplete="one-time-code"
          pattern="[0-9 ]*"
          maxLength={8}
          required={needTotp}
          value={totp}
          onChange={(e) => setTotp(e.target.value)}
          data-testid="signin-totp"
        />
      </div>
      <FormError error={error} testId="signin-error" />
      <Button type="submit" loading={busy} data-testid="signin-submit">
        Sign in
      </Button>
    </form>
  );
}

function DevTokenForm() {
  const { signInWithDevToken } = useSession();
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signInWithDevToken(token);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="grid gap-3" onSubmit={submit} data-testid="signin-dev-form">
      <div className="grid gap-1.5">
        <Label htmlFor="dev-token">Dev admin token</Label>
        <Input
          id="dev-token"
          type="password"
          autoFocus
          required
          autoComplete="off"
          spellCheck={false}
          className="font-mono"
          placeholder="admin_token from dev.json"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          data-testid="signin-dev-token"
        />
        <p className="text-xs text-muted-foreground">
          <code className="font-mono">atlashub dev</code> writes it to <code className="font-mono">dev.json</code> in its
          data directory. It is kept for this browser tab only.
        </p>
      </div>
      <FormError error={error} testId="signin-error" />
      <Button type="submit" loading={busy} data-testid="signin-dev-submit">
        Continue
      </Button>
    </form>
  );
}

function SetupForm() {
  const { setup } = useSession();
  const [code, setCode] = useState("");
  const [username, setUsername] = useState("admin");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const mismatch = confirm.length > 0 && confirm !== password;
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (password !== confirm) return;
    setBusy(true);
    setError(null);
    try {
      await setup(code.trim(), username.trim(), password);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="grid gap-3" onSubmit={submit} data-testid="setup-form">
      <div className="grid gap-1.5">
        <Label htmlFor="setup-code">Setup code</Label>
        <Input
          id="setup-code"
          required
          autoFocus
          className="font-mono"
          value={code}
          onChange={(e) => setCode(e.target.value)}
          data-testid="setup-code"
        />
        <p className="text-xs text-muted-foreground">
          Printed by <code className="font-mono">atlashub init</code> and in the daemon&apos;s journal
          (<code className="font-mono">journalctl -u atlashub</code>).
        </p>
      </div>
      <div className="grid gap-1.5">
        <Label htmlFor="setup-username">Admin username</Label>
        <Input
          id="setup-username"
          required
          autoComplete="username"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          data-testid="setup-username"
        />
      </div>
      <div className="grid gap-1.5">
        <Label htmlFor="setup-password">Password</Label>
        <Input
          id="setup-password"
          type="password"
          required
          minLength={12}
          autoComplete="new-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          data-testid="setup-password"
        />
        <p className="text-xs text-muted-foreground">At least 12 characters.</p>
      </div>
      <div className="grid gap-1.5">
        <Label htmlFor="setup-confirm">Confirm password</Label>
        <Input
          id="setup-confirm"
          type="password"
          required
          autoComplete="new-password"
          aria-invalid={mismatch || undefined}
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          data-testid="setup-confirm"
        />
        {mismatch && <p className="text-xs text-destructive">Passwords do not match.</p>}
      </div>
      <FormError error={error} testId="setup-error" />
      <Button type="submit" loading={busy} disabled={mismatch} data-testid="setup-submit">
        Create admin account
      </Button>
    </form>
  );
}

export default function SignInPage() {
  const { status, session, error, refresh } = useSession();
  const [params] = useSearchParams();
  const next = safeNext(params.get("next"));

  if (status === "signed-in") return <Navigate to={next} replace />;

  let body: React.ReactNode;
  let title = "Sign in to AtlasHub";
  let description: React.ReactNode = "Administer this node's projects, storage and cluster.";
  let Icon = LockKeyhole;

  if (status === "loading") {
    body = (
      <div className="flex items-center justify-center py-6 text-sm text-muted-foreground">
        <Loader2 className="mr-2 h-4 w-4 animate-spin" /> Checking session…
      </div>
    );
  } else if (status === "error") {
    body = <ErrorAlert error={error} title="Cannot reach the admin API" onRetry={() => void refresh()} />;
  } else if (session?.mode === "dev") {
    description = "Development mode: use the dev admin token, or a local admin account.";
    body = (
      <Tabs defaultValue="token">
        <TabsList className="grid w-full grid-cols-2">
          <TabsTrigger value="token" data-testid="signin-tab-token">
            <KeyRound /> Dev token
          </TabsTrigger>
          <TabsTrigger value="password" data-testid="signin-tab-password">
            <LockKeyhole /> Password
          </TabsTrigger>
        </TabsList>
        <TabsContent value="token">
          <DevTokenForm />
        </TabsContent>
        <TabsContent value="password">
          <PasswordForm />
        </TabsContent>
      </Tabs>
    );
  } else if (session?.setup_required) {
    title = "Set up AtlasHub";
    description = "Create the first administrator of this node.";
    Icon = ShieldCheck;
    body = <SetupForm />;
  } else if (session?.mode === "access") {
    Icon = ShieldCheck;
    description = "This dashboard is protected by Cloudflare Access.";
    body = (
      <div className="grid gap-3 text-sm" data-testid="signin-access">
        <p className="text-muted-foreground">
          Your Access session was not recognised or has expired. Sign in through your Access login page, then reload.
        </p>
        <Button onClick={() => window.location.reload()}>Reload</Button>
      </div>
    );
  } else {
    body = <PasswordForm />;
  }

  return (
    <div className="flex min-h-full items-center justify-center bg-background p-4" data-testid="signin-page">
      <div className="w-full max-w-sm">
        <div className="mb-6 flex items-center justify-center gap-2">
          <img src="/favicon.svg" alt="" className="h-8 w-8" />
          <span className="text-lg font-semibold tracking-tight">AtlasHub</span>
        </div>
        <Card>
          <CardHeader>
            <CardTitle className="flex items-center gap-2 text-base">
              <Icon className="h-4 w-4 text-primary" /> {title}
            </CardTitle>
            <CardDescription>{description}</CardDescription>
          </CardHeader>
          <CardContent>{body}</CardContent>
        </Card>
        <p className="mt-4 text-center text-2xs text-muted-foreground">
          The admin dashboard is meant for the local network or a protected tunnel only.
        </p>
      </div>
    </div>
  );
}
