/**
 * The block jobs themselves (hash, encode, restore), done on whichever thread
 * holds the pool's shared memory: a block worker (block-worker.ts), or the
 * pool's own thread when it has none (a change too small to be worth a
 * thread's start; see BlockWorkers). Synchronous; nothing is allocated per
 * block but the hash's text.
 */
import { ptr } from "bun:ffi";
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { errnoCode } from "../../errors.ts";
import { CHUNK_HEADER_BYTES, DamagedChunk, blockHash, blockHashOrZero, readChunkHeader, writeChunkHeader } from "../store/chunk-format.ts";
import type { ZstdInto } from "../store/zstd-into.ts";
import type { BlockJob, BlockReply, EncodeJob, RestoreJob } from "./block-messages.ts";

/**
 * Probes of an incompressibility check: four windows of 32 KiB spread
 * through the block, each compressed alone. When none shrinks by 3 % (as
 * borg's "auto" judges lz4), the block is stored raw without compressing
 * all of it: on random or encrypted data zstd:3 costs 1 ms per 4 MiB and
 * saves nothing, the probes a thirtieth of that.
 */
const PROBES = 4;
const PROBE_BYTES = 32 * 1024;

export class BlockJobs {
  readonly #memory: Buffer;
  readonly #base: number;
  /** Made on the first job that needs zstd: hashing alone never loads libzstd (or, without it, chooses Bun's zstd). */
  #zstd: ZstdInto | undefined;

  constructor(memory: SharedArrayBuffer) {
    this.#memory = Buffer.from(memory);
    this.#base = ptr(this.#memory);
  }

  /** Frees the zstd contexts (the thread's last call). */
  free(): void {
    this.#zstd?.free();
    this.#zstd = undefined;
  }

  /** Runs a job; a failure is its reply's error (with the errno code), never a throw. */
  run(job: BlockJob): BlockReply {
    try {
      return this.#run(job);
    } catch (error) {
      return { id: job.id, error: error instanceof Error ? error.message : String(error), code: errnoCode(error) };
    }
  }

  #run(job: BlockJob): BlockReply {
    if (job.kind === "hash") {
      const data = this.#memory.subarray(job.at, job.at + job.length);
      return { id: job.id, hash: blockHashOrZero(data) };
    }
    if (job.kind === "encode") return { id: job.id, ...this.#encode(job) };
    const block = this.#fetchAndDecode(job);
    if (typeof block === "string") return { id: job.id, problem: block };
    // Written by this thread the moment it is checked. Handed back for the main thread to write, each block cost a
    // message and a copy on a third thread (Bun's pool) from cold caches: 2.3 s instead of 1.8 s for the bench's
    // 4 GiB image, although two threads writing now sometimes wait for the file's lock.
    for (let done = 0; done < block.length; ) done += writeSync(job.fd, block, done, block.length - done, job.position + done);
    return { id: job.id };
  }

  get #zstdInto(): ZstdInto {
    if (!this.#zstd) {
      const { openZstdInto } = require("../store/zstd-into.ts") as typeof import("../store/zstd-into.ts");
      this.#zstd = openZstdInto();
    }
    return this.#zstd;
  }

  /** Whether the probes of a block all fail to shrink (blocks under 8 probes long are always compressed whole). */
  #looksIncompressible(job: EncodeJob, scratch: number): boolean {
    if (job.length < 2 * PROBES * PROBE_BYTES) return false;
    const step = Math.floor((job.length - PROBE_BYTES) / (PROBES - 1));
    for (let probe = 0; probe < PROBES; probe++) {
      const packed = this.#zstdInto.compress(scratch, Math.floor(PROBE_BYTES * 0.97), this.#base + job.at + probe * step, PROBE_BYTES, job.level);
      if (packed !== undefined) return false;
    }
    return true;
  }

  /**
   * Writes the chunk object: where it starts and its length. Compressed into
   * the slot's object space; raw (random data, or zstd does not make it
   * smaller) as a header just before the block, which is its body: no copy.
   */
  #encode(job: EncodeJob): { objectAt: number; objectLength: number } {
    const body = job.objectAt + CHUNK_HEADER_BYTES;
    if (job.level > 0 && !this.#looksIncompressible(job, this.#base + body)) {
      const packed = this.#zstdInto.compress(this.#base + body, job.length - 1, this.#base + job.at, job.length, job.level);
      if (packed !== undefined) {
        writeChunkHeader(this.#memory.subarray(job.objectAt, body), 1, job.length);
        return { objectAt: job.objectAt, objectLength: CHUNK_HEADER_BYTES + packed };
      }
    }
    const rawAt = job.at - CHUNK_HEADER_BYTES;
    writeChunkHeader(this.#memory.subarray(rawAt, job.at), 0, job.length);
    return { objectAt: rawAt, objectLength: CHUNK_HEADER_BYTES + job.length };
  }

  /** Reads (when given a chunk file), decodes and checks one stored block: the block, else why it cannot be had. */
  #fetchAndDecode(job: RestoreJob): Buffer | string {
    let objectLength = job.objectLength ?? 0;
    if (job.chunkFile !== undefined) {
      const length = readChunkFile(job.chunkFile, this.#memory.subarray(job.objectAt, job.objectAt + job.capacity));
      if (length === undefined) return "chunk missing from the store";
      if (length > job.capacity) return `chunk damaged: ${length} bytes, more than a block's object can be`;
      objectLength = length;
    }
    return this.#decode(job, objectLength);
  }

  /**
   * Decodes and checks the chunk object of `objectLength` bytes at
   * `job.objectAt`: the block (decompressed into `job.at`, or a raw object's
   * body where it lies: no copy), else what is wrong with the chunk.
   */
  #decode(job: RestoreJob, objectLength: number): Buffer | string {
    const memory = this.#memory;
    const object = memory.subarray(job.objectAt, job.objectAt + objectLength);
    let header: { kind: number; length: number };
    try {
      header = readChunkHeader(object);
    } catch (error) {
      return `chunk damaged: ${error instanceof DamagedChunk ? error.message : String(error)}`;
    }
    const body = job.objectAt + CHUNK_HEADER_BYTES;
    const bodyLength = objectLength - CHUNK_HEADER_BYTES;
    const blockCapacity = job.capacity - CHUNK_HEADER_BYTES;
    let block: Buffer;
    if (header.kind === 0) {
      if (bodyLength > blockCapacity) return `chunk damaged: holds more than a block (${bodyLength} bytes)`;
      block = memory.subarray(body, body + bodyLength);
    } else {
      const result = this.#zstdInto.decompress(this.#base + job.at, blockCapacity, this.#base + body, bodyLength);
      if (typeof result === "string") return `chunk damaged: zstd: ${result}`;
      block = memory.subarray(job.at, job.at + result);
    }
    if (block.length !== header.length) return `chunk damaged: holds ${block.length} bytes, its header says ${header.length}`;
    if (blockHash(block) !== job.hash) return "chunk damaged: its content does not match its hash";
    if (block.length !== job.length) return `chunk holds ${block.length} bytes, the block is ${job.length}`;
    return block;
  }
}

/** A chunk file read into `into`: its length (more than `into` holds: not read whole), or undefined when there is none. */
function readChunkFile(path: string, into: Buffer): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    throw error;
  }
  try {
    let done = 0;
    while (done < into.length) {
      const read = readSync(fd, into, done, into.length - done, done);
      if (read === 0) return done;
      done += read;
    }
    // Filled: a whole raw block is exactly this long; asked only then, the size says whether there is more.
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}
