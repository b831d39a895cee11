#!/usr/bin/env node
// Fails when the built dashboard (dist/) references an outside host.
// The UI must load with no request leaving the machine: appliances may be offline.
//
// Every absolute http(s) URL found in dist/ is listed by host. Hosts on the
// allowlist below are text that is never fetched (XML namespaces, links inside
// error/help messages, placeholders in form fields); anything else fails.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../dist", import.meta.url));

const ALLOWED = new Map([
  ["www.w3.org", "SVG/XHTML/MathML namespace identifiers"],
  ["github.com", "Monaco warning/help text (never fetched)"],
  ["code.visualstudio.com", "links inside Monaco's option descriptions"],
  ["microsoft.com", "Monaco markdown renderer sample link"],
  ["reactjs.org", "React production error-decoder link in error messages"],
  ["react.dev", "React production error-decoder link in error messages"],
  ["app.internal", "placeholder text in the cron job form"],
]);

const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.(js|mjs|css|html|json|svg|webmanifest)$/.test(name)) files.push(p);
  }
})(root);

const url = /https?:\/\/([a-zA-Z0-9.-]+)(?::\d+)?/g;
const bad = new Map();
const seen = new Map();
for (const f of files) {
  const text = readFileSync(f, "utf8");
  for (const m of text.matchAll(url)) {
    const host = m[1].toLowerCase().replace(/\.$/, "");
    if (host === "localhost" || host === "127.0.0.1") continue;
    seen.set(host, (seen.get(host) ?? 0) + 1);
    if (!ALLOWED.has(host)) {
      const ctx = text.slice(Math.max(0, m.index - 60), m.index + 80).replace(/\s+/g, " ");
      if (!bad.has(host)) bad.set(host, []);
      bad.get(host).push(`${relative(root, f)}: …${ctx}…`);
    }
  }
  // Stylesheets must not pull fonts or images from elsewhere.
  if (f.endsWith(".css") && /@import\s+url\(\s*["']?https?:/i.test(text)) {
    bad.set("css @import", [relative(root, f)]);
  }
}

for (const [host, n] of [...seen].sort()) {
  console.log(`${ALLOWED.has(host) ? "ok  " : "FAIL"} ${host} (${n}×)${ALLOWED.has(host) ? " — " + ALLOWED.get(host) : ""}`);
}
if (bad.size) {
  console.error("\nExternal references found in dist/:");
  for (const [host, where] of bad) {
    console.error(`  ${host}`);
    for (const w of where.slice(0, 3)) console.error(`    ${w}`);
  }
  process.exit(1);
}
console.log(`\n${files.length} files checked: no external host is referenced.`);
