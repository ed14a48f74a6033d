import type { CopySettled } from "./builtin-copy.ts";
import type { CopyJob, CopyOutcome } from "./copy-file-sync.ts";
import type { FileChecksums } from "./digest-ring.ts";

/**
 * What crosses between the CopyPool and its workers: one JSON string of
 * tuples per message. Tuples, not objects: a 50 000-file run sends 100 000
 * copies and placements, and parsing keyed objects was a tenth of its main
 * thread.
 */

/** A failure as data: the message and errno code survive the thread hop. */
export interface JobFailure {
  readonly message: string;
  readonly code?: string;
}

/** One copy's result, or why it failed. */
export type CopySettledData = { readonly ok: true; readonly outcome: CopyOutcome } | ({ readonly ok: false } & JobFailure);

/**
 * What a worker runs: one copy; several small copies (one reply for all);
 * or the placements of a batch's copied temps (see DiskWriter).
 */
export type WorkerJob =
  | ({ readonly kind: "copy" } & CopyJob)
  | { readonly kind: "copies"; readonly copies: readonly CopyJob[] }
  | { readonly kind: "placements"; readonly root: string; readonly moves: readonly { readonly temp: string; readonly target: string }[] };

/** A job's result: a copy's outcome, each copy's result, or each placement's failure (undefined: placed). */
export type JobOutcome = CopyOutcome | CopySettledData[] | (JobFailure | undefined)[];

export type Reply = { readonly id: number; readonly ok: true; readonly outcome: JobOutcome } | ({ readonly id: number; readonly ok: false } & JobFailure);

/**
 * A reply as the CopyPool hands it on: failures are already Errors and a
 * copies reply is already CopySettled[], so no second pass per file.
 */
export type ReceivedOutcome = CopyOutcome | CopySettled[] | (Error | undefined)[];
export type ReceivedReply = { readonly id: number; readonly ok: true; readonly outcome: ReceivedOutcome } | { readonly id: number; readonly ok: false; readonly error: Error };
/** How far a large copy has got: not its reply (that follows, in the same order), only news for the progress line. */
export type ReceivedProgress = { readonly id: number; readonly progress: number };

type CopyTuple = [
  source: string, target: string, algorithm: CopyJob["algorithm"], mode: number, mtimeMs: number, mtimeNsec: number | null, expectedSize: number | null,
  checksumBlockSize: number | null,
];
type JobTuple = [id: number, kind: "c", ...copy: CopyTuple] | [id: number, kind: "m", copies: CopyTuple[]] | [id: number, kind: "p", root: string, moves: [temp: string, target: string][]];

/** Checksums as base64: a 4 GiB file's hundreds of block MD5s would be thousands of numbers in JSON. */
type ChecksumsTuple = [blockSize: number, md5: string, md5First16k: string, blockMd5s: string, blockCrcs: string];
type OutcomeTuple = [hash: string, size: number, sizeAfter: number, mtimeAfter: number, checksums?: ChecksumsTuple];
type FailureTuple = [message: string, code: string | null];
type CopyResultTuple = [ok: 1, outcome: OutcomeTuple] | [ok: 0, failure: FailureTuple];
/** [id, 0, failure] failed; [id, 1, outcome] copied; [id, 2, (outcome | failure)[]] copies; [id, 3, (failure | null)[]] placements; [id, 4, bytes] a copy's progress. */
type ReplyTuple =
  | [id: number, status: 0, failure: FailureTuple]
  | [id: number, status: 1, outcome: OutcomeTuple]
  | [id: number, status: 2, results: CopyResultTuple[]]
  | [id: number, status: 3, failures: (FailureTuple | null)[]]
  | [id: number, status: 4, bytesSoFar: number];

