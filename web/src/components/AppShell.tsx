import { NavLink, Outlet, useLocation, useNavigate, useParams } from "react-router-dom";
import {
  Activity,
  BarChart3,
  Boxes,
  ChevronsUpDown,
  Clock,
  Database,
  FileClock,
  FolderOpen,
  HardDrive,
  LayoutDashboard,
  LogOut,
  Moon,
  Plus,
  Server,
  Settings,
  Sun,
  Table2,
  TerminalSquare,
  Users,
} from "lucide-react";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuLabel,
  DropdownMenuSeparator,
  DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import { Button } from "@/components/ui/button";
import { Badge } from "@/components/ui/badge";
import { SimpleTooltip } from "@/components/ui/tooltip";
import { useSession } from "@/context/session";
import { useProjects } from "@/context/projects";
import { useTheme } from "@/context/theme";
import { cn } from "@/lib/utils";

export const PROJECT_SECTIONS = [
  { to: "overview", label: "Overview", icon: LayoutDashboard },
  { to: "tables", label: "Table editor", icon: Table2 },
  { to: "sql", label: "SQL editor", icon: TerminalSquare },
  { to: "storage", label: "Storage", icon: FolderOpen },
  { to: "users", label: "Auth users", icon: Users },
  { to: "cron", label: "Cron jobs", icon: Clock },
  { to: "database", label: "Database", icon: Database },
  { to: "analytics", label: "Analytics", icon: BarChart3 },
] as const;

const PLATFORM_SECTIONS = [
  { to: "/projects", label: "Projects", icon: Boxes, end: true },
  { to: "/cron", label: "All cron jobs", icon: Clock },
  { to: "/nodes", label: "Nodes", icon: Server },
  { to: "/audit", label: "Audit log", icon: FileClock },
  { to: "/settings", label: "Settings", icon: Settings },
];

const WORKER_SECTIONS = [
  { to: "/nodes", label: "This node", icon: Server },
  { to: "/settings", label: "Settings", icon: Settings },
];

function NavItem({
  to,
  label,
  icon: Icon,
  end,
}: {
  to: string;
  label: string;
  icon: React.ComponentType<{ className?: string }>;
  end?: boolean;
}) {
  return (
    <NavLink
      to={to}
      end={end}
      data-testid={`nav-${label.toLowerCase().replace(/\s+/g, "-")}`}
      className={({ isActive }) =>
        cn(
          "flex h-7 items-center gap-2 rounded-md px-2 text-[13px] text-sidebar-foreground/80 transition-colors hover:bg-accent hover:text-foreground",
          isActive && "bg-accent font-medium text-foreground",
        )
      }
    >
      <Icon className="h-4 w-4 shrink-0 opacity-80" />
      <span className="truncate">{label}</span>
    </NavLink>
  );
}

function ProjectSwitcher({ projectId }: { projectId?: string }) {
  const { projects } = useProjects();
  const navigate = useNavigate();
  const location = useLocation();
  const current = projects?.find((p) => p.id === projectId);
  const section = location.pathname.split("/")[3] ?? "overview";
  return (
    <DropdownMenu>
      <DropdownMenuTrigger asChild>
        <Button
          variant="outline"
          className="h-9 w-full justify-between px-2.5 text-left"
          data-testid="project-switcher"
        >
          <span className="min-w-0">
            <span className="block text-2xs uppercase tracking-wide text-muted-foreground">Project</span>
            <span className="block truncate text-[13px] leading-4">
              {current?.name ?? (projectId ? projectId : "Select a project")}
            </span>
          </span>
          <ChevronsUpDown className="opacity-50" />
        </Button>
      </DropdownMenuTrigger>
      <DropdownMenuContent align="start" className="w-56">
        <DropdownMenuLabel>Projects</DropdownMenuLabel>
        {(projects ?? []).map((p) => (
          <DropdownMenuItem
            key={p.id}
            onSelect={() => navigate(`/projects/${p.id}/${section}`)}
            data-testid="project-switcher-item"
          >
            <span className="truncate">{p.name}</span>
            <span className="ml-auto font-mono text-2xs text-muted-foreground">{p.id.slice(0, 8)}</span>
          </DropdownMenuItem>
        ))}
        {projects && projects.length === 0 && (
          <div className="px-2 py-1.5 text-xs text-muted-foreground">No projects yet</div>
        )}
        <DropdownMenuSeparator />
        <DropdownMenuItem onSelect={() => navigate("/projects?new=1")}>
          <Plus /> New project
        </DropdownMenuItem>
        <DropdownMenuItem onSelect={() => navigate("/projects")}>
          <Boxes /> All projects
        </DropdownMenuItem>
      </DropdownMenuContent>
    </DropdownMenu>
  );
}

