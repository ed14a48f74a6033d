/** Writing the files of a recovery set: each one atomically (a temp beside it, then rename). */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { writerTempName } from "../fs/dead-temps.ts";

/** SET.par2 → SET (the base every file of the set starts with). */
export function setBase(setPath: string): string {
  return setPath.replace(/\.par2$/i, "");
}

/** What the temps of `path` start with (`.NAME.`; a killed writer's are removed by `removeDeadTemps` with it). */
export function pendingTempPrefix(path: string): string {
  return `.${basename(path)}.`;
}

/** The line a create or repair says when it removed temps that killed ones left (par2 and PAR 1.0 alike). */
export function deadTempsLine(removed: number): string {
  return `removed ${removed > 1 ? `${removed} temp files` : "1 temp file"} of a par2 create or repair killed before it finished`;
}

/**
 * One file being written: appended to in a temp file beside its final name,
 * renamed into place by `commit` (fsynced first unless `sync: false`, when
 * the caller makes a whole batch durable with one syncfs).
 */
export class PendingFile {
  readonly path: string;
  readonly #temp: string;
  #fd: number | undefined;
  bytes = 0;

  constructor(path: string) {
    this.path = path;
    this.#temp = join(dirname(path), writerTempName(pendingTempPrefix(path)));
    this.#fd = openSync(this.#temp, "w", 0o644);
  }

  /** Appends after the furthest byte written so far. */
  write(chunks: readonly Uint8Array[]): void {
    for (const chunk of chunks) this.writeAt(chunk, this.bytes);
  }

  /** Writes at `position` (recovery slices go in range by range, their headers last). */
  writeAt(chunk: Uint8Array, position: number): void {
    const fd = this.#fd!;
    let offset = 0;
    while (offset < chunk.length) offset += writeSync(fd, chunk, offset, chunk.length - offset, position + offset);
    this.bytes = Math.max(this.bytes, position + chunk.length);
  }

  commit(options: { sync?: boolean } = {}): void {
    const fd = this.#fd!;
    if (options.sync !== false) fsyncSync(fd);
    closeSync(fd);
    this.#fd = undefined;
    renameSync(this.#temp, this.path);
  }

  abort(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    rmSync(this.#temp, { force: true });
  }
}
