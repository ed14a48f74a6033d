import { BlaineError, ExitCode } from "../errors.ts";
import type { BlockRow, VersionRow, VersionStatus } from "./catalog/image-catalog.ts";

/**
 * A version's metadata as one JSON document: what `blaine image export`
 * writes, what `import` reads, and what the store keeps beside the chunks
 * (versions/UID.json) so a version restores with no catalog at all.
 *
 *   {
 *     "format": "blaine-image-version", "formatVersion": 2,
 *     "version": { "uid", "name", "snapshot", "date" (ISO 8601), "size", "blockSize",
 *                  "status", "protected", "labels", "baseUid", "inheritsUid",
 *                  "bytesRead", "bytesWritten", "bytesDeduplicated", "bytesSparse" },
 *     "blocks": [[index, "sha256 hex" | null, size, valid 1|0], …]
 *   }
 *
 * `blocks` lists, in index order, the version's own blocks: those that hold
 * data, and (null) those that are zeros where what it inherits holds data.
 * An index not listed is the block of the version `inheritsUid` names (its
 * document beside this one, resolved the same way), or all zeros when
 * `inheritsUid` is null; indexes at or past ceil(size / blockSize) are not
 * the version's. A whole document (an export, a version that inherits
 * nothing) is written as format 1: format 2 without `inheritsUid`, as
 * Blaine wrote every document before inheritance. The chunk of a block is
 * chunks/HASH[0:2]/HASH in a directory store.
 */
export const VERSION_DOC_FORMAT = "blaine-image-version";
export const VERSION_DOC_FORMAT_VERSION = 2;

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
function versionDocOfLines(version: VersionRow, lines: readonly string[]): string {
  // One block per line: a 1 TiB version is 262 144 short lines, greppable and diffable.
  return `${docHead(version)}${BLOCKS_OPEN}${lines.join(",\n")}${BLOCKS_CLOSE}`;
}

/** The document's text before its block lines' opening. */
function docHead(version: VersionRow): string {
  // A whole document (an export, a version that inherits nothing) is written as format 1, which Blaine before
  // inheritance reads too; only one that inherits needs format 2.
  const { inheritsUid, ...rest } = version;
  const head = JSON.stringify(
    {
      format: VERSION_DOC_FORMAT,
      formatVersion: inheritsUid ? VERSION_DOC_FORMAT_VERSION : 1,
      version: { ...rest, ...(inheritsUid ? { inheritsUid } : {}), date: new Date(version.date).toISOString() },
    },
    null,
    1,
  );
  return `${head.slice(0, -2)},\n`;
}

const BLOCKS_OPEN = ' "blocks": [\n';
const BLOCKS_CLOSE = "\n ]\n}\n";

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
    inheritsUid: typeof v.inheritsUid === "string" ? v.inheritsUid : null,
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
