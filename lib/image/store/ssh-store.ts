import { BlaineError, ExitCode, UsageError } from "../../errors.ts";
import { parseSshUrl } from "../../system/ssh.ts";
import { HASH_PATTERN, type ChunkStore } from "./chunk-store.ts";
import { RemoteShell } from "./remote-shell.ts";

/**
 * A chunk store in a directory on another host (`ssh://user@host[:port]/path`),
 * laid out as a directory store is (store.json, chunks/ab/HASH,
 * versions/UID.json, meta/NAME.json), reached through ONE ssh connection per command that
 * runs a POSIX shell loop on the remote (see remote-shell.ts). Every file
 * is written to a temp beside it, fsynced and renamed there.
 */
const MARKER = { format: "blaine-image-store", version: 1 };
/** `.NAME.PID.MS.RANDOM.tmp`: the remote shell's pid and the time the temp was started. */
const TEMP_PATTERN = /^\.(.+)\.(\d+)\.(\d+)\.[a-z0-9]+\.tmp$/;

export class SshStore implements ChunkStore {
  readonly name: string;
  readonly #shell: RemoteShell;

  private constructor(name: string, shell: RemoteShell) {
    this.name = name;
    this.#shell = shell;
  }

  static async open(spec: string, create: boolean): Promise<SshStore> {
    const destination = parseSshUrl(spec, "--store");
    const shell = await RemoteShell.open(destination, create);
    if (!shell) throw new UsageError(`--store ${spec}: no directory ${destination.path} on ${destination.host}`);
    const store = new SshStore(spec, shell);
    try {
      const marker = await shell.get("store.json");
      if (!marker) {
        if (!create) throw new UsageError(`--store ${spec}: not an image store (no store.json)`);
        if ((await shell.list(".")).length > 0) throw new UsageError(`--store ${spec}: the directory is not empty and not an image store`);
        await store.#write("store.json", Buffer.from(`${JSON.stringify(MARKER)}\n`), true);
      } else {
        let parsed: { format?: string; version?: number };
        try {
          parsed = JSON.parse(Buffer.from(marker).toString("utf8"));
        } catch {
          throw new BlaineError(`--store ${spec}: store.json is damaged`, ExitCode.failure);
        }
        if (parsed.format !== MARKER.format) throw new UsageError(`--store ${spec}: not an image store`);
        if ((parsed.version ?? 0) > MARKER.version) throw new BlaineError(`--store ${spec} was written by a newer Blaine; upgrade Blaine to use it`);
      }
    } catch (error) {
      await shell.close().catch(() => {});
      throw error;
    }
    return store;
  }

  #write(path: string, bytes: Uint8Array, syncDir: boolean): Promise<void> {
    const name = path.slice(path.lastIndexOf("/") + 1);
    const temp = `.${name}.${this.#shell.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 10)}.tmp`;
    return this.#shell.put(path, bytes, temp, syncDir);
  }

  #chunkPath(hash: string): string {
    if (!HASH_PATTERN.test(hash)) throw new Error(`not a chunk hash: ${hash}`);
    return `chunks/${hash.slice(0, 2)}/${hash}`;
  }

  // Chunks are made durable one by one but their directory is not fsynced for each:
  // flush makes the renames durable before the catalog records them.
  putChunk(hash: string, object: Uint8Array): Promise<void> {
    return this.#write(this.#chunkPath(hash), object, false);
  }

  /** The remote's `sync`: every rename so far durable (the remote shell has no per-directory fsync to batch). */
  flush(): Promise<void> {
    return this.#shell.flush();
  }

  getChunk(hash: string): Promise<Uint8Array | undefined> {
    return this.#shell.get(this.#chunkPath(hash));
  }

  /** Read straight from the connection into `into` (a restore's slot): no buffer per chunk. */
  readChunkInto(hash: string, into: Uint8Array): Promise<number | undefined> {
    return this.#shell.getInto(this.#chunkPath(hash), into);
  }

  chunkSize(hash: string): Promise<number | undefined> {
    return this.#shell.size(this.#chunkPath(hash));
  }

  deleteChunk(hash: string): Promise<void> {
    return this.#shell.remove(this.#chunkPath(hash));
  }

  async *listChunks(): AsyncGenerator<string[]> {
    const subs = (await this.#shell.list("chunks")).filter((name) => /^[0-9a-f]{2}$/.test(name)).sort();
    // All listings asked at once (answers stream back in order), taken a page at a time.
    const pages = subs.map((sub) => this.#shell.list(`chunks/${sub}`));
    // A reader that stops early leaves the rest unread: their failure is not an unhandled one.
    for (const page of pages) page.catch(() => {});
    for (const page of pages) yield (await page).filter((name) => HASH_PATTERN.test(name)).sort();
  }

  putVersionDoc(uid: string, doc: string | Uint8Array): Promise<void> {
    return this.#write(`versions/${uid}.json`, typeof doc === "string" ? Buffer.from(doc) : doc, true);
  }

  async getVersionDoc(uid: string): Promise<string | undefined> {
    return (await this.getVersionDocBytes(uid))?.toString("utf8");
  }

  async getVersionDocBytes(uid: string): Promise<Buffer | undefined> {
    const bytes = await this.#shell.get(`versions/${uid}.json`);
    return bytes && Buffer.from(bytes);
  }

  deleteVersionDoc(uid: string): Promise<void> {
    return this.#shell.remove(`versions/${uid}.json`);
  }

  async listVersionDocs(): Promise<string[]> {
    return (await this.#shell.list("versions"))
      .filter((name) => name.endsWith(".json") && !name.startsWith("."))
      .map((name) => name.slice(0, -5))
      .sort();
  }

  putMetaDoc(name: string, text: string): Promise<void> {
    return this.#write(`meta/${name}.json`, Buffer.from(text), true);
  }

  async getMetaDoc(name: string): Promise<string | undefined> {
    const bytes = await this.#shell.get(`meta/${name}.json`);
    return bytes && Buffer.from(bytes).toString("utf8");
  }

  deleteMetaDoc(name: string): Promise<void> {
    return this.#shell.remove(`meta/${name}.json`);
  }

  async removeStaleTemps(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    const subs = (await this.#shell.list("chunks")).filter((name) => /^[0-9a-f]{2}$/.test(name)).map((sub) => `chunks/${sub}`);
    const dirs = [".", "versions", "meta", ...subs];
    const listings = await Promise.all(dirs.map((dir) => this.#shell.list(dir)));
    const stale: { path: string; pid: number }[] = [];
    dirs.forEach((dir, at) => {
      for (const name of listings[at]) {
        const temp = TEMP_PATTERN.exec(name);
        if (temp && Number(temp[3]) <= cutoff) stale.push({ path: dir === "." ? name : `${dir}/${name}`, pid: Number(temp[2]) });
      }
    });
    // A temp of a live remote shell is a file being written right now.
    const pids = [...new Set(stale.map((temp) => temp.pid))];
    const answers = await Promise.all(pids.map((pid) => this.#shell.alive(pid)));
    const alive = new Set(pids.filter((_, at) => answers[at]));
    const dead = stale.filter((temp) => !alive.has(temp.pid));
    await Promise.all(dead.map((temp) => this.#shell.remove(temp.path)));
    return dead.length;
  }

  close(): Promise<void> {
    return this.#shell.close();
  }
}
