import { open } from "node:fs/promises";
import { fstatSync } from "node:fs";
import { sizeOf } from "../../fs/device-size.ts";
import { ExitCode, UsageError, errorMessage } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import { mapBounded } from "../../pipeline/bounded.ts";
import { formatBytes } from "../../size.ts";
import type { ImageCatalog, VersionRow } from "../catalog/image-catalog.ts";
import { readBlock } from "../stages/read-blocks.ts";
import type { ImageSettings } from "../settings.ts";
import { DamagedChunk, blockHash, blockHashOrZero, decodeChunk } from "../store/chunk-format.ts";
import type { ChunkStore } from "../store/chunk-store.ts";
import { openImageStore, withCatalog } from "./open-image.ts";

export interface ScrubRequest {
  readonly versions: readonly string[];
  /** Check a random share of the chunks (1–100); undefined: all of them. */
  readonly percent?: number;
  /** An image or snapshot to compare the version with, block by block. */
  readonly source?: string;
}

export interface ScrubResult {
  readonly exitCode: ExitCode;
  readonly chunksChecked: number;
  readonly bytesChecked: number;
  readonly badChunks: { hash: string; problem: string }[];
  readonly invalidVersions: string[];
  readonly revalidatedVersions: string[];
  /** The versions scrubbed that are not valid when it ends (invalid, or incomplete), with their status. */
  readonly notValidVersions: { uid: string; status: string }[];
  /** Blocks where the --source image differs from the version (not the store's fault). */
  readonly sourceMismatches: { index: number; offset: number }[];
}

/** Reads a chunk and checks its header, length and hash: undefined when good, else the problem. */
async function checkChunk(store: ChunkStore, hash: string): Promise<{ problem?: string; bytes: number }> {
  let object: Uint8Array | undefined;
  try {
    object = await store.getChunk(hash);
  } catch (error) {
    // An encrypted store's object that does not decrypt.
    if (error instanceof DamagedChunk) return { problem: `damaged: ${error.message}`, bytes: (await store.chunkSize(hash)) ?? 0 };
    throw error;
  }
  if (!object) return { problem: "missing from the store", bytes: 0 };
  try {
    const data = await decodeChunk(object);
    if (blockHash(data) !== hash) return { problem: "its content does not match its hash (bit rot?)", bytes: object.length };
    return { bytes: object.length };
  } catch (error) {
    return { problem: `damaged: ${errorMessage(error)}`, bytes: object.length };
  }
}

/**
 * `blaine image scrub VERSION… [-p PERCENT] [--source IMAGE]`: re-reads the
 * versions' chunks (each shared chunk once) and checks them. A bad chunk's
 * blocks are marked invalid, and so is every version holding it; a full
 * scrub that finds a version's chunks all good makes it valid again.
 */
