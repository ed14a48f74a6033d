import { dlopen, FFIType, toArrayBuffer, type Pointer } from "bun:ffi";

/**
 * zstd compressing and decompressing between buffers the caller owns, given
 * by their addresses (a block pool's shared memory: `ptr` of it plus an
 * offset). The frames are the zstd CLI's whichever implementation runs, so
 * a chunk written by one is read by the other.
 */
export interface ZstdInto {
  /**
   * Compresses `sourceLength` bytes at address `source` into at most
   * `capacity` bytes at `target`; the compressed length, or undefined when
   * it does not fit (give capacity < sourceLength to learn that compression
   * does not help: the block is then stored raw). What was written at
   * `target` is then no frame (libzstd leaves what it began).
   */
  compress(target: number, capacity: number, source: number, sourceLength: number, level: number): number | undefined;
  /** Decompresses one frame into at most `capacity` bytes; its length, or an error message (damaged, or larger than capacity). */
  decompress(target: number, capacity: number, source: number, sourceLength: number): number | string;
  /** Frees what the instance holds (a thread's last call). */
  free(): void;
}

/**
 * The system's libzstd (bun:ffi), the usual choice. Bun's own zstd returns
 * a fresh buffer for every block; at gigabytes of blocks that garbage set a
 * backup's peak memory by when the collector happened to run. Here nothing
 * is allocated per call: each thread keeps one context of each kind, and
 * the output goes into the caller's (reused) memory.
 */
function openLibzstd() {
  return dlopen("libzstd.so.1", {
    ZSTD_createCCtx: { args: [], returns: FFIType.ptr },
    ZSTD_createDCtx: { args: [], returns: FFIType.ptr },
    // size_t results as i64: an error is (size_t)-code, a small negative number.
    ZSTD_compressCCtx: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
    ZSTD_decompressDCtx: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
    ZSTD_getErrorName: { args: [FFIType.i64], returns: FFIType.cstring },
    ZSTD_freeCCtx: { args: [FFIType.ptr], returns: FFIType.u64 },
    ZSTD_freeDCtx: { args: [FFIType.ptr], returns: FFIType.u64 },
  });
}

type Libzstd = ReturnType<typeof openLibzstd>;

export class LibzstdInto implements ZstdInto {
  readonly #library: Libzstd["symbols"];
  readonly #cctx: ReturnType<Libzstd["symbols"]["ZSTD_createCCtx"]>;
  readonly #dctx: ReturnType<Libzstd["symbols"]["ZSTD_createDCtx"]>;

  constructor(library: Libzstd) {
    this.#library = library.symbols;
    this.#cctx = this.#library.ZSTD_createCCtx();
    this.#dctx = this.#library.ZSTD_createDCtx();
  }

  free(): void {
    this.#library.ZSTD_freeCCtx(this.#cctx);
    this.#library.ZSTD_freeDCtx(this.#dctx);
  }

  compress(target: number, capacity: number, source: number, sourceLength: number, level: number): number | undefined {
    const result = Number(this.#library.ZSTD_compressCCtx(this.#cctx, target, capacity, source, sourceLength, level));
    return result < 0 ? undefined : result;
  }

  decompress(target: number, capacity: number, source: number, sourceLength: number): number | string {
    const result = Number(this.#library.ZSTD_decompressDCtx(this.#dctx, target, capacity, source, sourceLength));
    return result < 0 ? String(this.#library.ZSTD_getErrorName(result)) : result;
  }
}

/**
 * Bun's built-in zstd, where libzstd.so.1 cannot be loaded (Debian's
 * libzstd1 not installed): the same frames, through a buffer Bun allocates
 * per call and copied into the caller's memory. Peak memory is again up to
 * the collector (see openLibzstd): a restore of a 192 MiB image of 4 MiB
 * blocks peaked at 214 MB in 1.4 s instead of 101 MB in 0.6–1.0 s (its
 * backup alike with either, 0.65 s, 135 MB); but every backup and restore
 * works.
 */
export class BunZstdInto implements ZstdInto {
  free(): void {}

  compress(target: number, capacity: number, source: number, sourceLength: number, level: number): number | undefined {
    const packed = Bun.zstdCompressSync(bytesAt(source, sourceLength), { level });
    if (packed.length > capacity) return undefined;
    bytesAt(target, packed.length).set(packed);
    return packed.length;
  }

  decompress(target: number, capacity: number, source: number, sourceLength: number): number | string {
    let block: Uint8Array;
    try {
      block = Bun.zstdDecompressSync(bytesAt(source, sourceLength));
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
    // libzstd's own words for it, so a chunk too large for its block is said alike by both.
    if (block.length > capacity) return "Destination buffer is too small";
    bytesAt(target, block.length).set(block);
    return block.length;
  }
}

/** The `length` bytes at `address` (memory the caller owns and keeps alive: a view, nothing copied). */
function bytesAt(address: number, length: number): Uint8Array {
  return length === 0 ? new Uint8Array(0) : new Uint8Array(toArrayBuffer(address as Pointer, 0, length));
}

/**
 * libzstd as this thread loaded it, or null where it cannot be (then Bun's
 * zstd). Tried once per thread, on the first instance: whether the library
 * is there does not change while the process runs, a failed dlopen would
 * search the library directories again for every block, and each worker
 * thread has its own copy of this module, so the choice is one per thread
 * without a lock or a message (every thread of a process makes the same).
 */
let libzstd: Libzstd | null | undefined;

/** This thread's zstd: libzstd when it loads, else Bun's built-in one (see BunZstdInto). */
export function openZstdInto(): ZstdInto {
  if (libzstd === undefined) {
    try {
      libzstd = openLibzstd();
    } catch {
      libzstd = null;
    }
  }
  return libzstd ? new LibzstdInto(libzstd) : new BunZstdInto();
}
