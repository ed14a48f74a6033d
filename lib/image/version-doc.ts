import { BlaineError, ExitCode } from "../errors.ts";
import type { BlockRow, VersionRow, VersionStatus } from "./catalog/image-catalog.ts";

/**
 * A version's metadata as one JSON document: what `blaine image export`
 * writes, what `import` reads, and what the store keeps beside the chunks
 * (versions/UID.json) so a version restores with no catalog at all.
 *
 *   {
 *     "format": "blaine-image-version", "formatVersion": 1,
 *     "version": { "uid", "name", "snapshot", "date" (ISO 8601), "size", "blockSize",
 *                  "status", "protected", "labels", "baseUid",
 *                  "bytesRead", "bytesWritten", "bytesDeduplicated", "bytesSparse" },
 *     "blocks": [[index, "sha256 hex" | null, size, valid 1|0], …]
 *   }
 *
 * `blocks` lists, in index order, the blocks that hold data (null: zeros
 * over data of the base, kept as written); an index not listed is all zeros.
 * The chunk of a block is chunks/HASH[0:2]/HASH in a directory store.
 */
export const VERSION_DOC_FORMAT = "blaine-image-version";
export const VERSION_DOC_FORMAT_VERSION = 1;

export interface VersionDoc {
  readonly version: VersionRow;
  readonly blocks: BlockRow[];
}

export function versionDocText(version: VersionRow, blocks: readonly BlockRow[]): string {
  return versionDocOfLines(version, blocks.map(blockLine));
}

/** One block's line of the document (its trailing comma aside). */
export function blockLine(block: BlockRow): string {
  return JSON.stringify([block.idx, block.hash, block.size, block.valid ? 1 : 0]);
}

/** The document of `version` whose blocks are these lines, in index order. */
export function versionDocOfLines(version: VersionRow, lines: readonly string[]): string {
  const head = JSON.stringify(
    {
      format: VERSION_DOC_FORMAT,
      formatVersion: VERSION_DOC_FORMAT_VERSION,
      version: { ...version, date: new Date(version.date).toISOString() },
    },
    null,
    1,
  );
  // One block per line: a 1 TiB version is 262 144 short lines, greppable and diffable.
  return `${head.slice(0, -2)},\n${BLOCKS_OPEN}${lines.join(",\n")}${BLOCKS_CLOSE}`;
}

const BLOCKS_OPEN = ' "blocks": [\n';
const BLOCKS_CLOSE = "\n ]\n}\n";

/**
 * The block lines of a document laid out as versionDocText lays it out (a
 * base's copy in the store, which a new version's document is made over),
 * or undefined for any other layout. Lines are not checked one by one: a
 * caller checks what it made against the catalog.
 */
export function blockLinesOf(text: string): string[] | undefined {
  const open = text.indexOf(`\n${BLOCKS_OPEN}`);
  if (open < 0 || !text.endsWith(BLOCKS_CLOSE)) return undefined;
  const body = text.slice(open + 1 + BLOCKS_OPEN.length, text.length - BLOCKS_CLOSE.length);
  return body === "" ? [] : body.split(",\n");
}

/** The block index a line of blockLinesOf starts with. */
export function lineIndex(line: string): number {
  return Number.parseInt(line.slice(1), 10);
}

/** Whether a line of blockLinesOf says its block is valid (no scrub found its chunk bad). */
export function lineIsValid(line: string): boolean {
  return line.endsWith(",1]");
}

const STATUSES: readonly VersionStatus[] = ["incomplete", "valid", "invalid"];

/** Reads a version document; `from` names it in errors (a file, or a store's version). */
export function parseVersionDoc(text: string, from: string): VersionDoc {
  const bad = (what: string) => new BlaineError(`${from}: not a Blaine image version document (${what})`, ExitCode.usage);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw bad(error instanceof Error ? error.message : "not JSON");
  }
  if (parsed.format !== VERSION_DOC_FORMAT) throw bad(`format is ${JSON.stringify(parsed.format)}`);
  if (Number(parsed.formatVersion) > VERSION_DOC_FORMAT_VERSION) throw new BlaineError(`${from} was written by a newer Blaine; upgrade Blaine to read it`);
  const v = parsed.version as Record<string, unknown> | undefined;
  if (!v || typeof v.uid !== "string" || typeof v.name !== "string") throw bad("no version uid and name");
  const date = Date.parse(String(v.date));
  const size = Number(v.size);
  const blockSize = Number(v.blockSize);
  if (!Number.isFinite(date) || !Number.isSafeInteger(size) || !Number.isSafeInteger(blockSize) || blockSize <= 0) throw bad("bad date, size or block size");
  const status = STATUSES.includes(v.status as VersionStatus) ? (v.status as VersionStatus) : "invalid";
  const version: VersionRow = {
    uid: v.uid,
    name: v.name,
    snapshot: String(v.snapshot ?? ""),
    date,
    size,
    blockSize,
    status,
    protected: Boolean(v.protected),
    labels: (v.labels ?? {}) as Record<string, string>,
    baseUid: typeof v.baseUid === "string" ? v.baseUid : null,
    bytesRead: Number(v.bytesRead ?? 0),
    bytesWritten: Number(v.bytesWritten ?? 0),
    bytesDeduplicated: Number(v.bytesDeduplicated ?? 0),
    bytesSparse: Number(v.bytesSparse ?? 0),
  };
  if (!Array.isArray(parsed.blocks)) throw bad("no blocks list");
  const count = Math.ceil(size / blockSize);
  const blocks = (parsed.blocks as unknown[]).map((entry, at): BlockRow => {
    const [idx, hash, length, valid] = entry as [number, string | null, number, number];
    if (!Number.isSafeInteger(idx) || idx < 0 || idx >= count || (hash !== null && !/^[0-9a-f]{64}$/.test(String(hash)))) throw bad(`block entry ${at + 1}`);
    return { idx, hash, size: Number(length), valid: valid !== 0 };
  });
  return { version, blocks };
}
