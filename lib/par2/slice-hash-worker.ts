/**
 * Worker-thread entry: the MD5 and CRC32 of every slice of one file (the
 * last zero-padded, slices in holes taken as zeros without reading), so a
 * large file's two MD5 streams run on two threads: this one for the slices,
 * the creating thread for the whole file. Replies with the slices' MD5s end
 * to end and their CRC32s, or the error's message.
 */
import { closeSync, openSync } from "node:fs";
import { fsPath } from "../fs/byte-names.ts";
import { md5 } from "./packets.ts";
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

function hashSlices({ path, length, sliceSize, holes }: SliceHashRequest): { md5s: Uint8Array; crcs: Uint32Array } {
  const slices = Math.ceil(length / sliceSize);
  const md5s = new Uint8Array(slices * 16);
  const crcs = new Uint32Array(slices);
  const inHole = new Set(holes);
  const slice = new Uint8Array(sliceSize);
  let zero: { md5: Uint8Array; crc: number } | undefined;
  const fd = openSync(fsPath(path), "r");
  try {
    for (let k = 0; k < slices; k++) {
      if (inHole.has(k)) {
        if (!zero) {
          const zeros = new Uint8Array(sliceSize);
          zero = { md5: md5(zeros), crc: Bun.hash.crc32(zeros) >>> 0 };
        }
        md5s.set(zero.md5, k * 16);
        crcs[k] = zero.crc;
        continue;
      }
      const wanted = Math.min(sliceSize, length - k * sliceSize);
      if (readAt(fd, slice, wanted, k * sliceSize) < wanted) throw new Error(`${path} changed while read: shorter than ${length} bytes`);
      slice.fill(0, wanted);
      md5s.set(md5(slice), k * 16);
      crcs[k] = Bun.hash.crc32(slice) >>> 0;
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
