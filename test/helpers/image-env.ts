import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { blaine, type CliResult } from "./cli.ts";
import { seededBytes } from "./fixture.ts";
import type { TestS3 } from "./s3rver.ts";

/**
 * A block-image test's world: a catalog (an SQLite file or a PostgreSQL
 * database), a store (a directory, or a prefix in a real S3 server), and
 * `image` to run the real CLI on them.
 */
export interface ImageEnv {
  readonly dir: string;
  readonly db: string;
  readonly store: string;
  image(args: readonly string[], env?: Record<string, string>): Promise<CliResult>;
  /** The same without --db: the store alone. */
  imageNoDb(args: readonly string[]): Promise<CliResult>;
  /** Backs up and returns the version's uid (asserting success). */
  backup(source: string, name: string, extra?: readonly string[]): Promise<string>;
  /** The hashes of every chunk the store holds. */
  chunks(): Promise<string[]>;
  readChunk(hash: string): Promise<Uint8Array>;
  writeChunk(hash: string, bytes: Uint8Array): Promise<void>;
  removeChunk(hash: string): Promise<void>;
}

export function imageEnv(dir: string, db: string, s3?: TestS3): ImageEnv {
  const prefix = `t${Math.random().toString(36).slice(2, 10)}`;
  const store = s3 ? `s3://${s3.bucket}/${prefix}` : join(dir, "store");
  const childEnv = s3?.env ?? {};
  const chunkKey = (hash: string) => `${prefix}/chunks/${hash.slice(0, 2)}/${hash}`;
  const chunkPath = (hash: string) => join(store, "chunks", hash.slice(0, 2), hash);
  const env: ImageEnv = {
    dir,
    db,
    store,
    image: (args, extra) => blaine(["image", ...args, "--db", db, "--store", store], { env: { ...childEnv, ...extra } }),
    imageNoDb: (args) => blaine(["image", ...args, "--store", store], { cwd: dir, env: childEnv }),
    async backup(source, name, extra = []) {
      const result = await env.image(["backup", source, name, "--json", ...extra]);
      if (result.exitCode !== 0) throw new Error(`backup failed (${result.exitCode}): ${result.stderr}`);
      return result.json.uid as string;
    },
    async chunks() {
      if (s3) {
        const listing = await s3.client.list({ prefix: `${prefix}/chunks/`, maxKeys: 1000 });
        return (listing.contents ?? []).map((entry) => entry.key.slice(entry.key.lastIndexOf("/") + 1)).sort();
      }
      const root = join(store, "chunks");
      if (!existsSync(root)) return [];
      return readdirSync(root).flatMap((sub) => readdirSync(join(root, sub)).filter((name) => /^[0-9a-f]{64}$/.test(name))).sort();
    },
    async readChunk(hash) {
      return s3 ? new Uint8Array(await s3.client.file(chunkKey(hash)).arrayBuffer()) : readFileSync(chunkPath(hash));
    },
    async writeChunk(hash, bytes) {
      if (s3) await s3.client.write(chunkKey(hash), bytes);
      else writeFileSync(chunkPath(hash), bytes);
    },
    async removeChunk(hash) {
      if (s3) await s3.client.delete(chunkKey(hash));
      else rmSync(chunkPath(hash));
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

/** The sha256 of a block: its chunk's name. */
export function hashOf(data: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

export function sameBytes(a: string, b: string): boolean {
  return Buffer.compare(readFileSync(a), readFileSync(b)) === 0;
}
