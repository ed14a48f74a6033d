/**
 * A digest thread of a copy: takes the copy's chunks from the ring (see
 * digest-ring.ts) and computes one serial digest over them, the whole
 * file's MD5 or each block's MD5 and CRC32 (the last block zero-padded),
 * writing it into the copy's result memory (see DigestResults). Errors are
 * reported through the ring, never thrown away.
 */
import { RingConsumer, type RingMemory } from "./digest-ring.ts";
import { DigestResults } from "./copy-digests.ts";

declare const self: Worker;

export interface DigestJob {
  readonly ring: RingMemory;
  readonly results: SharedArrayBuffer;
  /** 0: the whole file's MD5; 1: the blocks' MD5s and CRC32s. */
  readonly consumer: 0 | 1;
  readonly blockSize: number;
}

/** Zeros to pad the last block with, a piece at a time (a block may be hundreds of megabytes). */
const zeros = new Uint8Array(1 << 20);

function padWithZeros(hasher: Bun.CryptoHasher, crc: number, count: number): number {
  for (let left = count; left > 0; left -= zeros.length) {
    const piece = zeros.subarray(0, Math.min(left, zeros.length));
    hasher.update(piece);
    crc = Bun.hash.crc32(piece, crc);
  }
  return crc;
}

function digestWhole(ring: RingConsumer, results: DigestResults): void {
  const hasher = new Bun.CryptoHasher("md5");
  for (let chunk = ring.next(); chunk; chunk = ring.next()) {
    hasher.update(chunk);
    ring.release();
  }
  if (!ring.aborted) results.setMd5(new Uint8Array(hasher.digest()));
}

function digestBlocks(ring: RingConsumer, results: DigestResults, blockSize: number): void {
  let hasher = new Bun.CryptoHasher("md5");
  let crc = 0;
  let inBlock = 0;
  let block = 0;
  const endBlock = () => {
    results.setBlock(block++, new Uint8Array(hasher.digest()), crc >>> 0);
    hasher = new Bun.CryptoHasher("md5");
    crc = 0;
    inBlock = 0;
  };
  for (let chunk = ring.next(); chunk; chunk = ring.next()) {
    for (let at = 0; at < chunk.length; ) {
      const piece = chunk.subarray(at, at + Math.min(chunk.length - at, blockSize - inBlock));
      hasher.update(piece);
      crc = Bun.hash.crc32(piece, crc);
      inBlock += piece.length;
      at += piece.length;
      if (inBlock === blockSize) endBlock();
    }
    ring.release();
  }
  if (ring.aborted) return;
  if (inBlock > 0) {
    crc = padWithZeros(hasher, crc, blockSize - inBlock);
    endBlock();
  }
}

self.onmessage = (event: MessageEvent<DigestJob>) => {
  const job = event.data;
  const ring = new RingConsumer(job.ring, job.consumer);
  let failed = false;
  try {
    const results = new DigestResults(job.results);
    if (job.consumer === 0) digestWhole(ring, results);
    else digestBlocks(ring, results, job.blockSize);
  } catch {
    // The copy fails for it (see RingProducer.finish); this thread stays for the next copy.
    failed = true;
  }
  ring.finish(failed);
};
