import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import { readKeyFile } from "../../secrets/key-source.ts";
import { DamagedChunk } from "./chunk-format.ts";
import { ENCRYPTION_DOC, type ChunkStore } from "./chunk-store.ts";
import { SEAL_OVERHEAD, SealedKind, StoreKeys, newKdfParameters, type KdfParameters } from "./store-cipher.ts";

/**
 * Any chunk store, encrypted: what reaches the destination is sealed
 * objects under keyed names (see store-cipher.ts), and the meta document
 * `encryption` (meta/encryption.json in a directory) — the scrypt
 * parameters, the salt and a sealed check object, none of it secret:
 *
 *   {"format":"blaine-image-encryption","version":1,"cipher":"aes-256-gcm",
 *    "kdf":"scrypt","N":32768,"r":8,"p":1,"salt":"BASE64","check":"BASE64"}
 *
 * The key is checked against the check object before anything is written,
 * so a wrong key changes nothing. Callers see plain hashes, uids and
 * documents: the catalog keeps content hashes as ever, only the names on
 * the destination are keyed.
 */
const FORMAT = "blaine-image-encryption";
const FORMAT_VERSION = 1;
const CHECK_TEXT = "blaine-image-store key check";
const NOT_DECRYPTING = "it does not decrypt (damaged on the destination)";
/** Buffers kept for sealed chunks: as many as chunk writes or reads are in flight at once. */
const POOLED_BUFFERS = 8;

interface EncryptionDoc {
  readonly format: string;
  readonly version: number;
  readonly cipher: string;
  readonly kdf: string;
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: string;
  readonly check: string;
}

/** Where the key comes from, for messages (the key file's path; never the key). */
export interface StoreKey {
  readonly keyfile: string;
}

/**
 * Opens `inner` encrypted with the key in `key.keyfile` (its first line,
 * read through lib/secrets). A new, empty store (`create`) gets a salt and
 * a check object; an existing one must open the check object with this
 * key (else exit 2, nothing written). A store that already holds plain
 * chunks or versions is refused: it cannot become encrypted in place.
 */
export async function openEncryptedStore(inner: ChunkStore, key: StoreKey, options: { readonly create: boolean }): Promise<ChunkStore> {
  const where = `--store ${inner.name}`;
  const password = readKeyFile(key.keyfile);
  const text = await inner.getMetaDoc(ENCRYPTION_DOC);
  if (text === undefined) {
    if (!options.create) throw new UsageError(`${where} is not encrypted; leave out --keyfile to use it`);
    if ((await inner.listVersionDocs()).length > 0 || (await hasChunks(inner))) {
      throw new UsageError(`${where} already holds unencrypted versions; it cannot be encrypted in place: give a new store for encrypted backups`);
    }
    const kdf = newKdfParameters();
    const keys = await StoreKeys.derive(password, kdf);
    const doc: EncryptionDoc = {
      format: FORMAT,
      version: FORMAT_VERSION,
      cipher: "aes-256-gcm",
      kdf: "scrypt",
      N: kdf.N,
      r: kdf.r,
      p: kdf.p,
      salt: Buffer.from(kdf.salt).toString("base64"),
      check: keys.seal(SealedKind.keyCheck, "check", Buffer.from(CHECK_TEXT)).toString("base64"),
    };
    await inner.putMetaDoc(ENCRYPTION_DOC, `${JSON.stringify(doc)}\n`);
    return new EncryptedStore(inner, keys);
  }
  const doc = parseEncryptionDoc(text, where);
  const keys = await StoreKeys.derive(password, { N: doc.N, r: doc.r, p: doc.p, salt: Buffer.from(doc.salt, "base64") } satisfies KdfParameters);
  const check = keys.open(SealedKind.keyCheck, "check", Buffer.from(doc.check, "base64"));
  if (check?.toString() !== CHECK_TEXT) throw new BlaineError(`wrong key for ${where} (--keyfile ${key.keyfile})`, ExitCode.usage);
  return new EncryptedStore(inner, keys);
}

function parseEncryptionDoc(text: string, where: string): EncryptionDoc {
  let doc: EncryptionDoc;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new BlaineError(`${where}: its encryption document is damaged`, ExitCode.failure);
  }
  if (doc.format !== FORMAT) throw new BlaineError(`${where}: its encryption document is not Blaine's`, ExitCode.failure);
  if (doc.version > FORMAT_VERSION) throw new BlaineError(`${where} was encrypted by a newer Blaine; upgrade Blaine to use it`);
  if (doc.cipher !== "aes-256-gcm" || doc.kdf !== "scrypt" || ![doc.N, doc.r, doc.p].every(Number.isSafeInteger) || typeof doc.salt !== "string" || typeof doc.check !== "string") {
    throw new BlaineError(`${where}: its encryption document is damaged`, ExitCode.failure);
  }
  return doc;
}

async function hasChunks(store: ChunkStore): Promise<boolean> {
  for await (const page of store.listChunks()) if (page.length > 0) return true;
  return false;
}

class EncryptedStore implements ChunkStore {
  readonly name: string;
  readonly #inner: ChunkStore;
  readonly #keys: StoreKeys;
  /** Sealed-object buffers not in use. */
  readonly #free: Buffer[] = [];

  constructor(inner: ChunkStore, keys: StoreKeys) {
    this.name = inner.name;
    this.#inner = inner;
    this.#keys = keys;
  }

