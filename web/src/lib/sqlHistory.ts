/** Per-project SQL history kept in localStorage (newest first, de-duplicated). */

export interface SqlHistoryEntry {
  sql: string;
  at: string; // ISO time
  ok: boolean;
  rowCount?: number;
  durationMs?: number;
}

export const HISTORY_LIMIT = 50;

const key = (projectId: string) => `atlashub.sqlHistory.${projectId}`;

export function loadHistory(projectId: string): SqlHistoryEntry[] {
  try {
    const raw = localStorage.getItem(key(projectId));
    if (!raw) return [];
    const parsed = JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.filter((e) => e && typeof e.sql === "string") : [];
  } catch {
    return [];
  }
}

export function addHistory(projectId: string, entry: SqlHistoryEntry, limit = HISTORY_LIMIT): SqlHistoryEntry[] {
  const trimmed = entry.sql.trim();
  if (!trimmed) return loadHistory(projectId);
  const list = loadHistory(projectId).filter((e) => e.sql.trim() !== trimmed);
  list.unshift({ ...entry, sql: trimmed });
  const next = list.slice(0, limit);
  try {
    localStorage.setItem(key(projectId), JSON.stringify(next));
  } catch {
    /* storage full or disabled: history is a convenience */
  }
  return next;
}

export function clearHistory(projectId: string): void {
  try {
    localStorage.removeItem(key(projectId));
  } catch {
    /* ignore */
  }
}

const draftKey = (projectId: string) => `atlashub.sqlDraft.${projectId}`;
export function loadDraft(projectId: string): string | null {
  try {
    return localStorage.getItem(draftKey(projectId));
  } catch {
    return null;
  }
}
export function saveDraft(projectId: string, sql: string): void {
  try {
    localStorage.setItem(draftKey(projectId), sql);
  } catch {
    /* ignore */
  }
}
