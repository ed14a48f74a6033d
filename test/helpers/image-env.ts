import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeSync } from "node:fs";
import { join } from "node:path";
import { blaine, type CliResult } from "./cli.ts";
import { seededBytes } from "./fixture.ts";

/**
 * A block-image test's world: a catalog (an SQLite file or a PostgreSQL
 * database), a directory store, and `image` to run the real CLI on them.
 */
export interface ImageEnv {
  readonly dir: string;
  readonly db: string;
  readonly store: string;
  image(args: readonly string[], env?: Record<string, string>): Promise<CliResult>;
  /** Backs up and returns the version's uid (asserting success). */
  backup(source: string, name: string, extra?: readonly string[]): Promise<string>;
  /** Every chunk file of the directory store. */
  chunkFiles(): string[];
}

export function imageEnv(dir: string, db: string, store = join(dir, "store")): ImageEnv {
  const env: ImageEnv = {
    dir,
    db,
    store,
    image: (args, extra) => blaine(["image", ...args, "--db", db, "--store", store], { env: extra }),
    async backup(source, name, extra = []) {
      const result = await env.image(["backup", source, name, "--json", ...extra]);
      if (result.exitCode !== 0) throw new Error(`backup failed (${result.exitCode}): ${result.stderr}`);
      return result.json.uid as string;
    },
    chunkFiles() {
      const root = join(store, "chunks");
      if (!existsSync(root)) return [];
      return readdirSync(root).flatMap((sub) => readdirSync(join(root, sub)).filter((name) => /^[0-9a-f]{64}$/.test(name)).map((name) => join(root, sub, name)));
    },
  };
  return env;
}

export const MiB = 1024 * 1024;

/** Writes `data` into the file at `offset` (the file keeps its size and holes). */
export function writeAt(path: string, offset: number, data: Uint8Array): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Deterministic random bytes (incompressible). */
export function randomBytes(length: number, seed: number): Uint8Array {
  return seededBytes(length, seed);
}

/** Compressible, text-like bytes. */
export function textBytes(length: number, seed: number): Uint8Array {
  // 64 bytes a line: blocks of a power-of-two size are all alike.
  const line = Buffer.from(`line ${seed} of a text-like block that compresses well`.padEnd(63, ".") + "\n");
  const out = Buffer.alloc(length);
  for (let at = 0; at < length; at += line.length) line.copy(out, at);
  return out;
}

export function sameBytes(a: string, b: string): boolean {
  return Buffer.compare(readFileSync(a), readFileSync(b)) === 0;
}
