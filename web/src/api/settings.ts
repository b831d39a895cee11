import { api } from "./client";
import type { SettingValue } from "./types";

/** How a runtime setting is typed on the server (appliance/settings/registry.py). */
export type SettingKind = "int" | "float" | "bool" | "string" | "string_list" | "secret";

export interface SettingMeta {
  type: SettingKind;
  group: string;
  label: string;
  description: string;
  min?: number;
  max?: number;
  unit?: string;
  secret: boolean;
  /** "runtime": changed from the dashboard; "file": the configuration file's value applies. */
  source: "file" | "runtime";
  /** The configuration file's value (a secret: {"set": bool}). */
  file_value: SettingValue;
  updated_at?: string;
  updated_by?: string;
}

export interface SettingsResponse {
  /** Effective values; a secret is only ever {"set": bool}. */
  settings: Record<string, SettingValue>;
  meta: Record<string, SettingMeta>;
}

export interface FileConfigResponse {
  /** Section → key → value, secrets and credentials redacted. */
  config: Record<string, Record<string, SettingValue>>;
  /** Keys whose file value a runtime setting overrides. */
  overridden: string[];
  /** Keys a SIGHUP applies; every other file value needs a restart. */
  reloadable: string[];
}

export const settingsApi = {
  get: () => api.get<SettingsResponse>("/settings"),
  /** All or nothing. A value of null returns the key to its file value; a secret takes a
   * string, or {"set": false} to clear it. */
  update: (patch: Record<string, SettingValue>) => api.patch<SettingsResponse>("/settings", patch),
  fileConfig: () => api.get<FileConfigResponse>("/settings/config"),
};
