/// <reference types="vitest" />
import { defineConfig, type Plugin } from "vitest/config";
import react from "@vitejs/plugin-react";
import { fileURLToPath, URL } from "node:url";

// The dashboard role serves dist/ at "/" of the admin listener, with SPA fallback
// for deep links. In `npm run dev`, API calls are proxied to a running daemon
// (`atlashub dev` writes its dashboard_url to dev.json).
const apiTarget = process.env.ATLASHUB_DASHBOARD_URL ?? "http://127.0.0.1:8081";

/** @monaco-editor/loader's default config points at a CDN. We always call
 * loader.config({ monaco }) with the bundled instance, so that path is never
 * used; this strips the URL from the bundle so nothing can ever reach out. */
function noMonacoCdn(): Plugin {
  return {
    name: "atlashub-no-monaco-cdn",
    enforce: "pre",
    transform(code, id) {
      if (!id.includes("@monaco-editor/loader")) return null;
      const out = code.replace(/https:\/\/cdn\.jsdelivr\.net\/npm\/monaco-editor@[^"']*/g, "/monaco-cdn-disabled");
      return out === code ? null : { code: out, map: null };
    },
  };
}

export default defineConfig({
  base: "/",
  plugins: [react(), noMonacoCdn()],
  resolve: {
    alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) },
  },
  server: {
    proxy: {
      "/admin/api": { target: apiTarget, changeOrigin: false },
    },
  },
  worker: { format: "es" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2020",
    sourcemap: false,
    // Monaco is large by nature; it lands in the lazily loaded SQL editor chunk
    // (React.lazy), so other pages never download it.
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      output: {
        manualChunks(id) {
          if (
            id.includes("node_modules/react/") ||
            id.includes("node_modules/react-dom/") ||
            id.includes("node_modules/react-router") ||
            id.includes("node_modules/scheduler/")
          ) {
            return "react";
          }
          return undefined;
        },
      },
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    css: false,
  },
});
