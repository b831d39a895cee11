import { useCallback, useEffect, useRef, useState } from "react";
import { useParams } from "react-router-dom";
import Editor, { type OnMount } from "@monaco-editor/react";
import { AlertCircle, CheckCircle2, ClipboardCopy, History, Loader2, Play, Trash2, X } from "lucide-react";
import { monaco } from "@/lib/monaco";
import { Button } from "@/components/ui/button";
import { Badge } from "@/components/ui/badge";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { SimpleTooltip } from "@/components/ui/tooltip";
import { DataGrid, copyGrid } from "@/components/DataGrid";
import { EmptyState } from "@/components/States";
import { useTheme } from "@/context/theme";
import { ApiError, errorMessage, sqlApi, type SqlResult } from "@/api";
import { addHistory, clearHistory, loadDraft, loadHistory, saveDraft, type SqlHistoryEntry } from "@/lib/sqlHistory";
import { errorPosition, offsetToLineColumn, shiftPosition, sqlErrorRange } from "@/lib/sqlPosition";
import { formatDuration, formatNumber, formatRelative } from "@/lib/format";
import { cn } from "@/lib/utils";

type Editor = monaco.editor.IStandaloneCodeEditor;

const MARKER_OWNER = "atlashub-sql";
const DEFAULT_SQL = `-- Ctrl/⌘ + Enter runs the statement (or the selection)
select now();
`;

interface RunError {
  code: string;
  message: string;
  position: number | null;
  line?: number;
  column?: number;
}

declare global {
  interface Window {
    /** Hooks for end-to-end tests: typing into Monaco through a keyboard is brittle. */
    __atlashub?: { sqlEditor?: { getValue: () => string; setValue: (v: string) => void; run: () => void } };
  }
}

const isMac = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform);

