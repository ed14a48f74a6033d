import { CONFIG_FILE } from "../../config.ts";
import { BlaineError, ExitCode, UsageError, errorMessage } from "../../errors.ts";
import { HASH_PATTERN, type ChunkStore, type S3Settings } from "./chunk-store.ts";

/**
 * A chunk store in an S3 bucket (`s3://bucket/prefix`), through Bun's
 * built-in S3 client, laid out as a directory store is:
 * PREFIX/store.json, PREFIX/chunks/ab/HASH, PREFIX/versions/UID.json,
 * PREFIX/meta/NAME.json. A PUT
 * is complete or absent, so objects are written in place. Credentials come
 * from blaine.toml's [image] table or the environment (S3_* or AWS_*).
 */
const MARKER = { format: "blaine-image-store", version: 1 };

function isMissing(error: unknown): boolean {
  const code = typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : "";
  return code === "NoSuchKey" || code === "ENOENT" || /NoSuchKey|not found|404/i.test(errorMessage(error));
}

/** S3's answers that mean "try again" (InternalError, SlowDown, 5xx), which clients are expected to retry. */
function isTransient(error: unknown): boolean {
  const code = typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : "";
  return /InternalError|SlowDown|ServiceUnavailable|RequestTimeout/.test(code) || /internal error|slow down|try again/i.test(errorMessage(error));
}

/** Runs an S3 request, retrying transient failures a few times with a growing pause. */
async function retrying<T>(request: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      if (attempt >= 5 || !isTransient(error)) throw error;
      await Bun.sleep(50 * 2 ** attempt);
    }
  }
}

/**
 * `s3://bucket/prefix` taken apart, for `option` (`--store`, `--dest`, a
 * key of blaine.toml). Credentials in it (`s3://KEY:SECRET@bucket/…`) are
 * refused, the URL shown with everything before its last @ masked (a
 * secret may hold a / of its own, and may be typed unencoded): they would
 * sit in argv, shell histories and every message naming the store, and
 * Bun's client would take them for the bucket's name. `table` is the
 * blaine.toml table they go in instead.
 */
