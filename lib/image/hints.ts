import { readFileSync } from "node:fs";
import { BlaineError, ExitCode, UsageError, errorMessage } from "../errors.ts";

/**
 * Change hints in Ceph's `rbd diff --format=json` form: a list of
 * `{"offset": N, "length": N, "exists": "true"|"false"}` (`exists` is a
 * string; "false" is a range discarded or zeroed since the snapshot the
 * diff started from). Hints past the end of the source are refused, as
 * backy2 does: they were taken of another image.
 */
export interface Hint {
  readonly offset: number;
  readonly length: number;
  readonly exists: boolean;
}

export function readHints(file: string, sourceSize: number): Hint[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new UsageError(`--hints ${file}: ${errorMessage(error)}`);
  }
  if (!Array.isArray(parsed)) throw new UsageError(`--hints ${file}: not a list of {"offset","length","exists"} (rbd diff --format=json)`);
  return parsed.map((entry, at) => {
    const where = `--hints ${file}: entry ${at + 1}`;
    if (typeof entry !== "object" || entry === null) throw new UsageError(`${where} is not an object`);
    const { offset, length, exists } = entry as Record<string, unknown>;
    if (!Number.isSafeInteger(offset) || (offset as number) < 0 || !Number.isSafeInteger(length) || (length as number) < 0) {
      throw new UsageError(`${where}: offset and length must be whole numbers of bytes`);
    }
    const present = exists === "true" || exists === true ? true : exists === "false" || exists === false ? false : undefined;
    if (present === undefined) throw new UsageError(`${where}: exists must be "true" or "false"`);
    if ((offset as number) + (length as number) > sourceSize) {
      throw new UsageError(`${where} (offset ${offset}, length ${length}) ends past the end of the source (${sourceSize} bytes): these hints are not of this image`);
    }
    return { offset: offset as number, length: length as number, exists: present };
  });
}

/**
 * The blocks the hints touch: those to read (any byte hinted as existing,
 * or only partly discarded) and those wholly discarded (sparse, not read).
 */
export function hintedBlocks(hints: readonly Hint[], size: number, blockSize: number): { read: Set<number>; zero: Set<number> } {
  const read = new Set<number>();
  const touchedByDiscard = new Set<number>();
  const zero = new Set<number>();
  for (const hint of hints) {
    if (hint.length === 0) continue;
    const first = Math.floor(hint.offset / blockSize);
    const last = Math.floor((hint.offset + hint.length - 1) / blockSize);
    for (let index = first; index <= last; index++) {
      if (hint.exists) read.add(index);
      else touchedByDiscard.add(index);
    }
  }
  // A block is sparse only when discards cover all of it; a part still holds data and is read. The discards are
  // merged first: two over the same half of a block cover half of it, not all (their lengths summed said all).
  const covered = new Map<number, number>();
  for (const { offset, end } of mergedRanges(hints.filter((hint) => !hint.exists && hint.length > 0))) {
    for (let index = Math.floor(offset / blockSize); index * blockSize < end; index++) {
      const start = Math.max(offset, index * blockSize);
      const stop = Math.min(end, (index + 1) * blockSize, size);
      covered.set(index, (covered.get(index) ?? 0) + Math.max(0, stop - start));
    }
  }
  for (const index of touchedByDiscard) {
    if (read.has(index)) continue;
    const length = Math.min(blockSize, size - index * blockSize);
    if ((covered.get(index) ?? 0) >= length) zero.add(index);
    else read.add(index);
  }
  return { read, zero };
}

/** The union of the hints' ranges, as [offset, end) ranges that neither overlap nor touch, in order. */
function mergedRanges(hints: readonly Hint[]): { offset: number; end: number }[] {
  const merged: { offset: number; end: number }[] = [];
  for (const hint of [...hints].sort((a, b) => a.offset - b.offset)) {
    const last = merged.at(-1);
    if (last && hint.offset <= last.end) last.end = Math.max(last.end, hint.offset + hint.length);
    else merged.push({ offset: hint.offset, end: hint.offset + hint.length });
  }
  return merged;
}

/**
 * The hint sanity check's verdict on a block outside the hints that differs
 * from the base's: the hints missed a change, and no version may be made.
 */
export function hintsMissedChange(hintsFile: string | undefined, block: { index: number; offset: number; length: number }): BlaineError {
  return new BlaineError(
    `--hints ${hintsFile ?? "(hints)"}: block ${block.index} (bytes ${block.offset}–${block.offset + block.length}) changed since the base version but is outside the hints; the hints are wrong or not of this image. No version was made; back up without --hints (a full read with --from)`,
    ExitCode.failure,
  );
}
