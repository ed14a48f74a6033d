import { UsageError } from "../../errors.ts";

/**
 * Where chunks and version metadata live: a directory, an S3 bucket or a
 * directory on another host over ssh, any of them encrypted.
 * Chunks are named by the sha256 of their content; each version's metadata
 * (its export document) is kept beside them, so the store alone can restore
 * and rebuild a catalog.
 */
export interface ChunkStore {
  /** The store as the user named it (a path, s3://bucket/prefix or ssh://host/path). */
  readonly name: string;
  /** Stores a chunk object whole (atomically: readers see all of it or nothing). */
  putChunk(hash: string, object: Uint8Array): Promise<void>;
  /**
   * A chunk object, or undefined when the store does not hold it. A store
   * that can tell an object is damaged (an encrypted store's object that
   * does not decrypt) throws DamagedChunk.
   */
  getChunk(hash: string): Promise<Uint8Array | undefined>;
  /**
   * Optional: reads a chunk object into `into` (no buffer allocated): its
   * length, or undefined when missing. An object longer than `into` is not
   * read; its length says so. Stores without it are read with getChunk.
   * Throws DamagedChunk as getChunk does.
   */
  readChunkInto?(hash: string, into: Uint8Array): Promise<number | undefined>;
  /**
   * Optional: the local file that holds a chunk object as getChunk would
   * give it (it may not exist: a missing chunk), for readers on other
   * threads (a restore's workers read and decode chunks
   * themselves). Stores whose objects are remote (S3, ssh) or sealed
   * (encrypted) lack it.
   */
  chunkFile?(hash: string): string;
  /** Bytes the object takes, or undefined when missing. */
  chunkSize(hash: string): Promise<number | undefined>;
  deleteChunk(hash: string): Promise<void>;
  /** Every chunk's hash, a page at a time. */
  listChunks(): AsyncGenerator<string[]>;
  /** A version's document, given as text or (made over a base's, see spliceLines) as its UTF-8 bytes. */
  putVersionDoc(uid: string, doc: string | Uint8Array): Promise<void>;
  getVersionDoc(uid: string): Promise<string | undefined>;
  /** The document's bytes, undecoded (a new version's is made over them). */
  getVersionDocBytes(uid: string): Promise<Uint8Array | undefined>;
  deleteVersionDoc(uid: string): Promise<void>;
  listVersionDocs(): Promise<string[]>;
  /** A named document the store keeps for a product built on it (a volume archive's settings): written whole, atomically. */
  putMetaDoc(name: string, text: string): Promise<void>;
  getMetaDoc(name: string): Promise<string | undefined>;
  deleteMetaDoc(name: string): Promise<void>;
  /** Leftovers of killed writers (temp files of processes gone, older than `olderThanMs`): removed, counted. */
  removeStaleTemps(olderThanMs: number): Promise<number>;
  /**
   * Makes every chunk stored so far durable, renames included (the
   * directories they were renamed into fsynced): called before the catalog
   * records rows that reference them, so a power cut never leaves the
   * catalog naming a chunk the store lost. Optional: a store whose writes
   * are durable when they return (S3's PUT) has nothing to do.
   */
  flush?(): Promise<void>;
  /** Lets go of what the store holds open (the ssh store's connection); the store is not used after. */
  close(): Promise<void>;
}

export const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** The meta document an encrypted store keeps its key check in (see encrypted-store.ts): a store holding it is encrypted. */
export const ENCRYPTION_DOC = "encryption";

/** Whether `--store` names a place that is not a local path. */
export function isStoreUrl(spec: string): boolean {
  return spec.startsWith("s3://") || spec.startsWith("ssh://");
}

/** How `openStore` opens a store. */
export interface OpenStoreOptions {
  /** Make the store (an empty one) when it does not exist yet. */
  readonly create: boolean;
  /** S3 endpoint and credentials, for s3:// stores. */
  readonly s3?: S3Settings;
  /** A key file: the store is encrypted with its first line (see encrypted-store.ts); a new store becomes an encrypted one. */
  readonly keyfile?: string;
}

/**
 * Opens the store named by `--store`: a directory, s3://bucket/prefix
 * (credentials from `s3`) or ssh://[user@]host[:port]/path; encrypted with
 * `keyfile`. An encrypted store opened without a key is refused.
 */
export async function openStore(spec: string, options: OpenStoreOptions): Promise<ChunkStore> {
  // A key file that cannot be read is said before a new store is made.
  // Its module loaded only then: a plain store's command never reads a key.
  if (options.keyfile) (await import("../../secrets/key-source.ts")).readKeyFile(options.keyfile);
  const store = await openPlainStore(spec, options);
  try {
    // The encrypted store (and node:crypto under it) is loaded only for a key: 6 ms of every plain store's command.
    if (options.keyfile) return await (await import("./encrypted-store.ts")).openEncryptedStore(store, { keyfile: options.keyfile }, { create: options.create });
    // An encrypted store opened without a key is refused, rather than its sealed objects read as plain ones.
    if ((await store.getMetaDoc(ENCRYPTION_DOC)) !== undefined) {
      throw new UsageError(`--store ${store.name} is encrypted: give --keyfile FILE (or encrypt-keyfile in [image] of blaine.toml)`);
    }
    return store;
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}

async function openPlainStore(spec: string, options: OpenStoreOptions): Promise<ChunkStore> {
  if (spec.startsWith("s3://")) {
    const { S3Store } = await import("./s3-store.ts");
    return S3Store.open(spec, options.s3 ?? {}, options.create);
  }
  if (spec.startsWith("ssh://")) {
    const { SshStore } = await import("./ssh-store.ts");
    return SshStore.open(spec, options.create);
  }
  const { DirectoryStore } = await import("./directory-store.ts");
  return DirectoryStore.open(spec, options.create);
}

/** S3 endpoint and credentials (from the environment or blaine.toml; never argv). */
export interface S3Settings {
  readonly endpoint?: string;
  readonly region?: string;
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
}