export function parseS3Url(url: string, option: string, table: "image" | "volume"): { bucket: string; prefix: string } {
  const authority = url.slice("s3://".length).split("/", 1)[0];
  if (url.includes("@") && /[:@]/.test(authority)) {
    throw new UsageError(
      `${option} s3://…@${url.slice(url.lastIndexOf("@") + 1)}: no credentials in the URL; put them in [${table}] of ${CONFIG_FILE} ` +
        "(s3-access-key-id, s3-secret-access-key) or the environment (S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    );
  }
  // A bucket's name is letters, digits, dots, dashes (and underscores in old ones): an endpoint's host:port is no bucket.
  const match = /^s3:\/\/([A-Za-z0-9._-]+)(?:\/(.*))?$/.exec(url);
  if (!match) {
    // Not shown when it might be KEY:SECRET without the @.
    const shown = authority.includes(":") ? `s3://…${url.slice("s3://".length + authority.length)}` : url;
    throw new UsageError(`${option} ${shown}: not s3://bucket/prefix (an endpoint goes in s3-endpoint of [${table}] in ${CONFIG_FILE}, or S3_ENDPOINT)`);
  }
  return { bucket: match[1], prefix: (match[2] ?? "").replace(/\/+$/, "") };
}

export class S3Store implements ChunkStore {
  readonly name: string;
  readonly #client: Bun.S3Client;
  readonly #prefix: string;

  private constructor(name: string, client: Bun.S3Client, prefix: string) {
    this.name = name;
    this.#client = client;
    this.#prefix = prefix;
  }

  static async open(spec: string, settings: S3Settings, create = true): Promise<S3Store> {
    const { bucket, prefix } = parseS3Url(spec, "--store", "image");
    const client = new Bun.S3Client({
      bucket,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(settings.region ? { region: settings.region } : {}),
      ...(settings.accessKeyId ? { accessKeyId: settings.accessKeyId } : {}),
      ...(settings.secretAccessKey ? { secretAccessKey: settings.secretAccessKey } : {}),
    });
    const store = new S3Store(spec, client, prefix ? `${prefix}/` : "");
    const marker = client.file(store.#key("store.json"));
    let text: string | undefined;
    try {
      text = await retrying(() => marker.text());
    } catch (error) {
      if (!isMissing(error)) throw new BlaineError(`--store ${spec}: ${errorMessage(error)}`, ExitCode.failure);
    }
    if (text === undefined) {
      if (!create) throw new UsageError(`--store ${spec}: not an image store (no store.json)`);
      await retrying(() => marker.write(`${JSON.stringify(MARKER)}\n`));
    } else if (!text.includes(`"${MARKER.format}"`)) {
      throw new UsageError(`--store ${spec}: not an image store`);
    }
    return store;
  }

  #key(path: string): string {
    return `${this.#prefix}${path}`;
  }

  #chunkKey(hash: string): string {
    return this.#key(`chunks/${hash.slice(0, 2)}/${hash}`);
  }

  async putChunk(hash: string, object: Uint8Array): Promise<void> {
    await retrying(() => this.#client.write(this.#chunkKey(hash), object));
  }

  async getChunk(hash: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await retrying(() => this.#client.file(this.#chunkKey(hash)).arrayBuffer()));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  /** The chunk object streamed into `into` (see ChunkStore.readChunkInto): no buffer the size of a block per chunk. */
  async readChunkInto(hash: string, into: Uint8Array): Promise<number | undefined> {
    try {
      return await retrying(async () => {
        let length = 0;
        for await (const piece of this.#client.file(this.#chunkKey(hash)).stream()) {
          // An object longer than `into` is counted, not kept: its length says it is no chunk of this block size.
          if (length + piece.length <= into.length) into.set(piece, length);
          length += piece.length;
        }
        return length;
      });
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async chunkSize(hash: string): Promise<number | undefined> {
    try {
      return (await retrying(() => this.#client.stat(this.#chunkKey(hash)))).size;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async deleteChunk(hash: string): Promise<void> {
    await retrying(() => this.#client.delete(this.#chunkKey(hash)));
  }

  async *#listKeys(prefix: string): AsyncGenerator<string[]> {
    let startAfter: string | undefined;
    for (;;) {
      const page = await retrying(() => this.#client.list({ prefix: this.#key(prefix), maxKeys: 1000, ...(startAfter ? { startAfter } : {}) }));
      const keys = (page.contents ?? []).map((entry) => entry.key);
      if (keys.length > 0) yield keys.map((key) => key.slice(this.#prefix.length));
      if (!page.isTruncated || keys.length === 0) return;
      startAfter = keys[keys.length - 1];
    }
  }

  async *listChunks(): AsyncGenerator<string[]> {
    for await (const keys of this.#listKeys("chunks/")) {
      const hashes = keys.map((key) => key.slice(key.lastIndexOf("/") + 1)).filter((name) => HASH_PATTERN.test(name));
      if (hashes.length > 0) yield hashes;
    }
  }

  async putVersionDoc(uid: string, doc: string | Uint8Array): Promise<void> {
    await retrying(() => this.#client.write(this.#key(`versions/${uid}.json`), doc));
  }

  async getVersionDoc(uid: string): Promise<string | undefined> {
    return (await this.getVersionDocBytes(uid))?.toString("utf8");
  }

  async getVersionDocBytes(uid: string): Promise<Buffer | undefined> {
    try {
      return Buffer.from(await retrying(() => this.#client.file(this.#key(`versions/${uid}.json`)).bytes()));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async deleteVersionDoc(uid: string): Promise<void> {
    await retrying(() => this.#client.delete(this.#key(`versions/${uid}.json`)));
  }

  async listVersionDocs(): Promise<string[]> {
    const uids: string[] = [];
    for await (const keys of this.#listKeys("versions/")) {
      for (const key of keys) if (key.endsWith(".json")) uids.push(key.slice("versions/".length, -".json".length));
    }
    return uids.sort();
  }

  async putMetaDoc(name: string, text: string): Promise<void> {
    await retrying(() => this.#client.write(this.#key(`meta/${name}.json`), text));
  }

  async getMetaDoc(name: string): Promise<string | undefined> {
    try {
      return await retrying(() => this.#client.file(this.#key(`meta/${name}.json`)).text());
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async deleteMetaDoc(name: string): Promise<void> {
    await retrying(() => this.#client.delete(this.#key(`meta/${name}.json`)));
  }

  /** A PUT is whole or absent: S3 leaves no temps behind. */
  async removeStaleTemps(): Promise<number> {
    return 0;
  }

  /** The client holds no connection that outlives a request. */
  async close(): Promise<void> {}
}
