/** Starts `atlashub dev` from the repository's venv for one test file, on free ports and a temp data dir. */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Project {
  id: string;
  publishable_key: string;
  secret_key: string;
}

export interface DevServer {
  gatewayUrl: string;
  dashboardUrl: string;
  adminToken: string;
  createProject(name: string): Promise<Project>;
  migrate(projectId: string, name: string, sql: string): Promise<void>;
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  stop(): Promise<void>;
}

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "pyproject.toml")) || !existsSync(join(dir, "appliance"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the AtlasHub repository above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export const repoRoot = findRepoRoot();
const python = join(repoRoot, ".venv", "bin", "python");

/** Why the tests that need a server are skipped, or `false` when they can run. */
export const skipReason: string | false = existsSync(python)
  ? false
  : `no Python venv at ${python}: run ./scripts/test (or ./scripts/dev) once to create it`;

export async function startDev(): Promise<DevServer> {
  const base = mkdtempSync(join(tmpdir(), "atlashub-js-"));
  const data = join(base, "dev");
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("ATLASHUB_")) delete env[name];
  const child: ChildProcess = spawn(
    python,
    ["-m", "appliance", "dev", "--data-dir", data, "--gateway-port", "0", "--dashboard-port", "0"],
    { cwd: repoRoot, env, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const devJson = join(data, "dev.json");
  const deadline = Date.now() + 90_000;
  while (!existsSync(devJson)) {
    if (child.exitCode !== null) throw new Error(`atlashub dev exited with ${child.exitCode}:\n${stderr}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`atlashub dev did not write dev.json in 90 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = JSON.parse(readFileSync(devJson, "utf8")) as {
    gateway_url: string;
    dashboard_url: string;
    admin_token: string;
  };

  async function admin(method: string, path: string, body?: unknown): Promise<Response> {
    const init: RequestInit = { method, headers: { "x-dev-admin-token": info.admin_token, "content-type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(info.dashboard_url + path, init);
  }

  return {
    gatewayUrl: info.gateway_url,
    dashboardUrl: info.dashboard_url,
    adminToken: info.admin_token,
    admin,
    async createProject(name) {
      const res = await admin("POST", "/admin/api/projects", { name });
      if (res.status !== 201) throw new Error(`create project: ${res.status} ${await res.text()}`);
      return (await res.json()) as Project;
    },
    async migrate(projectId, name, sql) {
      const res = await admin("POST", `/admin/api/projects/${projectId}/migrations`, { migrations: [{ name, sql }] });
      if (res.status !== 200) throw new Error(`migration ${name}: ${res.status} ${await res.text()}`);
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
      }
      process.off("exit", killOnExit);
      rmSync(base, { recursive: true, force: true });
    },
  };
}
