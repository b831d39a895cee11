/** Monaco, bundled locally: no CDN (appliances may be offline).
 *
 * - `edcore.main` = the editor with all its features (find, folding, …) but none of
 *   the ~80 languages of `monaco-editor`'s default entry; only SQL is registered.
 * - The editor worker is bundled by Vite through a `?worker` import.
 * - `loader.config({ monaco })` makes @monaco-editor/react use this instance instead of
 *   fetching the loader from a CDN.
 */
import * as monaco from "monaco-editor/esm/vs/editor/edcore.main.js";
import "monaco-editor/esm/vs/basic-languages/sql/sql.contribution.js";
import EditorWorker from "monaco-editor/esm/vs/editor/editor.worker.js?worker";
import { loader } from "@monaco-editor/react";

self.MonacoEnvironment = {
  getWorker() {
    return new EditorWorker();
  },
};

loader.config({ monaco });

export { monaco };
