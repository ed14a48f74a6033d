import { createCipheriv, createDecipheriv, createHmac, randomBytes, scrypt } from "node:crypto";

/**
 * The cryptography of an encrypted chunk store, all of it node:crypto in
 * Bun. One password (a key file's first line) and the store's random salt
 * give, through scrypt, a master key; three keys are derived from it with
 * HMAC-SHA256 under fixed labels:
 *
 *   data key          AES-256-GCM of chunks, version metadata, meta documents
 *   chunk name key    the names chunks get on the destination
 *   version name key  the names version metadata gets there
 *   meta name key     the names meta documents get there
 *
 * A sealed object is
 *
 *   bytes 0–3    "BLCE"
 *   byte  4      format version (1)
 *   byte  5      kind: 1 chunk, 2 version metadata, 3 key check, 4 meta document
 *   bytes 6–7    0
 *   bytes 8–19   random 96-bit nonce
 *   …            AES-256-GCM ciphertext
 *   last 16      GCM tag
 *
 * with the 8 header bytes and the object's plain name (a chunk's sha256, a
 * version's uid, a meta document's name) as additional data: an object put under another name, or
 * of another kind, does not open. Nonces are random (never derived from
 * the content: the same block compressed differently would reuse one).
 *
 * Names: a 4-round Feistel network over the name's bytes whose round
 * function is HMAC-SHA256 under the name key — a keyed permutation. A
 * chunk's name is 64 hex digits like a sha256 and says nothing about its
 * content without the key; with the key, a listing of the destination
 * turns back into content hashes (so `cleanup --full` can compare it with
 * the catalog), which a one-way HMAC could not. A version's metadata is
 * named the same way (hex as long as its uid); a meta document, which is
 * never listed, by HMAC-SHA256 of its name.
 */
export const SEALED_MAGIC = "BLCE";
const SEALED_VERSION = 1;
const HEADER_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** What sealing adds to an object: header, nonce and tag. */
export const SEAL_OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
/** Bytes encrypted or decrypted per call: small garbage rather than a block-sized buffer per object. */
const PIECE_BYTES = 64 * 1024;

export const SealedKind = { chunk: 1, versionDoc: 2, keyCheck: 3, metaDoc: 4 } as const;
export type SealedKind = (typeof SealedKind)[keyof typeof SealedKind];

/** scrypt's cost: 2^15 × 8 × 128 bytes = 32 MiB and ~0.1 s per open, stored with the salt so it can grow later. */
export interface KdfParameters {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Uint8Array;
}

export function newKdfParameters(): KdfParameters {
  return { N: 2 ** 15, r: 8, p: 1, salt: randomBytes(16) };
}

/** The keys of one store (never written anywhere, never in a message). */
export class StoreKeys {
  readonly #data: Buffer;
  readonly #chunkNames: Buffer;
  readonly #versionNames: Buffer;
  readonly #metaNames: Buffer;

  private constructor(master: Buffer) {
    const derive = (label: string) => createHmac("sha256", master).update(label).digest();
    this.#data = derive("blaine-image-store data key");
    this.#chunkNames = derive("blaine-image-store chunk name key");
    this.#versionNames = derive("blaine-image-store version name key");
    this.#metaNames = derive("blaine-image-store meta name key");
  }