export async function scrubImages(settings: ImageSettings, request: ScrubRequest, output: Output): Promise<ScrubResult> {
  if (request.versions.length === 0) throw new UsageError("usage: blaine image scrub VERSION… [-p PERCENT] [--source IMAGE]");
  if (request.source && request.versions.length !== 1) throw new UsageError("--source compares one version with one image: give one VERSION");
  if (request.percent !== undefined && !(request.percent > 0 && request.percent <= 100)) throw new UsageError(`-p: "${request.percent}" is not a percentage between 0 and 100`);
  const store = await openImageStore(settings, { create: false });
  return withCatalog(settings, false, async (catalog) => {
    const versions: VersionRow[] = [];
    for (const given of request.versions) versions.push(await catalog.requireVersion(given));
    const uids = [...new Set(versions.map((version) => version.uid))];
    let hashes = await catalog.distinctHashes(uids);
    if (request.percent !== undefined && request.percent < 100) hashes = sampleOf(hashes, request.percent);
    const badChunks: { hash: string; problem: string }[] = [];
    let bytesChecked = 0;
    async function* each() {
      yield* hashes;
    }
    for await (const outcome of mapBounded(each(), async (hash) => ({ hash, ...(await checkChunk(store, hash)) }), { concurrency: 4 })) {
      bytesChecked += outcome.bytes;
      if (outcome.problem) badChunks.push({ hash: outcome.hash, problem: outcome.problem });
    }
    badChunks.sort((a, b) => a.hash.localeCompare(b.hash));
    const invalidVersions = await catalog.markBad(badChunks.map((bad) => bad.hash));
    const full = request.percent === undefined || request.percent >= 100;
    const revalidatedVersions = full && badChunks.length === 0 ? await catalog.revalidate(uids) : [];
    // With -p, the same share of the version's blocks is compared with the source as of its chunks was read.
    const sourceMismatches = request.source ? await compareWithSource(catalog, versions[0], request.source, full ? undefined : request.percent) : [];
    // Versions this scrub leaves not valid: found bad now, or before by a scrub whose bad chunk this -p pass did not
    // read (only a full scrub makes a version valid again), or incomplete (a backup that did not finish).
    const notValid: { uid: string; status: string }[] = [];
    for (const uid of uids) {
      const status = (await catalog.requireVersion(uid)).status;
      if (status !== "valid") notValid.push({ uid, status });
    }
    const checkedGood = new Set(hashes);
    for (const bad of badChunks) checkedGood.delete(bad.hash);

    for (const bad of badChunks) output.say(`bad chunk ${bad.hash}: ${bad.problem}`);
    for (const uid of invalidVersions) output.say(`version ${uid} is invalid: it holds a bad chunk`);
    for (const { uid, status } of notValid) {
      if (invalidVersions.includes(uid)) continue;
      if (status === "incomplete") output.say(`version ${uid} is incomplete: its backup did not finish, so it holds only the blocks recorded before it stopped`);
      else output.say(`version ${uid} is still invalid: a bad chunk found before${full ? "" : " (a scrub without -p that finds every chunk good makes it valid again)"}`);
    }
    for (const uid of revalidatedVersions) output.say(`version ${uid} is valid again: every chunk checked good`);
    for (const mismatch of sourceMismatches) {
      const store = mismatch.hash === null ? "the version holds zeros there" : checkedGood.has(mismatch.hash) ? "the store's chunk is good" : "its chunk was not read by this scrub";
      output.say(`block ${mismatch.index} (offset ${mismatch.offset}) differs from ${request.source}: the source changed or is another image (${store})`);
    }
    output.say(`scrubbed ${hashes.length} chunk(s), ${formatBytes(bytesChecked)}: ${badChunks.length} bad`);
    const exitCode = notValid.length > 0 || badChunks.length > 0 ? ExitCode.damage : sourceMismatches.length > 0 ? ExitCode.failure : ExitCode.ok;
    const result = {
      exitCode, chunksChecked: hashes.length, bytesChecked, badChunks, invalidVersions, revalidatedVersions,
      notValidVersions: notValid, sourceMismatches: sourceMismatches.map(({ index, offset }) => ({ index, offset })),
    };
    output.result({ ...result, exitCode: undefined });
    return result;
  });
}

/** Blocks of the version that differ from the image at `path` (each read and hashed; `percent`: a random share of them), with the version's hash there. */
async function compareWithSource(
  catalog: ImageCatalog, version: VersionRow, path: string, percent?: number,
): Promise<{ index: number; offset: number; hash: string | null }[]> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw new UsageError(`--source ${path}: ${errorMessage(error)}`);
  }
  try {
    const size = sizeOf(fstatSync(handle.fd));
    if (size !== version.size) throw new UsageError(`--source ${path} holds ${size} bytes; version ${version.uid} is ${version.size}`);
    const rows = new Map<number, string | null>();
    for await (const row of catalog.allBlocks(version.uid)) rows.set(row.idx, row.hash);
    const count = Math.ceil(size / version.blockSize);
    const indexes = Array.from({ length: count }, (_, index) => index);
    // In order: the source is read forward.
    const compared = percent === undefined ? indexes : sampleOf(indexes, percent).sort((a, b) => a - b);
    const mismatches: { index: number; offset: number; hash: string | null }[] = [];
    // One buffer for every block: they are read one after another.
    const buffer = Buffer.allocUnsafe(Math.min(version.blockSize, size));
    for (const index of compared) {
      const offset = index * version.blockSize;
      const length = Math.min(version.blockSize, size - offset);
      const data = await readBlock(handle, { index, offset, length }, path, buffer.subarray(0, length));
      const hash = blockHashOrZero(data);
      const stored = rows.get(index) ?? null;
      if (hash !== stored) mismatches.push({ index, offset, hash: stored });
    }
    return mismatches;
  } finally {
    await handle.close();
  }
}

/** A random `percent` of `items` (at least one), as -p asks. */
function sampleOf<T>(items: readonly T[], percent: number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, Math.max(1, Math.ceil((items.length * percent) / 100)));
}
