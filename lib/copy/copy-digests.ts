/**
 * The checksums a copy computes beside its content hash (see FileChecksums),
 * from the copy's one read: the copy thread reads each chunk into the ring,
 * hashes it for the content hash and writes it; two digest threads take the
 * same bytes from shared memory, one for the whole file's MD5, one for the
 * blocks' MD5s and CRC32s. Each copy thread starts its two on its first such
 * copy and keeps them (unreferenced: they never keep a process alive).
 */
import { CONSUMERS, ringData, ringMemory, RingProducer, type ChecksumRequest, type FileChecksums } from "./digest-ring.ts";
import type { DigestJob } from "./digest-worker.ts";

const HEADER = 32;
const BLOCKS_WRITTEN = 0;
const OVERFLOW = 1;
const MD5_AT = 16;

/** The MD5 of a file's first 16 KiB (of all of it when shorter), from its first chunk. */
function md5First16kOf(firstChunk: Uint8Array): Uint8Array {
  return new Uint8Array(new Bun.CryptoHasher("md5").update(firstChunk.subarray(0, 16384)).digest());
}

/**
 * The digest threads' results, in shared memory: two int32 words (blocks
 * written, overflow), the file's MD5 at 16, then each block's MD5 and each
 * block's CRC32, for at most `maxBlocks` blocks (a file that grew past them
 * has none: its copy is retried anyway).
 */
export class DigestResults {
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #maxBlocks: number;

  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#words = new Int32Array(buffer, 0, 2);
    this.#maxBlocks = (buffer.byteLength - HEADER) / 20;
  }

  static forBlocks(maxBlocks: number): DigestResults {
    return new DigestResults(new SharedArrayBuffer(HEADER + maxBlocks * 20));
  }

  setMd5(md5: Uint8Array): void {
    new Uint8Array(this.buffer, MD5_AT, 16).set(md5);
  }

  setBlock(block: number, md5: Uint8Array, crc: number): void {
    if (block >= this.#maxBlocks) {
      this.#words[OVERFLOW] = 1;
      return;
    }
    new Uint8Array(this.buffer, HEADER + block * 16, 16).set(md5);
    new Uint32Array(this.buffer, HEADER + this.#maxBlocks * 16 + block * 4, 1)[0] = crc;
    this.#words[BLOCKS_WRITTEN] = block + 1;
  }

  /** Copies out of shared memory; undefined when the blocks overflowed. */
  read(blockSize: number, md5First16k: Uint8Array): FileChecksums | undefined {
    if (this.#words[OVERFLOW]) return undefined;
    const blocks = this.#words[BLOCKS_WRITTEN];
    return {
      blockSize,
      md5: new Uint8Array(this.buffer, MD5_AT, 16).slice(),
      md5First16k,
      blockMd5s: new Uint8Array(this.buffer, HEADER, blocks * 16).slice(),
      blockCrcs: new Uint32Array(this.buffer, HEADER + this.#maxBlocks * 16, blocks).slice(),
    };
  }
}

/**
 * One copy's side of the digests: slots to read into, published in order,
 * and the checksums at the end. Digests that fail or stall are given up:
 * the copy goes on in its own buffer and brings no checksums.
 */
export class DigestingCopy {
  readonly #producer: RingProducer;
  readonly #results: DigestResults;
  readonly #blockSize: number;
  #md5First16k: Uint8Array | undefined;
  #slot: Uint8Array | undefined;
  #givenUp = false;

  constructor(producer: RingProducer, results: DigestResults, blockSize: number) {
    this.#producer = producer;
    this.#results = results;
    this.#blockSize = blockSize;
  }

  /** Where to read the next chunk (a slot of the ring); undefined once the digests are given up. */
  slot(): Uint8Array | undefined {
    if (this.#givenUp) return undefined;
    this.#slot = this.#producer.slot();
    this.#givenUp = this.#slot === undefined;
    return this.#slot;
  }

  /** The first `length` bytes of the slot are the file's next chunk. */
  publish(length: number): void {
    if (this.#givenUp) return;
    // The first chunk holds the first 16 KiB (a short read is the file's end).
    this.#md5First16k ??= md5First16kOf(this.#slot!.subarray(0, length));
    this.#producer.publish(length);
  }

  /** The file is read whole: its checksums once the digest threads have written them, or undefined. */
  finish(): FileChecksums | undefined {
    if (this.#givenUp || !this.#producer.finish()) return undefined;
    return this.#results.read(this.#blockSize, this.#md5First16k ?? md5First16kOf(new Uint8Array(0)));
  }

  /** The copy failed: the digest threads stop. */
  abort(): void {
    this.#producer.abort();
  }
}

/** A copy thread's digest threads and ring memory (see the file comment). */
export class CopyDigests {
  #helpers: Worker[] | undefined;
  #data: SharedArrayBuffer | undefined;

  /** Starts the digests of one copy of about `expectedSize` bytes. */
  start(request: ChecksumRequest, expectedSize: number): DigestingCopy {
    this.#data ??= ringData();
    this.#helpers ??= Array.from({ length: CONSUMERS }, () => {
      const helper = new Worker(new URL("./digest-worker.ts", import.meta.url).href);
      helper.unref();
      return helper;
    });
    const ring = ringMemory(this.#data);
    // A block more than the size says: a file that grows a little is still digested (and then copied again).
    const results = DigestResults.forBlocks(Math.ceil(expectedSize / request.blockSize) + 1);
    this.#helpers.forEach((helper, consumer) => {
      helper.postMessage({ ring, results: results.buffer, consumer: consumer as 0 | 1, blockSize: request.blockSize } satisfies DigestJob);
    });
    return new DigestingCopy(new RingProducer(ring), results, request.blockSize);
  }
}
