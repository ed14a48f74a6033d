import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

/**
 * The layer map of ARCHITECTURE.md as data: a module may import from its own
 * unit and from units of the same or a lower rank. Products sit above every
 * shared layer and never import each other (the volume product is built on
 * the image product, so it alone may import it).
 */
const SHARED_RANK: Record<string, number> = {
  errors: 0, size: 0, glob: 0, "crash-point": 0, clock: 0,
  config: 1, hashing: 1, fs: 1, secrets: 1,
  copy: 2,
  system: 3,
  catalog: 4, pipeline: 4, cli: 4,
  par2: 5,
};
const PRODUCTS = new Set(["archive", "image", "volume", "mirror"]);
const PRODUCT_MAY_IMPORT: Record<string, readonly string[]> = { volume: ["image"] };

const ROOT = join(import.meta.dir, "..");

/** lib/errors.ts → "errors", lib/archive/disk/x.ts → "archive". */
function unitOf(path: string): string {
  const parts = relative(join(ROOT, "lib"), path).split("/");
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, "") : parts[0]!;
}

function libFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return libFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

function importsOf(path: string): string[] {
  const text = readFileSync(path, "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|new URL\(\s*)"(\.{1,2}\/[^"]+)"/g)) {
    found.push(normalize(join(dirname(path), match[1]!)));
  }
  return found;
}

/** Why importing `target` from `file` breaks the layer map, or undefined when it does not. */
function violation(file: string, target: string): string | undefined {
  const from = unitOf(file);
  const to = unitOf(target);
  if (from === "index" || to === from) return undefined; // the public surface re-exports every layer
  const where = `${relative(ROOT, file)} imports ${relative(ROOT, target)}`;
  if (to === "index") return `${where}: only scripts import the public surface`;
  if (PRODUCTS.has(from)) {
    if (PRODUCTS.has(to)) return (PRODUCT_MAY_IMPORT[from] ?? []).includes(to) ? undefined : `${where}: a product imports another product`;
    return SHARED_RANK[to] === undefined ? `${where}: "${to}" is in no layer of ARCHITECTURE.md` : undefined;
  }
  const fromRank = SHARED_RANK[from];
  const toRank = SHARED_RANK[to];
  if (fromRank === undefined) return `${relative(ROOT, file)}: "${from}" is in no layer of ARCHITECTURE.md`;
  if (PRODUCTS.has(to)) return `${where}: a shared layer imports a product`;
  if (toRank === undefined) return `${where}: "${to}" is in no layer of ARCHITECTURE.md`;
  return toRank > fromRank ? `${where}: a lower layer imports a higher one` : undefined;
}

function layerViolations(): string[] {
  const lib = join(ROOT, "lib");
  return libFiles(lib).flatMap((file) =>
    importsOf(file)
      .filter((target) => target.startsWith(lib + "/"))
      .flatMap((target) => violation(file, target) ?? []),
  );
}

/**
 * The layer map drawn at the top of ARCHITECTURE.md, read back: the `products`
 * line, then the shared rows, highest first.
 */
function documentedLayers(markdown: string): { products: string[]; ranks: Record<string, number> } {
  const block = markdown.split("## Layers")[1]?.split("```")[1] ?? "";
  const unitsIn = (line: string) => [...line.matchAll(/lib\/([a-z0-9-]+)(?:\/|\.ts)/g)].map((match) => match[1]!);
  const lines = block.split("\n");
  const products = unitsIn(lines.find((line) => line.startsWith("products")) ?? "");
  const sharedFrom = lines.findIndex((line) => line.startsWith("shared"));
  const rows = sharedFrom < 0 ? [] : lines.slice(sharedFrom).filter((line) => unitsIn(line).length > 0);
  const ranks: Record<string, number> = {};
  rows.forEach((line, index) => {
    for (const unit of unitsIn(line)) ranks[unit] = rows.length - 1 - index;
  });
  return { products, ranks };
}

describe("layers", () => {
  test("the layer map at the top of ARCHITECTURE.md is this test's", () => {
    const documented = documentedLayers(readFileSync(join(ROOT, "ARCHITECTURE.md"), "utf8"));
    expect(new Set(documented.products)).toEqual(PRODUCTS);
    expect(documented.ranks).toEqual(SHARED_RANK);
  });

  test("shared layers never import a product, lower layers never a higher one, products not each other", () => {
    expect(layerViolations()).toEqual([]);
  });

  test("the check names each kind of broken import", () => {
    const lib = (...parts: string[]) => join(ROOT, "lib", ...parts);
    expect(violation(lib("fs", "atomic.ts"), lib("archive", "disk", "layout.ts"))).toContain("a shared layer imports a product");
    expect(violation(lib("errors.ts"), lib("system", "exec.ts"))).toContain("a lower layer imports a higher one");
    expect(violation(lib("image", "settings.ts"), lib("archive", "settings.ts"))).toContain("a product imports another product");
    expect(violation(lib("volume", "send.ts"), lib("image", "store", "chunk-store.ts"))).toBeUndefined();
    expect(violation(lib("archive", "run", "x.ts"), lib("index.ts"))).toContain("only scripts import the public surface");
    expect(violation(lib("archive", "stages", "copier.ts"), lib("copy", "builtin-copy.ts"))).toBeUndefined();
  });
});