  /** A buffer of at least `size` bytes from the pool (the few chunks in flight reuse them). */
  #take(size: number): Buffer {
    const at = this.#free.findIndex((buffer) => buffer.length >= size);
    return at >= 0 ? this.#free.splice(at, 1)[0] : Buffer.allocUnsafe(size);
  }

  #give(buffer: Buffer): void {
    if (this.#free.length < POOLED_BUFFERS) this.#free.push(buffer);
  }

  async flush(): Promise<void> {
    await this.#inner.flush?.();
  }

  async putChunk(hash: string, object: Uint8Array): Promise<void> {
    const buffer = this.#take(object.length + SEAL_OVERHEAD);
    try {
      const length = this.#keys.sealInto(SealedKind.chunk, hash, object, buffer);
      await this.#inner.putChunk(this.#keys.chunkName(hash), buffer.subarray(0, length));
    } finally {
      // The inner store is done with it once its put has ended.
      this.#give(buffer);
    }
  }

  /** The chunk object; a sealed object that does not open (damaged on the destination) is a DamagedChunk. */
  async getChunk(hash: string): Promise<Uint8Array | undefined> {
    const sealed = await this.#inner.getChunk(this.#keys.chunkName(hash));
    if (!sealed) return undefined;
    const object = this.#keys.open(SealedKind.chunk, hash, sealed);
    if (!object) throw new DamagedChunk(NOT_DECRYPTING);
    return object;
  }

  /** The chunk object decrypted into `into` (see ChunkStore.readChunkInto); a DamagedChunk when it does not open. */
  async readChunkInto(hash: string, into: Uint8Array): Promise<number | undefined> {
    const name = this.#keys.chunkName(hash);
    const buffer = this.#take(into.length + SEAL_OVERHEAD);
    try {
      let sealed: Uint8Array;
      if (this.#inner.readChunkInto) {
        const length = await this.#inner.readChunkInto(name, buffer);
        if (length === undefined) return undefined;
        if (length > buffer.length) return length - SEAL_OVERHEAD;
        sealed = buffer.subarray(0, length);
      } else {
        const object = await this.#inner.getChunk(name);
        if (!object) return undefined;
        sealed = object;
      }
      if (sealed.length - SEAL_OVERHEAD > into.length) return sealed.length - SEAL_OVERHEAD;
      const length = this.#keys.openInto(SealedKind.chunk, hash, sealed, into);
      if (length === undefined) throw new DamagedChunk(NOT_DECRYPTING);
      return length;
    } finally {
      this.#give(buffer);
    }
  }

  chunkSize(hash: string): Promise<number | undefined> {
    return this.#inner.chunkSize(this.#keys.chunkName(hash));
  }

  deleteChunk(hash: string): Promise<void> {
    return this.#inner.deleteChunk(this.#keys.chunkName(hash));
  }

  async *listChunks(): AsyncGenerator<string[]> {
    for await (const page of this.#inner.listChunks()) yield page.map((name) => this.#keys.chunkHash(name));
  }

  putVersionDoc(uid: string, doc: string | Uint8Array): Promise<void> {
    return this.#inner.putVersionDoc(this.#keys.versionName(uid), this.#keys.seal(SealedKind.versionDoc, uid, typeof doc === "string" ? Buffer.from(doc) : doc).toString("base64"));
  }

  async getVersionDoc(uid: string): Promise<string | undefined> {
    return (await this.getVersionDocBytes(uid))?.toString("utf8");
  }

  async getVersionDocBytes(uid: string): Promise<Buffer | undefined> {
    const sealed = await this.#inner.getVersionDoc(this.#keys.versionName(uid));
    if (sealed === undefined) return undefined;
    const bytes = this.#keys.open(SealedKind.versionDoc, uid, Buffer.from(sealed.trim(), "base64"));
    if (!bytes) throw new BlaineError(`store ${this.name}: the metadata of version ${uid} does not decrypt (damaged on the destination)`, ExitCode.damage);
    return bytes;
  }

  deleteVersionDoc(uid: string): Promise<void> {
    return this.#inner.deleteVersionDoc(this.#keys.versionName(uid));
  }

  async listVersionDocs(): Promise<string[]> {
    const uids: string[] = [];
    for (const name of await this.#inner.listVersionDocs()) {
      const uid = this.#keys.versionUid(name);
      if (uid !== undefined) uids.push(uid);
    }
    return uids.sort();
  }

  putMetaDoc(name: string, text: string): Promise<void> {
    return this.#inner.putMetaDoc(this.#keys.metaName(name), this.#keys.seal(SealedKind.metaDoc, name, Buffer.from(text)).toString("base64"));
  }

  async getMetaDoc(name: string): Promise<string | undefined> {
    const sealed = await this.#inner.getMetaDoc(this.#keys.metaName(name));
    if (sealed === undefined) return undefined;
    const text = this.#keys.open(SealedKind.metaDoc, name, Buffer.from(sealed.trim(), "base64"));
    if (!text) throw new BlaineError(`store ${this.name}: its document "${name}" does not decrypt (damaged on the destination)`, ExitCode.failure);
    return text.toString("utf8");
  }

  deleteMetaDoc(name: string): Promise<void> {
    return this.#inner.deleteMetaDoc(this.#keys.metaName(name));
  }

  removeStaleTemps(olderThanMs: number): Promise<number> {
    return this.#inner.removeStaleTemps(olderThanMs);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
