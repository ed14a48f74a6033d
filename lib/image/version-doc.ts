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
  // One block per line: a 1 TiB version is 262 144 short lines, greppable and diffable.
  return `${docHead(version)}${BLOCKS_OPEN}${lines.join(",\n")}${BLOCKS_CLOSE}`;
}

/** The document's text before its block lines' opening. */
function docHead(version: VersionRow): string {
  const head = JSON.stringify(
    {
      format: VERSION_DOC_FORMAT,
      formatVersion: VERSION_DOC_FORMAT_VERSION,
      version: { ...version, date: new Date(version.date).toISOString() },
    },
    null,
    1,
  );
  return `${head.slice(0, -2)},\n`;
}

const BLOCKS_OPEN = ' "blocks": [\n';
const BLOCKS_CLOSE = "\n ]\n}\n";
const CLOSE_BYTES = Buffer.from(BLOCKS_CLOSE);
const NEWLINE = 0x0a;
const LINE_SEPARATOR = Buffer.from(",\n");

/**
 * A document's bytes laid out as versionDocText lays them out (a base's
 * copy in the store, which a new version's document is made over), and
 * where its block lines are: `bytes[start, end)`, lines joined by ",\n",
 * each `[index,hash,size,valid]` in ASCII. Worked on as bytes, never as a
 * string: splitting a 4 GiB volume's 32 768 lines, joining them and
 * encoding the result again was most of a small session's document.
 */
export interface DocLines {
  readonly bytes: Buffer;
  readonly start: number;
  readonly end: number;
}

/** The block lines of a document (see DocLines), or undefined for any other layout. Lines are not checked one by one: a caller checks what it made against the catalog. */
export function docLinesOf(bytes: Uint8Array): DocLines | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const open = buffer.indexOf(`\n${BLOCKS_OPEN}`);
  const end = buffer.length - CLOSE_BYTES.length;
  const start = open + 1 + BLOCKS_OPEN.length;
  if (open < 0 || end < start || !buffer.subarray(end).equals(CLOSE_BYTES)) return undefined;
  return { bytes: buffer, start, end };
}

/**
 * Whether every line says its block is valid (no scrub found its chunk
 * bad): no line ends `,0]`, which only a valid flag of 0 can spell (a hash
 * is quoted hex, a size is followed by the flag).
 */
export function allLinesValid(doc: DocLines): boolean {
  const at = doc.bytes.indexOf(",0]", doc.start);
  return at < 0 || at >= doc.end;
}

/** How many block lines the document has. */
export function lineCount(doc: DocLines): number {
  if (doc.start === doc.end) return 0;
  let count = 1;
  for (let at = doc.bytes.indexOf(NEWLINE, doc.start); at >= 0 && at < doc.end; at = doc.bytes.indexOf(NEWLINE, at + 1)) count++;
  return count;
}

/**
 * The block lines of a version made over a base's document: the base's
 * lines, with those of the blocks at `indexes` (ascending) replaced by
 * `lineAt(index)`, or dropped where that gives none (and a line added where
 * the base had none). `parts` are byte ranges of the base's document and
 * the new lines, to be joined by ",\n"; `dropped` the base's lines taken out.
 */
export function spliceLines(doc: DocLines, indexes: readonly number[], lineAt: (index: number) => string | undefined): { parts: Uint8Array[]; dropped: string[]; added: number } {
  const { bytes, end } = doc;
  const parts: Uint8Array[] = [];
  const dropped: string[] = [];
  let added = 0;
  let cursor = doc.start;
  for (const index of indexes) {
    const at = firstLineFrom(doc, cursor, index);
    // The base's whole lines before this block's, without the separator after the last of them.
    if (at > cursor) parts.push(bytes.subarray(cursor, at === end ? end : at - LINE_SEPARATOR.length));
    cursor = at;
    if (at < end && indexAt(bytes, at) === index) {
      const next = nextLine(doc, at);
      dropped.push(bytes.toString("latin1", at, next === end ? end : next - LINE_SEPARATOR.length));
      cursor = next;
    }
    const line = lineAt(index);
    if (line !== undefined) {
      parts.push(Buffer.from(line, "latin1"));
      added++;
    }
  }
  if (cursor < end) parts.push(bytes.subarray(cursor, end));
  return { parts, dropped, added };
}

/** The bytes of data a block line stands for: its size, or 0 for a sparse block (no hash). */
export function lineDataBytes(line: string): number {
  const [, hash, size] = JSON.parse(line) as [number, string | null, number];
  return hash ? size : 0;
}

/** The document of `version` whose block lines are `parts` (see spliceLines), as the store keeps it. */
export function versionDocOfParts(version: VersionRow, parts: readonly Uint8Array[]): Buffer {
  const pieces: Uint8Array[] = [Buffer.from(`${docHead(version)}${BLOCKS_OPEN}`)];
  parts.forEach((part, at) => {
    if (at > 0) pieces.push(LINE_SEPARATOR);
    pieces.push(part);
  });
  pieces.push(CLOSE_BYTES);
  return Buffer.concat(pieces);
}

/** The block index of the line starting at `at`: the digits after its "[". */
function indexAt(bytes: Buffer, at: number): number {
  let index = 0;
  for (let digit = at + 1; bytes[digit]! >= 0x30 && bytes[digit]! <= 0x39; digit++) index = index * 10 + bytes[digit]! - 0x30;
  return index;
}

/** Where the line after the one starting at `at` starts (`end` after the last). */
function nextLine(doc: DocLines, at: number): number {
  const newline = doc.bytes.indexOf(NEWLINE, at);
  return newline < 0 || newline >= doc.end ? doc.end : newline + 1;
}

/** The start of the first line from the line start `from` on whose block index is `index` or more (`end`: none), by bisection over the bytes. */
function firstLineFrom(doc: DocLines, from: number, index: number): number {
  let low = from;
  let high = doc.end;
  while (low < high) {
    const middle = (low + high) >>> 1;
    // The start of the line holding `middle`: never before `low`, itself a line's start.
    const newline = doc.bytes.lastIndexOf(NEWLINE, middle - 1);
    const line = newline < low ? low : newline + 1;
    if (indexAt(doc.bytes, line) < index) low = nextLine(doc, line);
    else high = line;
  }
  return low;
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
