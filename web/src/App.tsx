import { Suspense, lazy } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { Loader2 } from "lucide-react";
import { TooltipProvider } from "@/components/ui/tooltip";
import { Toaster } from "@/components/ui/sonner";
import { AppShell } from "@/components/AppShell";
import { ErrorAlert } from "@/components/States";
import { SessionProvider, useSession } from "@/context/session";
import { ProjectsProvider } from "@/context/projects";
import SignInPage from "@/pages/SignIn";
import ProjectsPage from "@/pages/Projects";
import ProjectOverviewPage from "@/pages/ProjectOverview";
import TableBrowserPage from "@/pages/TableBrowser";
import StoragePage from "@/pages/Storage";
import AuthUsersPage from "@/pages/AuthUsers";
import CronPage from "@/pages/Cron";
import DatabaseToolsPage from "@/pages/DatabaseTools";
import AnalyticsPage from "@/pages/Analytics";
import NodesPage from "@/pages/Nodes";
import AuditPage from "@/pages/Audit";
import SettingsPage from "@/pages/Settings";
import NotFoundPage from "@/pages/NotFound";

// Monaco is big: the SQL editor route loads it on demand.
const SqlEditorPage = lazy(() => import("@/pages/SqlEditor"));

function FullScreenLoader() {
  return (
    <div className="flex h-full items-center justify-center text-sm text-muted-foreground" data-testid="app-loading">
      <Loader2 className="mr-2 h-4 w-4 animate-spin" /> Loading…
    </div>
  );
}

function RequireAuth({ children }: { children: React.ReactNode }) {
  const { status, error, refresh } = useSession();
  const location = useLocation();
  if (status === "loading") return <FullScreenLoader />;
  if (status === "error")
    return (
      <div className="mx-auto mt-24 max-w-md p-4">
        <ErrorAlert error={error} title="Cannot reach the AtlasHub admin API" onRetry={() => void refresh()} />
      </div>
    );
  if (status === "signed-out") {
    const next = location.pathname + location.search;
    return <Navigate to={`/sign-in${next && next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`} replace />;
  }
  return <>{children}</>;
}

function Home() {
  const { isWorker } = useSession();
  return <Navigate to={isWorker ? "/nodes" : "/projects"} replace />;
}

function AuthedApp() {
  const { isWorker } = useSession();
  return (
    <ProjectsProvider enabled={!isWorker}>
      <Routes>
        <Route element={<AppShell />}>
          <Route index element={<Home />} />
          <Route path="projects" element={<ProjectsPage />} />
          <Route path="projects/:projectId">
            <Route index element={<Navigate to="overview" replace />} />
            <Route path="overview" element={<ProjectOverviewPage />} />
            <Route path="tables" element={<TableBrowserPage />} />
            <Route path="tables/:table" element={<TableBrowserPage />} />
            <Route
              path="sql"
              element={
                <Suspense fallback={<FullScreenLoader />}>
                  <SqlEditorPage />
                </Suspense>
              }
            />
            <Route path="storage" element={<StoragePage />} />
            <Route path="storage/:bucket" element={<StoragePage />} />
            <Route path="users" element={<AuthUsersPage />} />
            <Route path="cron" element={<CronPage />} />
            <Route path="cron/:jobId" element={<CronPage />} />
            <Route path="database" element={<DatabaseToolsPage />} />
            <Route path="analytics" element={<AnalyticsPage />} />
            <Route path="*" element={<NotFoundPage />} />
          </Route>
          <Route path="cron" element={<CronPage />} />
          <Route path="cron/:jobId" element={<CronPage />} />
          <Route path="nodes" element={<NodesPage />} />
          <Route path="audit" element={<AuditPage />} />
          <Route path="settings" element={<SettingsPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Routes>
    </ProjectsProvider>
  );
}

export default function App() {
  return (
    <TooltipProvider delayDuration={300}>
      <SessionProvider>
        <Routes>
          <Route path="/sign-in" element={<SignInPage />} />
          <Route
            path="/*"
            element={
              <RequireAuth>
                <AuthedApp />
              </RequireAuth>
            }
          />
        </Routes>
        <Toaster />
      </SessionProvider>
    </TooltipProvider>
  );
}
