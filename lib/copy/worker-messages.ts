import type { CopyJob, CopyOutcome } from "./copy-file-sync.ts";

/**
 * What crosses between the CopyPool and its workers: one JSON string of
 * tuples per message. Tuples, not objects: a 50 000-file run sends 100 000
 * jobs and replies, and parsing keyed objects was a tenth of its main thread.
 */

/** What a worker runs: a copy, or the placement of a copied temp (see DiskWriter). */
export type WorkerJob = ({ readonly kind: "copy" } & CopyJob) | { readonly kind: "place"; readonly temp: string; readonly target: string };

type JobTuple = [id: number, kind: "c", source: string, target: string, algorithm: CopyJob["algorithm"], mode: number, mtimeMs: number] | [id: number, kind: "p", temp: string, target: string];

/** [id, 0] placed; [id, 1, hash, size, sizeAfter, mtimeAfter] copied; [id, 2, message, errno code] failed. */
type ReplyTuple = [id: number, status: 0] | [id: number, status: 1, hash: string, size: number, sizeAfter: number, mtimeAfter: number] | [id: number, status: 2, message: string, code: string | null];

export type Reply = { readonly id: number; readonly ok: true; readonly outcome: CopyOutcome | undefined } | { readonly id: number; readonly ok: false; readonly message: string; readonly code?: string };

export function encodeJobs(jobs: readonly { id: number; job: WorkerJob }[]): string {
  return JSON.stringify(
    jobs.map(({ id, job }): JobTuple => (job.kind === "copy" ? [id, "c", job.source, job.target, job.algorithm, job.mode, job.mtimeMs] : [id, "p", job.temp, job.target])),
  );
}

export function decodeJobs(message: string): { id: number; job: WorkerJob }[] {
  return (JSON.parse(message) as JobTuple[]).map((tuple) =>
    tuple[1] === "c"
      ? { id: tuple[0], job: { kind: "copy", source: tuple[2], target: tuple[3], algorithm: tuple[4], mode: tuple[5], mtimeMs: tuple[6] } }
      : { id: tuple[0], job: { kind: "place", temp: tuple[2], target: tuple[3] } },
  );
}

export function encodeReplies(replies: readonly Reply[]): string {
  return JSON.stringify(
    replies.map((reply): ReplyTuple => {
      if (!reply.ok) return [reply.id, 2, reply.message, reply.code ?? null];
      const outcome = reply.outcome;
      return outcome ? [reply.id, 1, outcome.hash, outcome.size, outcome.sourceAfter.size, outcome.sourceAfter.mtimeMs] : [reply.id, 0];
    }),
  );
}

export function decodeReplies(message: string): Reply[] {
  return (JSON.parse(message) as ReplyTuple[]).map((tuple): Reply => {
    switch (tuple[1]) {
      case 0:
        return { id: tuple[0], ok: true, outcome: undefined };
      case 1:
        return { id: tuple[0], ok: true, outcome: { hash: tuple[2], size: tuple[3], sourceAfter: { size: tuple[4], mtimeMs: tuple[5] } } };
      case 2:
        return { id: tuple[0], ok: false, message: tuple[2], code: tuple[3] ?? undefined };
    }
  });
}
