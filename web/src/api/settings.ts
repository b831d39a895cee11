import { api } from "./client";
import type { SettingValue } from "./types";

export const settingsApi = {
  get: () => api.get<{ settings: Record<string, SettingValue> }>("/settings").then((r) => r.settings),
  update: (patch: Record<string, SettingValue>) =>
    api.patch<{ settings?: Record<string, SettingValue> }>("/settings", patch),
};