const copyTuple = (job: CopyJob): CopyTuple => [
  job.source, job.target, job.algorithm, job.mode, job.mtimeMs, job.mtimeNsec ?? null, job.expectedSize ?? null, job.checksums?.blockSize ?? null,
];
const copyJob = (tuple: CopyTuple): CopyJob => ({
  source: tuple[0], target: tuple[1], algorithm: tuple[2], mode: tuple[3], mtimeMs: tuple[4], mtimeNsec: tuple[5], expectedSize: tuple[6] ?? undefined,
  checksums: tuple[7] === null ? undefined : { blockSize: tuple[7] },
});
const base64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
const bytesOf = (text: string) => new Uint8Array(Buffer.from(text, "base64"));
const checksumsTuple = (sums: FileChecksums): ChecksumsTuple => [sums.blockSize, base64(sums.md5), base64(sums.md5First16k), base64(sums.blockMd5s), base64(new Uint8Array(sums.blockCrcs.buffer, sums.blockCrcs.byteOffset, sums.blockCrcs.byteLength))];
const checksumsOf = (tuple: ChecksumsTuple): FileChecksums => ({
  blockSize: tuple[0], md5: bytesOf(tuple[1]), md5First16k: bytesOf(tuple[2]), blockMd5s: bytesOf(tuple[3]), blockCrcs: new Uint32Array(bytesOf(tuple[4]).buffer),
});
const outcomeTuple = (outcome: CopyOutcome): OutcomeTuple => {
  const tuple: OutcomeTuple = [outcome.hash, outcome.size, outcome.sourceAfter.size, outcome.sourceAfter.mtimeMs];
  if (outcome.checksums) tuple.push(checksumsTuple(outcome.checksums));
  return tuple;
};
const outcomeOf = (tuple: OutcomeTuple): CopyOutcome => ({
  hash: tuple[0], size: tuple[1], sourceAfter: { size: tuple[2], mtimeMs: tuple[3] }, ...(tuple[4] ? { checksums: checksumsOf(tuple[4]) } : {}),
});
const failureTuple = (failure: JobFailure): FailureTuple => [failure.message, failure.code ?? null];
/** An error as the worker saw it, with its errno code (the copier tells "vanished" from "disk full" by it). */
const errorOf = (tuple: FailureTuple): Error => Object.assign(new Error(tuple[0]), { code: tuple[1] ?? undefined });

export function encodeJobs(jobs: readonly { id: number; job: WorkerJob }[]): string {
  return JSON.stringify(
    jobs.map(({ id, job }): JobTuple => {
      switch (job.kind) {
        case "copy":
          return [id, "c", ...copyTuple(job)];
        case "copies":
          return [id, "m", job.copies.map(copyTuple)];
        case "placements":
          return [id, "p", job.root, job.moves.map((move): [string, string] => [move.temp, move.target])];
      }
    }),
  );
}

export function decodeJobs(message: string): { id: number; job: WorkerJob }[] {
  return (JSON.parse(message) as JobTuple[]).map((tuple) => {
    switch (tuple[1]) {
      case "c":
        return { id: tuple[0], job: { kind: "copy", ...copyJob(tuple.slice(2) as CopyTuple) } };
      case "m":
        return { id: tuple[0], job: { kind: "copies", copies: tuple[2].map(copyJob) } };
      case "p":
        return { id: tuple[0], job: { kind: "placements", root: tuple[2], moves: tuple[3].map(([temp, target]) => ({ temp, target })) } };
    }
  });
}

export function encodeReplies(replies: readonly { id: number; job: WorkerJob; reply: Reply }[]): string {
  return JSON.stringify(
    replies.map(({ id, job, reply }): ReplyTuple => {
      if (!reply.ok) return [id, 0, failureTuple(reply)];
      switch (job.kind) {
        case "copy":
          return [id, 1, outcomeTuple(reply.outcome as CopyOutcome)];
        case "copies":
          return [id, 2, (reply.outcome as CopySettledData[]).map((result): CopyResultTuple => (result.ok ? [1, outcomeTuple(result.outcome)] : [0, failureTuple(result)]))];
        case "placements":
          return [id, 3, (reply.outcome as (JobFailure | undefined)[]).map((failure) => (failure ? failureTuple(failure) : null))];
      }
    }),
  );
}

/** A copy's bytes so far, as a message of its own (a large copy says it every 64 MiB or 250 ms: see CopyProgress). */
export function encodeProgress(id: number, bytesSoFar: number): string {
  return JSON.stringify([[id, 4, bytesSoFar] satisfies ReplyTuple]);
}

export function decodeReplies(message: string): (ReceivedReply | ReceivedProgress)[] {
  return (JSON.parse(message) as ReplyTuple[]).map((tuple): ReceivedReply | ReceivedProgress => {
    switch (tuple[1]) {
      case 0:
        return { id: tuple[0], ok: false, error: errorOf(tuple[2]) };
      case 1:
        return { id: tuple[0], ok: true, outcome: outcomeOf(tuple[2]) };
      case 2:
        return {
          id: tuple[0],
          ok: true,
          outcome: tuple[2].map((result): CopySettled => (result[0] === 1 ? { ok: true, result: outcomeOf(result[1]) } : { ok: false, error: errorOf(result[1]) })),
        };
      case 3:
        return { id: tuple[0], ok: true, outcome: tuple[2].map((failure) => (failure ? errorOf(failure) : undefined)) };
      case 4:
        return { id: tuple[0], progress: tuple[2] };
    }
  });
}