  static async derive(password: string, kdf: KdfParameters): Promise<StoreKeys> {
    const master = await new Promise<Buffer>((resolve, reject) =>
      scrypt(password.normalize("NFC"), kdf.salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r + 1024 * 1024 }, (error, key) =>
        error ? reject(error) : resolve(key),
      ),
    );
    return new StoreKeys(master);
  }

  #header(kind: SealedKind): Buffer {
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(SEALED_MAGIC, 0, "latin1");
    header[4] = SEALED_VERSION;
    header[5] = kind;
    return header;
  }

  /** `plain` encrypted and bound to its kind and plain name. */
  seal(kind: SealedKind, name: string, plain: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(plain.length + SEAL_OVERHEAD);
    return out.subarray(0, this.sealInto(kind, name, plain, out));
  }

  /**
   * The same written into `out` (at least `plain.length + SEAL_OVERHEAD`
   * bytes): its length. Encrypted a piece at a time, so a block costs no
   * block-sized buffer (the backup's memory stays bounded).
   */
  sealInto(kind: SealedKind, name: string, plain: Uint8Array, out: Buffer): number {
    if (out.length < plain.length + SEAL_OVERHEAD) throw new Error("sealInto: the output buffer is too small");
    const header = this.#header(kind);
    header.copy(out, 0);
    const nonce = randomBytes(NONCE_BYTES);
    nonce.copy(out, HEADER_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#data, nonce);
    cipher.setAAD(Buffer.concat([header, Buffer.from(name, "utf8")]));
    let at = HEADER_BYTES + NONCE_BYTES;
    for (let from = 0; from < plain.length; from += PIECE_BYTES) at += cipher.update(plain.subarray(from, from + PIECE_BYTES)).copy(out, at);
    at += cipher.final().copy(out, at);
    collectNowAndThen(plain.length);
    return at + cipher.getAuthTag().copy(out, at);
  }

  /** The plain bytes, or undefined when the object does not open (damaged, another key, another name or kind). */
  open(kind: SealedKind, name: string, sealed: Uint8Array): Buffer | undefined {
    const out = Buffer.allocUnsafe(Math.max(0, sealed.length - SEAL_OVERHEAD));
    const length = this.openInto(kind, name, sealed, out);
    return length === undefined ? undefined : out.subarray(0, length);
  }

  /**
   * The plain bytes written into `out` (at least `sealed.length -
   * SEAL_OVERHEAD` bytes): their length, or undefined when the object does
   * not open — `out` may then hold bytes that are not to be used.
   */
  openInto(kind: SealedKind, name: string, sealed: Uint8Array, out: Uint8Array): number | undefined {
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (bytes.length < SEAL_OVERHEAD || out.length < bytes.length - SEAL_OVERHEAD) return undefined;
    const header = this.#header(kind);
    if (!bytes.subarray(0, HEADER_BYTES).equals(header)) return undefined;
    const target = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#data, bytes.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES));
      decipher.setAAD(Buffer.concat([header, Buffer.from(name, "utf8")]));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      const body = bytes.subarray(HEADER_BYTES + NONCE_BYTES, bytes.length - TAG_BYTES);
      let at = 0;
      for (let from = 0; from < body.length; from += PIECE_BYTES) at += decipher.update(body.subarray(from, from + PIECE_BYTES)).copy(target, at);
      at += decipher.final().copy(target, at);
      collectNowAndThen(body.length);
      return at;
    } catch {
      return undefined;
    }
  }

  /** A chunk's name on the destination (64 hex digits) for its sha256. */
  chunkName(hash: string): string {
    return permute(this.#chunkNames, Buffer.from(hash, "hex"), true).toString("hex");
  }

  /** The sha256 a chunk name stands for. */
  chunkHash(name: string): string {
    return permute(this.#chunkNames, Buffer.from(name, "hex"), false).toString("hex");
  }

  /** A version's metadata name on the destination (hex, as long as the uid). */
  versionName(uid: string): string {
    const bytes = Buffer.from(uid, "utf8");
    if (bytes.length < 2) throw new Error(`version uid "${uid}" is too short to be named`);
    return permute(this.#versionNames, bytes, true).toString("hex");
  }

  /** A meta document's name on the destination (64 hex digits). */
  metaName(name: string): string {
    return createHmac("sha256", this.#metaNames).update(name).digest("hex");
  }

  /** The uid a version metadata name stands for, or undefined when it is no such name. */
  versionUid(name: string): string | undefined {
    if (!/^(?:[0-9a-f]{2}){2,}$/.test(name)) return undefined;
    const bytes = permute(this.#versionNames, Buffer.from(name, "hex"), false);
    const uid = bytes.toString("utf8");
    // Not a name this key made: its bytes are no text.
    return Buffer.from(uid, "utf8").equals(bytes) && !/[\x00-\x1f\x7f]/.test(uid) ? uid : undefined;
  }
}

/**
 * node:crypto hands back a new buffer for every piece it encrypts, a
 * block's worth per block, which JavaScriptCore collects only when its
 * small heap grows: a 256 MiB backup peaked at 430 MB (160 MB
 * unencrypted). Pieces sealed into pooled buffers and a collection every
 * 32 MiB sealed or opened bring it to 210 MB (restore: 200 MB).
 */
const COLLECT_EVERY_BYTES = 32 * 1024 * 1024;
let sinceCollect = 0;

function collectNowAndThen(bytes: number): void {
  sinceCollect += bytes;
  if (sinceCollect < COLLECT_EVERY_BYTES) return;
  sinceCollect = 0;
  Bun.gc(false);
}

const ROUNDS = 4;

/** HMAC-SHA256(key, round ‖ counter ‖ half), stretched to `length` bytes. */
function roundFunction(key: Buffer, round: number, half: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  for (let counter = 0; out.length * 32 < length; counter++) out.push(createHmac("sha256", key).update(Buffer.from([round, counter])).update(half).digest());
  return Buffer.concat(out).subarray(0, length);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/**
 * The Feistel network: (L, R) → (R, L ⊕ F(R)) four times, or back. Halves
 * of an odd length swap sizes each round and are back in place after four.
 */
function permute(key: Buffer, input: Buffer, forward: boolean): Buffer {
  let left = input.subarray(0, input.length >> 1);
  let right = input.subarray(input.length >> 1);
  if (forward) {
    for (let round = 0; round < ROUNDS; round++) [left, right] = [right, xor(left, roundFunction(key, round, right, left.length))];
  } else {
    for (let round = ROUNDS - 1; round >= 0; round--) [left, right] = [xor(right, roundFunction(key, round, left, right.length)), left];
  }
  return Buffer.concat([left, right]);
}
