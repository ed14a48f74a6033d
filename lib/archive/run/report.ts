/** The counts `blaine run --json` reports; every file lands in exactly one of the first five. */
export interface RunCounts {
  new: number;
  modified: number;
  renamed: number;
  unchanged: number;
  skipped: number;
  deleted: number;
  /** Of the new and modified files, how many were stored as hardlinks to content already on the disk. */
  deduplicated: number;
  /** Archived files that verify found missing or damaged on a mounted copy, copied there again (not counted above). */
  recopied: number;
  bytesCopied: number;
}

export interface RunError {
  readonly path: string;
  readonly message: string;
}

export interface ProgressSnapshot {
  readonly files: number;
  readonly bytes: number;
  readonly plannedFiles: number;
  readonly plannedBytes: number;
  readonly parityBytes: number;
  readonly parityPlannedBytes: number;
  readonly startedAt: number;
}

/**
 * What a run did, gathered by the stages as they go. Stages report through
 * it instead of throwing, so one bad file never aborts a run.
 */
export class RunReport {
  readonly counts: RunCounts = {
    new: 0,
    modified: 0,
    renamed: 0,
    unchanged: 0,
    skipped: 0,
    deleted: 0,
    deduplicated: 0,
    recopied: 0,
    bytesCopied: 0,
  };
  readonly errors: RunError[] = [];
  readonly warnings: RunError[] = [];
  /** Files not archived for lack of space, and their bytes. */
  readonly notStored = { files: 0, bytes: 0 };
  /** Set when a safety stop refused to act; the run then exits 2. */
  safetyStop: string | undefined;
  /**
   * Set when a disk's catalog had no room to record more (the disk filled
   * up, typically from outside): what was committed stays, the rest of the
   * run's changes are not made, nothing is deleted, and the run exits 3.
   */
  outOfSpace: string | undefined;
  /** Lines a dry run prints: what it would do. */
  readonly plan: string[] = [];
  readonly startedAt = Date.now();
  readonly progress = { files: 0, bytes: 0, plannedFiles: 0, plannedBytes: 0, parityBytes: 0, parityPlannedBytes: 0 };

  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  planned(bytes: number): void {
    this.progress.plannedFiles++;
    this.progress.plannedBytes += bytes;
  }

  /** A file copied; `bytes` are those not yet counted by copying(). */
  done(bytes: number): void {
    this.progress.files++;
    this.progress.bytes += bytes;
  }

  /** Bytes of a large file copied so far, while it copies (negative: a copy that failed or is tried again takes them back). */
  copying(bytes: number): void {
    this.progress.bytes += bytes;
  }

  /** A file's data queued for parity, and its bytes through the encoder as they go (the progress line shows both). */
  parityPlanned(bytes: number): void {
    this.progress.parityPlannedBytes += bytes;
  }

  parityDone(bytes: number): void {
    this.progress.parityBytes += bytes;
  }

  snapshot(): ProgressSnapshot {
    return { ...this.progress, startedAt: this.startedAt };
  }
}
