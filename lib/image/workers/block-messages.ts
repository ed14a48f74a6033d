/**
 * The jobs and replies between `BlockWorkers` and its threads. Blocks never
 * travel in messages: they sit in the pool's shared memory, and a job names
 * them by byte offset and length.
 */

/** The first message a thread gets: the pool's shared memory. */
export interface WorkerStart {
  readonly kind: "start";
  readonly memory: SharedArrayBuffer;
}

/** sha256 of `length` bytes at `at`; null when they are all zeros. */
export interface HashJob {
  readonly kind: "hash";
  readonly id: number;
  readonly at: number;
  readonly length: number;
}

/**
 * The chunk object of the block at `at` (zstd at `level`, 0 for none):
 * compressed, written at `objectAt`; raw, its header written at `at` − 16
 * (the slot keeps those bytes free) so the block itself is the body.
 */
export interface EncodeJob {
  readonly kind: "encode";
  readonly id: number;
  readonly at: number;
  readonly length: number;
  readonly objectAt: number;
  readonly level: number;
}

/**
 * A stored block restored: its chunk object read from the file `chunkFile`
 * into `objectAt` (at most `capacity` bytes; without `chunkFile`, the caller
 * put `objectLength` bytes there), decoded into `at` (a raw object's body
 * stays where it is), checked against `hash` and `length`, and only then
 * written at `position` of the restore's target, descriptor `fd` (threads
 * share the process's descriptors).
 */
export interface RestoreJob {
  readonly kind: "restore";
  readonly id: number;
  readonly chunkFile?: string;
  readonly objectAt: number;
  readonly objectLength?: number;
  readonly capacity: number;
  readonly at: number;
  readonly hash: string;
  readonly length: number;
  readonly fd: number;
  readonly position: number;
}

export type BlockJob = HashJob | EncodeJob | RestoreJob;
/** The last message: free the thread's zstd contexts and end. */
export interface WorkerStop {
  readonly kind: "stop";
}

export type ToBlockWorker = WorkerStart | WorkerStop | BlockJob;

/**
 * A job's answer: `hash` (hash jobs: hex or null for zeros), `objectAt` and
 * `objectLength` (encode), `problem` (restore: why the chunk is missing or
 * damaged; none once the block is written), or `error` and its errno `code`
 * (the job failed: a bug, a chunk file that could not be read, the target
 * that could not be written).
 */
export interface BlockReply {
  readonly id: number;
  readonly hash?: string | null;
  readonly objectAt?: number;
  readonly objectLength?: number;
  readonly problem?: string;
  readonly error?: string;
  readonly code?: string;
}