export default function SqlEditorPage() {
  const { projectId = "" } = useParams();
  const { theme } = useTheme();
  const editorRef = useRef<Editor | null>(null);
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<SqlResult | null>(null);
  const [error, setError] = useState<RunError | null>(null);
  const [history, setHistory] = useState<SqlHistoryEntry[]>(() => loadHistory(projectId));
  const [showHistory, setShowHistory] = useState(true);
  const abortRef = useRef<AbortController | null>(null);
  const runRef = useRef<() => void>(() => {});

  useEffect(() => {
    setHistory(loadHistory(projectId));
    setResult(null);
    setError(null);
    const ed = editorRef.current;
    if (ed) ed.setValue(loadDraft(projectId) ?? DEFAULT_SQL);
  }, [projectId]);

  const clearMarkers = () => {
    const model = editorRef.current?.getModel();
    if (model) monaco.editor.setModelMarkers(model, MARKER_OWNER, []);
  };

  const run = useCallback(async () => {
    const ed = editorRef.current;
    const model = ed?.getModel();
    if (!ed || !model || running) return;
    const sel = ed.getSelection();
    const hasSelection = !!sel && !sel.isEmpty();
    const sql = hasSelection ? model.getValueInRange(sel!) : model.getValue();
    // 0-based code-point offset of the selection start, to map error positions back.
    const selStart = hasSelection
      ? Array.from(model.getValueInRange(new monaco.Range(1, 1, sel!.startLineNumber, sel!.startColumn))).length
      : 0;
    if (!sql.trim()) return;
    clearMarkers();
    abortRef.current?.abort();
    const ac = new AbortController();
    abortRef.current = ac;
    setRunning(true);
    setError(null);
    const started = performance.now();
    try {
      const r = await sqlApi.run(projectId, sql, ac.signal);
      setResult(r);
      setHistory(addHistory(projectId, { sql, at: new Date().toISOString(), ok: true, rowCount: r.rowCount, durationMs: r.durationMs }));
    } catch (e) {
      if ((e as { name?: string })?.name === "AbortError") return;
      const err: RunError =
        e instanceof ApiError
          ? { code: e.code, message: e.message, position: errorPosition(e.code, e.detail<number | null>("position")) }
          : { code: "error", message: errorMessage(e), position: null };
      if (err.position && err.position > 0) {
        const full = model.getValue();
        const pos = shiftPosition(err.position, selStart);
        const range = sqlErrorRange(full, pos);
        const lc = offsetToLineColumn(full, pos);
        err.line = lc.lineNumber;
        err.column = lc.column;
        monaco.editor.setModelMarkers(model, MARKER_OWNER, [
          { ...range, severity: monaco.MarkerSeverity.Error, message: err.message, source: err.code },
        ]);
        ed.revealRangeInCenterIfOutsideViewport(range);
      }
      setError(err);
      setResult(null);
      setHistory(
        addHistory(projectId, {
          sql,
          at: new Date().toISOString(),
          ok: false,
          durationMs: performance.now() - started,
        }),
      );
    } finally {
      setRunning(false);
    }
  }, [projectId, running]);

  runRef.current = () => void run();

  const onMount: OnMount = (ed) => {
    editorRef.current = ed as unknown as Editor;
    ed.setValue(loadDraft(projectId) ?? DEFAULT_SQL);
    ed.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.Enter, () => runRef.current());
    ed.onDidChangeModelContent(() => {
      saveDraft(projectId, ed.getValue());
      // Markers refer to the text that was run; drop them once it is edited.
      clearMarkers();
    });
    ed.focus();
    window.__atlashub = {
      ...(window.__atlashub ?? {}),
      sqlEditor: {
        getValue: () => ed.getValue(),
        setValue: (v: string) => ed.setValue(v),
        run: () => runRef.current(),
      },
    };
  };

  useEffect(
    () => () => {
      abortRef.current?.abort();
      if (window.__atlashub) delete window.__atlashub.sqlEditor;
    },
    [],
  );

  const loadFromHistory = (h: SqlHistoryEntry) => {
    const ed = editorRef.current;
    if (!ed) return;
    ed.setValue(h.sql);
    ed.focus();
  };

  return (
    <div className="flex h-full min-h-0">
      <div className="flex min-w-0 flex-1 flex-col">
        <div className="flex h-11 shrink-0 items-center gap-2 border-b px-3">
          <span className="text-sm font-medium">SQL editor</span>
          <Badge variant="outline" className="font-mono">
            {projectId.slice(0, 12)}
          </Badge>
          <div className="ml-auto flex items-center gap-1.5">
            <SimpleTooltip content={showHistory ? "Hide history" : "Show history"}>
              <Button
                variant={showHistory ? "secondary" : "ghost"}
                size="icon"
                className="h-7 w-7"
                onClick={() => setShowHistory((s) => !s)}
                aria-label="Toggle history"
                data-testid="sql-history-toggle"
              >
                <History />
              </Button>
            </SimpleTooltip>
            <Button size="sm" onClick={() => void run()} loading={running} data-testid="sql-run">
              {!running && <Play />} Run
              <kbd className="ml-1 rounded bg-primary-foreground/15 px-1 font-mono text-2xs">
                {isMac ? "⌘" : "Ctrl"}↵
              </kbd>
            </Button>
          </div>
        </div>
        <div className="h-[45%] min-h-[160px] shrink-0 border-b" data-testid="sql-editor">
          <Editor
            language="sql"
            theme={theme === "dark" ? "vs-dark" : "vs"}
            onMount={onMount}
            loading={
              <div className="flex items-center text-xs text-muted-foreground">
                <Loader2 className="mr-2 h-4 w-4 animate-spin" /> Loading editor…
              </div>
            }
            options={{
              minimap: { enabled: false },
              fontSize: 13,
              fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Monaco, Consolas, "Liberation Mono", monospace',
              scrollBeyondLastLine: false,
              automaticLayout: true,
              tabSize: 2,
              renderLineHighlight: "line",
              glyphMargin: true,
              lineNumbersMinChars: 3,
              padding: { top: 8 },
              // No word-based suggestion popups: Enter must always insert a newline.
              quickSuggestions: false,
              wordBasedSuggestions: "off",
              acceptSuggestionOnEnter: "off",
              suggestOnTriggerCharacters: false,
              fixedOverflowWidgets: true,
            }}
          />
        </div>
        <div className="flex min-h-0 flex-1 flex-col">
          <div className="flex h-9 shrink-0 items-center gap-3 border-b px-3 text-xs" data-testid="sql-result-meta">
            {running ? (
              <span className="flex items-center gap-1.5 text-muted-foreground">
                <Loader2 className="h-3.5 w-3.5 animate-spin" /> Running…
              </span>
            ) : error ? (
              <span className="flex items-center gap-1.5 text-destructive">
                <AlertCircle className="h-3.5 w-3.5" /> {error.code}
              </span>
            ) : result ? (
              <>
                <span className="flex items-center gap-1.5 text-success">
                  <CheckCircle2 className="h-3.5 w-3.5" /> Success
                </span>
                <span className="text-muted-foreground" data-testid="sql-row-count">
                  {formatNumber(result.rowCount)} row{result.rowCount === 1 ? "" : "s"}
                </span>
                <span className="text-muted-foreground">{formatDuration(result.durationMs)}</span>
                {result.truncated && (
                  <Badge variant="warning" data-testid="sql-truncated">
                    truncated: showing {formatNumber(result.rows.length)} rows
                  </Badge>
                )}
                {result.columns.length > 0 && (
                  <Button
                    variant="ghost"
                    size="sm"
                    className="ml-auto h-6"
                    onClick={() => void copyGrid(result.columns, result.rows)}
                  >
                    <ClipboardCopy /> Copy as TSV
                  </Button>
                )}
              </>
            ) : (
              <span className="text-muted-foreground">Results appear here.</span>
            )}
          </div>
          <div className="flex min-h-0 flex-1 flex-col">
            {error ? (
              <div className="p-3">
                <Alert variant="destructive" data-testid="sql-error" data-position={error.position ?? undefined}>
                  <AlertCircle />
                  <AlertTitle className="font-mono text-xs">{error.code}</AlertTitle>
                  <AlertDescription className="whitespace-pre-wrap font-mono text-foreground">
                    {error.message}
                    {error.line ? (
                      <span className="mt-1 block text-muted-foreground" data-testid="sql-error-position">
                        at line {error.line}, column {error.column} (character {error.position})
                      </span>
                    ) : null}
                  </AlertDescription>
                </Alert>
              </div>
            ) : result ? (
              result.columns.length > 0 ? (
                <DataGrid className="flex-1" columns={result.columns} rows={result.rows} testId="sql-results" />
              ) : (
                <div className="p-4 text-xs text-muted-foreground" data-testid="sql-results-empty">
                  Statement executed. {formatNumber(result.rowCount)} row{result.rowCount === 1 ? "" : "s"} affected.
                </div>
              )
            ) : (
              !running && (
                <EmptyState
                  className="m-4 border-none"
                  title="Run a query"
                  description="Write SQL above and press Ctrl/⌘+Enter. Statements run as the project's owner role, in this project's database only."
                />
              )
            )}
          </div>
        </div>
      </div>
      {showHistory && (
        <aside className="flex w-64 shrink-0 flex-col border-l" data-testid="sql-history">
          <div className="flex h-11 shrink-0 items-center justify-between border-b px-3">
            <span className="text-xs font-medium">History</span>
            <div className="flex items-center">
              {history.length > 0 && (
                <SimpleTooltip content="Clear history">
                  <Button
                    variant="ghost"
                    size="icon-sm"
                    onClick={() => {
                      clearHistory(projectId);
                      setHistory([]);
                    }}
                    aria-label="Clear history"
                  >
                    <Trash2 />
                  </Button>
                </SimpleTooltip>
              )}
              <Button variant="ghost" size="icon-sm" onClick={() => setShowHistory(false)} aria-label="Close history">
                <X />
              </Button>
            </div>
          </div>
          <div className="flex-1 overflow-y-auto scrollbar-thin">
            {history.length === 0 ? (
              <p className="p-3 text-xs text-muted-foreground">Queries you run in this project are kept here, in this browser.</p>
            ) : (
              history.map((h, i) => (
                <button
                  key={i}
                  type="button"
                  onClick={() => loadFromHistory(h)}
                  className="block w-full border-b px-3 py-2 text-left hover:bg-muted/50"
                  data-testid="sql-history-item"
                  title="Load into the editor"
                >
                  <div className="mb-1 flex items-center gap-1.5 text-2xs text-muted-foreground">
                    <span className={cn("h-1.5 w-1.5 rounded-full", h.ok ? "bg-success" : "bg-destructive")} />
                    {formatRelative(h.at)}
                    {h.ok && h.rowCount !== undefined && <span>· {formatNumber(h.rowCount)} rows</span>}
                  </div>
                  <pre className="line-clamp-3 whitespace-pre-wrap break-all font-mono text-2xs">{h.sql}</pre>
                </button>
              ))
            )}
          </div>
        </aside>
      )}
    </div>
  );
}