export function AppShell() {
  const { overview, session, signOut, isWorker } = useSession();
  const { theme, toggle } = useTheme();
  const { projectId } = useParams();
  const navigate = useNavigate();

  return (
    <div className="flex h-full">
      <aside className="flex w-56 shrink-0 flex-col border-r bg-sidebar" data-testid="sidebar">
        <div className="flex h-12 items-center gap-2 border-b px-3">
          <img src="/favicon.svg" alt="" className="h-6 w-6" />
          <span className="text-sm font-semibold tracking-tight">AtlasHub</span>
          {isWorker && (
            <Badge variant="secondary" className="ml-auto">
              worker
            </Badge>
          )}
        </div>
        <nav className="flex-1 space-y-4 overflow-y-auto p-2 scrollbar-thin">
          {!isWorker && (
            <div className="space-y-1">
              <ProjectSwitcher projectId={projectId} />
              {projectId && (
                <div className="space-y-0.5 pt-1" data-testid="project-nav">
                  {PROJECT_SECTIONS.map((s) => (
                    <NavItem key={s.to} to={`/projects/${projectId}/${s.to}`} label={s.label} icon={s.icon} />
                  ))}
                </div>
              )}
            </div>
          )}
          <div className="space-y-0.5">
            <div className="px-2 pb-1 text-2xs font-medium uppercase tracking-wide text-muted-foreground">
              {isWorker ? "Node" : "Platform"}
            </div>
            {(isWorker ? WORKER_SECTIONS : PLATFORM_SECTIONS).map((s) => (
              <NavItem key={s.to} {...s} />
            ))}
          </div>
        </nav>
        <div className="border-t p-2 text-2xs text-muted-foreground">
          <div className="flex items-center gap-1.5 px-1">
            <Activity className="h-3 w-3 text-success" />
            <span className="truncate">Connected to {overview?.node.name ?? "node"}</span>
          </div>
        </div>
      </aside>
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="flex h-12 shrink-0 items-center gap-3 border-b px-4" data-testid="topbar">
          <div className="flex min-w-0 items-center gap-2 text-xs">
            <HardDrive className="h-3.5 w-3.5 text-muted-foreground" />
            <span className="truncate font-medium" data-testid="node-name">
              {overview?.node.name ?? "—"}
            </span>
            {overview?.node.roles?.length ? (
              <span className="hidden truncate text-muted-foreground md:inline">
                {overview.node.roles.join(" · ")}
              </span>
            ) : null}
            <Badge variant="outline" className="font-mono" data-testid="node-version">
              v{overview?.version ?? "?"}
            </Badge>
            {session?.mode === "dev" && <Badge variant="warning">dev mode</Badge>}
          </div>
          <div className="ml-auto flex items-center gap-1">
            <SimpleTooltip content={theme === "dark" ? "Light theme" : "Dark theme"}>
              <Button variant="ghost" size="icon" onClick={toggle} aria-label="Toggle theme" data-testid="theme-toggle">
                {theme === "dark" ? <Sun /> : <Moon />}
              </Button>
            </SimpleTooltip>
            <DropdownMenu>
              <DropdownMenuTrigger asChild>
                <Button variant="ghost" size="sm" className="gap-2" data-testid="user-menu">
                  <span className="flex h-5 w-5 items-center justify-center rounded-full bg-primary/20 text-2xs font-semibold uppercase text-primary">
                    {(session?.user?.name ?? "A").slice(0, 1)}
                  </span>
                  <span className="max-w-[10rem] truncate">{session?.user?.name ?? "admin"}</span>
                </Button>
              </DropdownMenuTrigger>
              <DropdownMenuContent align="end">
                <DropdownMenuLabel>
                  Signed in {session?.mode === "access" ? "via Access" : session?.mode === "dev" ? "(dev)" : ""}
                </DropdownMenuLabel>
                <DropdownMenuItem onSelect={() => navigate("/settings")}>
                  <Settings /> Settings
                </DropdownMenuItem>
                <DropdownMenuSeparator />
                <DropdownMenuItem onSelect={() => void signOut()} data-testid="sign-out">
                  <LogOut /> Sign out
                </DropdownMenuItem>
              </DropdownMenuContent>
            </DropdownMenu>
          </div>
        </header>
        <main className="min-h-0 flex-1 overflow-auto">
          <Outlet />
        </main>
      </div>
    </div>
  );
}

/** Standard padded page container. */
export function Page({ children, className, wide }: { children: React.ReactNode; className?: string; wide?: boolean }) {
  return <div className={cn("mx-auto w-full p-5", wide ? "max-w-none" : "max-w-6xl", className)}>{children}</div>;
}
