import { dlopen, FFIType } from "bun:ffi";

/**
 * zstd through the system's libzstd (bun:ffi), compressing and
 * decompressing between buffers the caller owns. Bun's own zstd returns a
 * fresh buffer for every block; at gigabytes of blocks that garbage set a
 * backup's peak memory by when the collector happened to run. Here nothing
 * is allocated per call: each thread keeps one context of each kind, and
 * the output goes into the caller's (reused) memory. The frames are the
 * zstd CLI's, the same as Bun.zstdCompress makes.
 */
const libzstd = dlopen("libzstd.so.1", {
  ZSTD_createCCtx: { args: [], returns: FFIType.ptr },
  ZSTD_createDCtx: { args: [], returns: FFIType.ptr },
  // size_t results as i64: an error is (size_t)-code, a small negative number.
  ZSTD_compressCCtx: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
  ZSTD_decompressDCtx: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
  ZSTD_getErrorName: { args: [FFIType.i64], returns: FFIType.cstring },
  ZSTD_freeCCtx: { args: [FFIType.ptr], returns: FFIType.u64 },
  ZSTD_freeDCtx: { args: [FFIType.ptr], returns: FFIType.u64 },
});

export class ZstdInto {
  readonly #cctx = libzstd.symbols.ZSTD_createCCtx();
  readonly #dctx = libzstd.symbols.ZSTD_createDCtx();

  /** Frees the contexts (a thread's last call). */
  free(): void {
    libzstd.symbols.ZSTD_freeCCtx(this.#cctx);
    libzstd.symbols.ZSTD_freeDCtx(this.#dctx);
  }

  /**
   * Compresses `sourceLength` bytes at address `source` into at most
   * `capacity` bytes at `target`; the compressed length, or undefined when
   * it does not fit (give capacity < sourceLength to learn that compression
   * does not help, at a fraction of the cost of finishing it).
   */
  compress(target: number, capacity: number, source: number, sourceLength: number, level: number): number | undefined {
    const result = Number(libzstd.symbols.ZSTD_compressCCtx(this.#cctx, target, capacity, source, sourceLength, level));
    return result < 0 ? undefined : result;
  }

  /** Decompresses one frame into at most `capacity` bytes; its length, or an error message (damaged, or larger than capacity). */
  decompress(target: number, capacity: number, source: number, sourceLength: number): number | string {
    const result = Number(libzstd.symbols.ZSTD_decompressDCtx(this.#dctx, target, capacity, source, sourceLength));
    return result < 0 ? String(libzstd.symbols.ZSTD_getErrorName(result)) : result;
  }
}
