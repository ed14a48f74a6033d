/**
 * A block worker thread: hashes, compresses and decompresses blocks in the
 * pool's shared memory (see block-workers.ts). Synchronous work in a
 * thread of its own, so the main thread keeps reading, writing and talking
 * to the catalog; nothing is allocated per block but the hash's text.
 */
import { ptr } from "bun:ffi";
import { CHUNK_HEADER_BYTES, DamagedChunk, blockHash, blockHashOrZero, readChunkHeader, writeChunkHeader } from "../store/chunk-format.ts";
import { ZstdInto } from "../store/zstd-into.ts";
import type { BlockJob, BlockReply, DecodeJob, EncodeJob, ToBlockWorker } from "./block-messages.ts";

declare const self: Worker;

let memory: Buffer;
let base = 0;
const zstd = new ZstdInto();

self.onmessage = (event: MessageEvent<ToBlockWorker>) => {
  const message = event.data;
  if (message.kind === "start") {
    memory = Buffer.from(message.memory);
    base = ptr(memory);
    return;
  }
  if (message.kind === "stop") {
    zstd.free();
    process.exit(0);
  }
  let reply: BlockReply;
  try {
    reply = run(message);
  } catch (error) {
    reply = { id: message.id, error: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(reply);
};

function run(job: BlockJob): BlockReply {
  if (job.kind === "hash") {
    const data = memory.subarray(job.at, job.at + job.length);
    return { id: job.id, hash: blockHashOrZero(data) };
  }
  if (job.kind === "encode") return { id: job.id, objectLength: encode(job) };
  return { id: job.id, problem: decode(job) };
}

/** Writes the chunk object; its length. Stored raw when zstd does not make it smaller (random data). */
function encode(job: EncodeJob): number {
  const body = job.objectAt + CHUNK_HEADER_BYTES;
  const packed = job.level > 0 ? zstd.compress(base + body, job.length - 1, base + job.at, job.length, job.level) : undefined;
  if (packed !== undefined) {
    writeChunkHeader(memory.subarray(job.objectAt, body), 1, job.length);
    return CHUNK_HEADER_BYTES + packed;
  }
  writeChunkHeader(memory.subarray(job.objectAt, body), 0, job.length);
  memory.copy(memory, body, job.at, job.at + job.length);
  return CHUNK_HEADER_BYTES + job.length;
}

/** Decodes and checks a chunk object: undefined when it holds the block, else what is wrong with it. */
function decode(job: DecodeJob): string | undefined {
  const object = memory.subarray(job.objectAt, job.objectAt + job.objectLength);
  let header: { kind: number; length: number };
  try {
    header = readChunkHeader(object);
  } catch (error) {
    return `chunk damaged: ${error instanceof DamagedChunk ? error.message : String(error)}`;
  }
  const bodyLength = job.objectLength - CHUNK_HEADER_BYTES;
  let length: number;
  if (header.kind === 0) {
    length = Math.min(bodyLength, job.capacity);
    memory.copy(memory, job.at, job.objectAt + CHUNK_HEADER_BYTES, job.objectAt + CHUNK_HEADER_BYTES + length);
    if (bodyLength > job.capacity) return `chunk damaged: holds more than a block (${bodyLength} bytes)`;
  } else {
    const result = zstd.decompress(base + job.at, job.capacity, base + job.objectAt + CHUNK_HEADER_BYTES, bodyLength);
    if (typeof result === "string") return `chunk damaged: zstd: ${result}`;
    length = result;
  }
  if (length !== header.length) return `chunk damaged: holds ${length} bytes, its header says ${header.length}`;
  if (blockHash(memory.subarray(job.at, job.at + length)) !== job.hash) return "chunk damaged: its content does not match its hash";
  if (length !== job.length) return `chunk holds ${length} bytes, the block is ${job.length}`;
  return undefined;
}
