import type { StorageObject } from "@/api/types";

/** Split a flat object listing under `prefix` into sub-folders and files. */
export function splitListing(objects: StorageObject[], prefix: string) {
  const folders = new Set<string>();
  const files: StorageObject[] = [];
  for (const o of objects) {
    if (!o.key.startsWith(prefix)) continue;
    const rest = o.key.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (slash >= 0) folders.add(rest.slice(0, slash + 1));
    else if (rest) files.push(o);
  }
  return { folders: Array.from(folders).sort(), files };
}
