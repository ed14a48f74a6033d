/**
 * Worker-thread entry: the MD5 and CRC32 of every slice of one file (the
 * last zero-padded, slices in holes taken as zeros without reading), so a
 * large file's two MD5 streams run on two threads: this one for the slices,
 * the creating thread for the whole file. Replies with the slices' MD5s end
 * to end and their CRC32s, or the error's message.
 */
import { closeSync, openSync } from "node:fs";
import { fsPath } from "../fs/byte-names.ts";
import { hashZeros } from "./packets.ts";
import { readAt } from "./read-at.ts";

declare const self: Worker;

export interface SliceHashRequest {
  readonly path: string;
  readonly length: number;
  readonly sliceSize: number;
  /** Slices (numbered from 0) lying wholly in holes. */
  readonly holes: readonly number[];
}

export type SliceHashReply = { readonly md5s: Uint8Array; readonly crcs: Uint32Array } | { readonly error: string };

/** Slices are read and hashed in pieces of at most this much: a slice may be hundreds of megabytes. */
const PIECE = 1024 * 1024;

function hashSlices({ path, length, sliceSize, holes }: SliceHashRequest): { md5s: Uint8Array; crcs: Uint32Array } {
  const slices = Math.ceil(length / sliceSize);
  const md5s = new Uint8Array(slices * 16);
  const crcs = new Uint32Array(slices);
  const inHole = new Set(holes);
  const piece = new Uint8Array(Math.min(PIECE, sliceSize));
  const zeros = new Uint8Array(piece.length);
  let zero: { md5: Uint8Array; crc: number } | undefined;
  const fd = openSync(fsPath(path), "r");
  try {
    for (let k = 0; k < slices; k++) {
      const start = k * sliceSize;
      const wanted = Math.min(sliceSize, length - start);
      if (inHole.has(k) && !zero) {
        const hasher = new Bun.CryptoHasher("md5");
        const crc = hashZeros(hasher, 0, sliceSize, zeros);
        zero = { md5: new Uint8Array(hasher.digest().buffer), crc };
      }
      if (inHole.has(k)) {
        md5s.set(zero!.md5, k * 16);
        crcs[k] = zero!.crc;
        continue;
      }
      const hasher = new Bun.CryptoHasher("md5");
      let crc = 0;
      for (let done = 0; done < wanted; ) {
        const step = Math.min(piece.length, wanted - done);
        if (readAt(fd, piece, step, start + done) < step) throw new Error(`${path} changed while read: shorter than ${length} bytes`);
        hasher.update(piece.subarray(0, step));
        crc = Bun.hash.crc32(piece.subarray(0, step), crc);
        done += step;
      }
      // The last slice counts as zero-padded to the slice size.
      crc = hashZeros(hasher, crc, sliceSize - wanted, zeros);
      md5s.set(new Uint8Array(hasher.digest().buffer), k * 16);
      crcs[k] = crc >>> 0;
    }
  } finally {
    closeSync(fd);
  }
  return { md5s, crcs };
}

self.onmessage = (event: MessageEvent<SliceHashRequest>) => {
  try {
    const { md5s, crcs } = hashSlices(event.data);
    self.postMessage({ md5s, crcs } satisfies SliceHashReply, [md5s.buffer as ArrayBuffer, crcs.buffer as ArrayBuffer]);
  } catch (error) {
    self.postMessage({ error: error instanceof Error ? error.message : String(error) } satisfies SliceHashReply);
  }
};
