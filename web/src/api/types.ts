/** Shapes of the admin API (/admin/api). Kept in one place so pages and tests share them. */

export type SessionMode = "dev" | "local" | "access";

export interface Session {
  authenticated: boolean;
  mode: SessionMode;
  user: { name: string } | null;
  csrf_token: string | null;
  setup_required: boolean;
}

export interface Overview {
  version: string;
  node: { id: string; name: string; roles: string[] };
  projects: number;
}

export interface Project {
  id: string;
  name: string;
  db_name: string;
  created_at: string;
  node_id: string;
}

export interface CreatedProject {
  id: string;
  name: string;
  db_name: string;
  publishable_key: string;
  secret_key: string;
  created_at: string;
}

export interface ProjectDetail extends Project {
  connection: { host: string; port: number; database: string };
  usage: { db_size_bytes: number | null; storage_bytes: number | null; requests_24h: number | null };
}

export type KeyType = "publishable" | "secret";
export type KeyStatus = "active" | "expiring" | "revoked";

export interface ApiKey {
  id: string;
  type: KeyType;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  status: KeyStatus;
}

export interface AuditEntry {
  id: string | number;
  at: string;
  actor: string;
  source_ip: string | null;
  action: string;
  target: string | null;
  outcome: string;
  project_id: string | null;
}

export interface Column {
  name: string;
  type: string;
}

export interface SqlResult {
  columns: Column[];
  rows: unknown[][];
  rowCount: number;
  truncated: boolean;
  durationMs: number;
}

export interface TableInfo {
  schema: string;
  name: string;
  kind: string;
  estimated_rows: number | null;
}

export interface RowsPage {
  columns: Column[];
  rows: unknown[][];
  total: number | null;
}

export interface Migration {
  name: string;
  checksum: string;
  applied_at: string | null;
}

export interface Bucket {
  name: string;
  created_at: string;
  object_count?: number;
}

export interface StorageObject {
  key: string;
  size: number;
  content_type: string | null;
  last_modified: string | null;
}

export interface SignedUpload {
  objectKey: string;
  uploadUrl: string;
  expiresIn: number;
}

export interface AuthUser {
  id: string;
  email: string;
  created_at: string;
  last_sign_in_at: string | null;
  disabled: boolean;
}

export type CronRunStatus = "success" | "fail" | "timeout" | "skipped" | "running";

export interface CronRun {
  id: string;
  started_at: string;
  finished_at: string | null;
  status: CronRunStatus;
  http_status: number | null;
  duration_ms: number | null;
  error_text: string | null;
  attempt: number;
  log_excerpt: string | null;
}

export interface CronJob {
  id: string;
  name: string;
  project_id: string | null;
  type: "http" | "platform";
  schedule_cron: string;
  timezone: string;
  http_url: string | null;
  http_method: string | null;
  http_headers: Record<string, string> | null;
  http_body: unknown;
  action: string | null;
  enabled: boolean;
  timeout_ms: number;
  retries: number;
  retry_backoff_ms: number;
  missed_run_policy: string;
  next_run_at: string | null;
  last_run: CronRun | null;
}

export type CronJobInput = Partial<Omit<CronJob, "id" | "next_run_at" | "last_run">>;

export type JobState = "queued" | "running" | "succeeded" | "failed";

export interface JobStatus {
  state: JobState;
  phase: string | null;
  progress: { done: number; total: number | null; unit: string | null } | null;
  result: unknown;
  error: { code?: string; message?: string } | string | null;
}

export interface Backup {
  id: string;
  created_at: string;
  size: number | null;
  sha256: string | null;
  status: string;
  verified_at: string | null;
}

export interface AnalyticsConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  sslmode: string;
  password?: string;
}

export interface AnalyticsView {
  name: string;
  table?: string;
  columns?: string[];
  where?: string | null;
  sql?: string;
  [k: string]: unknown;
}

export interface AnalyticsInfo {
  enabled: boolean;
  connection: AnalyticsConnection | null;
  views: AnalyticsView[];
  /** Tables of `public` no analytics view may read, even through other views. */
  never_exposable: string[];
}

/** A read-only login that sees the analytics views filtered on `tenant_column = tenant_value`. */
export interface AnalyticsTenantRole {
  name: string;
  user: string;
  schema: string;
  tenant_column: string;
  tenant_value: string | number;
  /** Views present in the tenant's schema. */
  views: string[];
  /** Analytics views the tenant does not get (they lack the tenant column). */
  skipped: string[];
  created_at: string;
}

/** The answer to creating a tenant role: the only time its password is shown. */
export interface AnalyticsTenantRoleCreated extends AnalyticsTenantRole {
  connection: AnalyticsConnection & { password: string };
}

export type NodeStatus = "healthy" | "unhealthy" | "unknown";

export interface NodeInfo {
  id: string;
  name: string;
  role: "master" | "worker";
  wg_address: string | null;
  status: NodeStatus;
  version: string | null;
  last_heartbeat_at: string | null;
  handshake_age_s: number | null;
  projects: number;
  disk: unknown;
  load: unknown;
  last_backup_at: string | null;
}

export interface JoinToken {
  token: string;
  expires_at: string;
  join_command: string;
}

export type SettingValue = string | number | boolean | null | Record<string, unknown> | unknown[];
