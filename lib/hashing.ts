import { closeSync, constants, openSync, readSync } from "node:fs";
import { fsPath } from "./fs/byte-names.ts";

export type HashAlgorithm = "sha1" | "sha256";
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ["sha1", "sha256"];

/** Large enough to amortise syscalls, small enough to stay in cache while hashed. */
export const CHUNK_SIZE = 1 << 20;

export function formatHash(algorithm: HashAlgorithm, hasher: Bun.CryptoHasher): string {
  return `${algorithm}:${hasher.digest("hex")}`;
}

/** The stored hash of bytes held whole in memory, in one call (no hasher object). */
export function hashBytes(algorithm: HashAlgorithm, bytes: Uint8Array | string): string {
  return `${algorithm}:${Bun.CryptoHasher.hash(algorithm, bytes, "hex")}`;
}

/**
 * A symlink's content hash: the hash of its target's real bytes. For a
 * target that is valid UTF-8 this is the hash of its text; an escaped
 * target (see byte-names.ts) is hashed as the bytes it stands for.
 */
export function hashLinkTarget(algorithm: HashAlgorithm, target: string): string {
  return hashBytes(algorithm, fsPath(target));
}

/** The algorithm part of a stored hash ("sha1:ab…" → "sha1"). */
export function hashAlgorithmOf(hash: string): HashAlgorithm {
  const algorithm = hash.slice(0, hash.indexOf(":"));
  if (algorithm !== "sha1" && algorithm !== "sha256") throw new Error(`unknown hash "${hash}"`);
  return algorithm;
}

/** One read buffer for all of hashFile's calls: it is synchronous, so they never overlap. */
let sharedBuffer: Buffer | undefined;

/** Reads a file once and returns its hash and length. Does not follow symlinks. */
export function hashFile(path: string, algorithm: HashAlgorithm): { hash: string; size: number } {
  sharedBuffer ??= Buffer.allocUnsafe(CHUNK_SIZE);
  const buffer = sharedBuffer;
  const fd = openSync(fsPath(path), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const hasher = new Bun.CryptoHasher(algorithm);
    let size = 0;
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      hasher.update(buffer.subarray(0, read));
      size += read;
    }
    return { hash: formatHash(algorithm, hasher), size };
  } finally {
    closeSync(fd);
  }
}
