/** The runtime settings form as pure functions: drafts from values, values from drafts, with
 * the checks the page can make before sending (the server checks again, and more). */
import type { SettingValue } from "@/api/types";
import type { SettingMeta } from "@/api/settings";

/** What a field holds while edited. A secret's text is "" until a new value is typed. */
export type DraftValue = string | boolean | { reset: true } | { clear: true };
export type Draft = Record<string, DraftValue>;

export const RESET = { reset: true } as const;
export const CLEAR = { clear: true } as const;

export function toDraft(value: SettingValue, meta?: SettingMeta): string | boolean {
  if (meta?.secret) return "";
  if (typeof value === "boolean") return value;
  if (value === null || value === undefined) return "";
  if (Array.isArray(value) && (meta?.type === "string_list" || value.every((v) => typeof v === "string")))
    return value.join(", ");
  if (typeof value === "object") return JSON.stringify(value, null, 2);
  return String(value);
}

export function draftsFor(settings: Record<string, SettingValue>, meta: Record<string, SettingMeta>): Draft {
  return Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, toDraft(v, meta[k])]));
}

export function isChanged(value: SettingValue, meta: SettingMeta | undefined, draft: DraftValue | undefined): boolean {
  if (draft === undefined) return false;
  if (typeof draft === "object") return true;
  if (meta?.secret) return draft !== "";
  return draft !== toDraft(value, meta);
}

function bounded(n: number, meta: SettingMeta | undefined): number {
  if (meta?.min !== undefined && n < meta.min) throw new Error(`must be at least ${meta.min}`);
  if (meta?.max !== undefined && n > meta.max) throw new Error(`must be at most ${meta.max}`);
  return n;
}

/** The value to send for an edited field; throws an Error whose message is shown at the field. */
export function fromDraft(original: SettingValue, draft: DraftValue, meta?: SettingMeta): SettingValue {
  if (typeof draft === "object") return "reset" in draft ? null : { set: false };
  const kind = meta?.type;
  if (kind === "secret") return draft === "" ? { set: true } : String(draft);
  if (kind === "bool" || typeof original === "boolean") return Boolean(draft);
  if (typeof draft === "boolean") return draft;
  if (kind === "int" || kind === "float" || typeof original === "number") {
    const n = Number(draft);
    if (draft.trim() === "" || !Number.isFinite(n)) throw new Error("must be a number");
    if (kind === "int" && !Number.isInteger(n)) throw new Error("must be a whole number");
    return bounded(n, meta);
  }
  if (kind === "string_list")
    return draft
      .split(/[,\n]/)
      .map((s) => s.trim())
      .filter(Boolean);
  if (original !== null && typeof original === "object") {
    try {
      return JSON.parse(draft);
    } catch {
      throw new Error("must be valid JSON");
    }
  }
  if (original === null && draft === "") return null;
  return draft;
}

/** The PATCH body for the changed fields, or the errors found before sending. */
export function buildPatch(
  settings: Record<string, SettingValue>,
  meta: Record<string, SettingMeta>,
  draft: Draft,
): { patch: Record<string, SettingValue>; errors: Record<string, string> } {
  const patch: Record<string, SettingValue> = {};
  const errors: Record<string, string> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (!isChanged(value, meta[key], draft[key])) continue;
    try {
      patch[key] = fromDraft(value, draft[key], meta[key]);
    } catch (e) {
      errors[key] = (e as Error).message;
    }
  }
  return { patch, errors };
}

/** Keys in the order of the server's list, grouped by their group's first appearance. */
export function groupKeys(meta: Record<string, SettingMeta>): [string, string[]][] {
  const groups = new Map<string, string[]>();
  for (const [key, m] of Object.entries(meta)) {
    const group = m.group || "Other";
    groups.set(group, [...(groups.get(group) ?? []), key]);
  }
  return [...groups.entries()];
}

/** A value as the page shows it next to a field ("file: 100 requests/s"). */
export function describeValue(value: SettingValue, meta?: SettingMeta): string {
  if (value !== null && typeof value === "object" && !Array.isArray(value) && "set" in value)
    return value.set ? "set" : "not set";
  if (Array.isArray(value)) return value.length ? value.join(", ") : "none";
  if (value === "" || value === null) return "empty";
  if (typeof value === "boolean") return value ? "on" : "off";
  return meta?.unit ? `${value} ${meta.unit}` : String(value);
}
