/**
 * The TypeScript/TSX examples of docs/QUICKSTART.md and docs/USAGE.md, type-checked against this
 * client (strict mode) and a small ambient declaration of the Next.js bits they use.
 *
 * A block whose first line is a comment naming a file (`// app/notes/actions.ts`) is written to
 * that path, so `@/lib/atlashub` and `./actions` imports between examples resolve; any other
 * block is a standalone module. A block preceded by `<!-- not-run… -->` is a fragment and skipped.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";

import { repoRoot } from "./dev-server.js";

const clientRoot = join(repoRoot, "clients", "js");
const tsc = join(clientRoot, "node_modules", "typescript", "bin", "tsc");

interface Example {
  language: "ts" | "tsx";
  code: string;
  line: number;
}

export function extractExamples(markdown: string): Example[] {
  const lines = markdown.split("\n");
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(ts|tsx)\s*$/.exec(lines[i] ?? "");
    if (!fence) continue;
    let p = i - 1;
    while (p >= 0 && (lines[p] ?? "").trim() === "") p--;
    const skipped = /^<!--\s*not-run\b.*-->$/.test((lines[p] ?? "").trim());
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && (lines[i] ?? "").trim() !== "```"; i++) body.push(lines[i] ?? "");
    if (!skipped) examples.push({ language: fence[1] as "ts" | "tsx", code: body.join("\n") + "\n", line: start + 1 });
  }
  return examples;
}

const NEXT_AMBIENT = `
declare const process: { env: Record<string, string | undefined> };
declare module "server-only" {}
declare module "next/cache" {
  export function revalidatePath(path: string, type?: "page" | "layout"): void;
}
declare module "next/navigation" {
  export function redirect(url: string): never;
}
declare module "next/headers" {
  interface CookieOptions { httpOnly?: boolean; secure?: boolean; sameSite?: "lax" | "strict" | "none"; path?: string; maxAge?: number }
  interface Cookies {
    get(name: string): { name: string; value: string } | undefined;
    set(name: string, value: string, options?: CookieOptions): void;
    delete(name: string): void;
  }
  export function cookies(): Promise<Cookies>;
}
declare module "next/server" {
  export class NextResponse extends Response {
    static json(body: unknown, init?: ResponseInit): NextResponse;
  }
}
declare namespace JSX {
  type Element = unknown;
  interface IntrinsicElements {
    input: { onChange?: (event: { target: HTMLInputElement; currentTarget: HTMLInputElement }) => void; [attribute: string]: unknown };
    [name: string]: any;
  }
}
`;

function fileFor(example: Example): string | null {
  const first = example.code.split("\n", 1)[0] ?? "";
  const named = /^\/\/\s*([\w@.\-/[\]]+\.tsx?)\b/.exec(first);
  return named?.[1] ?? null;
}

function typecheck(doc: string): { compiled: number; output: string; status: number | null } {
  const examples = extractExamples(readFileSync(join(repoRoot, "docs", doc), "utf8"));
  const dir = mkdtempSync(join(tmpdir(), "atlashub-doc-ts-"));
  try {
    const seen = new Map<string, number>();
    for (const example of examples) {
      const named = fileFor(example);
      const path = named ?? `snippets/${doc}-line-${example.line}.${example.language}`;
      assert.ok(!seen.has(path), `docs/${doc}:${example.line}: a second example for ${path}`);
      seen.set(path, example.line);
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      // A banner maps tsc's line numbers back to the document.
      const banner = `// docs/${doc}:${example.line}\n`;
      writeFileSync(join(dir, path), banner + example.code + (named ? "" : "export {};\n"));
    }
    writeFileSync(join(dir, "next-ambient.d.ts"), NEXT_AMBIENT);
    const config = {
      compilerOptions: {
        target: "ES2022",
        module: "ESNext",
        moduleResolution: "Bundler",
        lib: ["ES2022", "DOM", "DOM.Iterable"],
        types: [],
        jsx: "preserve",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        baseUrl: ".",
        paths: { "@/*": ["./*"], "@atlashub/client": [join(clientRoot, "src", "index.ts")] },
      },
      include: ["**/*.ts", "**/*.tsx"],
    };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(config, null, 2));
    const result = spawnSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.json"), "--pretty", "false"], {
      encoding: "utf8",
    });
    // Point each error at the document's line: file line n is document line (block line + n - 1).
    const output = (result.stdout + result.stderr).replace(/^(.*?)\((\d+),(\d+)\)/gm, (whole, file: string, n: string) => {
      const path = [...seen.keys()].find((p) => file.endsWith(p));
      const line = path === undefined ? undefined : seen.get(path);
      return line === undefined ? whole : `docs/${doc}:${line + Number(n) - 1} (${path})`;
    });
    return { compiled: examples.length, output, status: result.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const [doc, atLeast] of [
  ["QUICKSTART.md", 5],
  ["USAGE.md", 10],
] as const) {
  test(`the TypeScript examples of docs/${doc} type-check against the client`, () => {
    const { compiled, output, status } = typecheck(doc);
    assert.ok(compiled >= atLeast, `only ${compiled} TS/TSX examples found in docs/${doc}`);
    assert.equal(status, 0, `tsc found errors in the examples of docs/${doc}:\n${output}`);
  });
}

test("extractExamples skips fragments marked not-run", () => {
  const md = "<!-- not-run: a fragment -->\n```ts\nnope(\n```\n\n```tsx\n// a.tsx\nx\n```\n";
  assert.deepEqual(extractExamples(md), [{ language: "tsx", code: "// a.tsx\nx\n", line: 6 }]);
});
