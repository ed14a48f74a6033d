import { BlaineError, ExitCode } from "../../errors.ts";
import { SshChannel, shellQuote, type SshDestination } from "../../system/ssh.ts";

/**
 * A directory on a remote host, reached through one ssh connection that
 * runs a small POSIX shell loop there (nothing else needed on the remote:
 * sh, cat, head -c, dd, mv, mkdir, rm, ls, wc, sync). Requests are lines; a
 * `put` line is followed by exactly its bytes, which `head -c` takes off
 * the loop's stdin. Requests are pipelined: many can be in flight, their
 * answers come back in order.
 *
 *   put PATH LENGTH TEMP SYNCDIR + bytes  → ok | err MESSAGE
 *       (written to TEMP beside PATH, its length checked — a connection
 *        cut within the bytes leaves a short temp, never a short PATH —,
 *        fsynced with `sync FILE`, renamed; SYNCDIR 1 also fsyncs the
 *        directory; a directory made for it is fsynced with its parent)
 *   get PATH        → ok LENGTH + LENGTH bytes + end LENGTH' | missing
 *   size PATH       → ok LENGTH | missing
 *   rm PATH         → ok | err MESSAGE
 *   ls DIR          → ok, then one name a line (`ls -a`), then an empty line
 *   alive PID       → ok | missing (`kill -0` on the remote)
 *   flush           → ok | err MESSAGE (`sync`: every rename so far durable)
 *
 * `get` sends the length `wc -c` saw, then exactly that many bytes (one
 * dd record: the file cut or padded with zeros to it; a regular file's
 * read returns all it asks for but at its end), then the length the name
 * has after the read: an object replaced by a rename between the count
 * and the read leaves the stream in step, and the two lengths differing
 * say the bytes are not the object's (the client asks again). dd rather
 * than cat through head: one process per get fewer (restores of small
 * chunks are bound by the remote's forks).
 *
 * `head -c` must take no more than its count off the pipe (GNU head reads
 * exactly; busybox's and the BSDs' read through stdio buffers, and the
 * bytes they take ahead would be lost and the data after a put read as
 * requests): the script checks that first and refuses such a remote.
 */
const REMOTE_SCRIPT = `set -f
if [ "$(printf "ab\\n" | { head -c 1 > /dev/null; cat; })" != b ]; then echo blaine-store-head-reads-ahead; exit 0; fi
root=$1
case $root in "~") root=$HOME;; "~/"*) root=$HOME/\${root#??};; esac
if cd "$root" 2>/dev/null; then :
elif [ "$2" = 1 ] && mkdir -p "$root" 2>/dev/null && cd "$root"; then :
else echo blaine-store-missing; exit 0; fi
if sync . 2>/dev/null; then syncfile=1; else syncfile=0; fi
durable() { if [ $syncfile = 1 ]; then sync "$@"; else sync; fi; }
reply() { printf "%s\\n" "$*"; }
echo "blaine-store-ready 1 $$"
while read -r verb a b c e; do
  case $verb in
  put)
    case $a in */*) d=\${a%/*};; *) d=.;; esac
    t=$d/$c
    if msg=$({ [ -d "$d" ] || { mkdir -p "$d" && durable . "\${d%/*}"; }; } 2>&1; head -c "$b" | { { cat > "$t"; } 2>&1 || { cat > /dev/null; false; }; }) &&
       set -- $(wc -c < "$t") && { [ "$1" = "$b" ] || { msg="the connection ended within the data"; false; }; } &&
       msg=$({ durable "$t" && mv -f "$t" "$a" && { [ "$e" != 1 ] || durable "$d"; }; } 2>&1); then
      reply ok
    else
      rm -f "$t"; set -- $msg; reply err "$*"
    fi;;
  get)
    if [ -f "$a" ] && [ -r "$a" ] && n=$(wc -c < "$a"); then
      set -- $n; reply ok "$1"
      [ "$1" = 0 ] || dd if="$a" bs="$1" count=1 conv=sync 2>/dev/null
      if n=$(wc -c < "$a" 2>/dev/null); then set -- $n; reply end "$1"; else reply end gone; fi
    else reply missing; fi;;
  size)
    if [ -f "$a" ]; then set -- $(wc -c < "$a"); reply ok "$1"; else reply missing; fi;;
  rm)
    if msg=$(rm -f "$a" 2>&1); then reply ok; else set -- $msg; reply err "$*"; fi;;
  ls)
    reply ok; ls -a "$a" 2>/dev/null; echo;;
  alive)
    if kill -0 "$a" 2>/dev/null; then reply ok; else reply missing; fi;;
  flush)
    if msg=$(sync 2>&1); then reply ok; else set -- $msg; reply err "$*"; fi;;
  *)
    reply err "unknown request $verb";;
  esac
done
`;

if (REMOTE_SCRIPT.includes("'")) throw new Error("the remote script is sent in single quotes and cannot hold one");

/** Paths the client asks for: relative, plain names (no quoting questions on the remote). */
const SAFE_PATH = /^(?:[A-Za-z0-9_][A-Za-z0-9._-]*)(?:\/[A-Za-z0-9_.][A-Za-z0-9._-]*)*$/;

function checkPath(path: string): string {
  if (!SAFE_PATH.test(path) || path.split("/").some((part) => part === "." || part === "..")) throw new Error(`not a store path: ${JSON.stringify(path)}`);
  return path;
}

/** A get whose object was replaced while it was read. */
const CHANGED = Symbol("changed");
/** Gets of one object before giving up: a replace is a rename, rare and quick, so a second read normally settles it. */
const GET_ATTEMPTS = 3;

export class RemoteShell {
  readonly #channel: SshChannel;
  /** The remote shell's pid (in temp names, so a cleanup can tell a live writer's temp). */
  readonly pid: number;
  /** Answers are read in the order requests were sent: each waits for the one before. */
  #answered: Promise<unknown> = Promise.resolve();
  #broken: BlaineError | undefined;

  private constructor(channel: SshChannel, pid: number) {
    this.#channel = channel;
    this.pid = pid;
  }

  get destination(): SshDestination {
    return this.#channel.destination;
  }

  /**
   * Connects and enters the remote directory (made when `create`); undefined
   * when it does not exist. Lines before the loop's greeting (a login
   * banner, a chatty shell profile) are skipped.
   */
  static async open(destination: SshDestination, create: boolean): Promise<RemoteShell | undefined> {
    const command = `sh -c ${shellQuote(REMOTE_SCRIPT)} blaine-store ${shellQuote(destination.path)} ${create ? 1 : 0}`;
    const channel = SshChannel.open(destination, command);
    for (;;) {
      const line = await channel.readLine();
      if (line === undefined) {
        await channel.close();
        throw await channel.failure("cannot connect or log in");
      }
      if (line === "blaine-store-head-reads-ahead") {
        await channel.close();
        throw await channel.failure("the remote's head -c reads ahead of its count (busybox's or a BSD's head): install GNU coreutils there, first on the PATH of ssh commands");
      }
      if (line === "blaine-store-missing") {
        await channel.close();
        return undefined;
      }
      const ready = /^blaine-store-ready 1 (\d+)$/.exec(line);
      if (ready) return new RemoteShell(channel, Number(ready[1]));
    }
  }

  /** Sends a request and reads its answer after every earlier one's. */
  #request<T>(parts: (string | Uint8Array)[], readAnswer: () => Promise<T>): Promise<T> {
    if (this.#broken) return Promise.reject(this.#broken);
    const sent = this.#channel.send(...parts);
    // Its failure is reported through the answer, awaited below in turn.
    sent.catch(() => {});
    const answer = this.#answered.then(async () => {
      if (this.#broken) throw this.#broken;
      try {
        await sent;
        return await readAnswer();
      } catch (error) {
        // A request whose answer was not read whole leaves the stream out of step: nothing after it can be trusted.
        if (!(error instanceof RemoteRefusal)) this.#broken ??= error instanceof BlaineError ? error : await this.#channel.failure(String(error));
        throw error;
      }
    });
    this.#answered = answer.catch(() => {});
    return answer;
  }

  async #status(request: string): Promise<{ ok: true; rest: string } | { ok: false; missing: boolean; message: string }> {
    const line = await this.#channel.readLine();
    if (line === undefined) throw await this.#channel.failure("the connection ended");
    if (line === "ok" || line.startsWith("ok ")) return { ok: true, rest: line.slice(3) };
    if (line === "missing") return { ok: false, missing: true, message: "" };
    if (line.startsWith("err")) return { ok: false, missing: false, message: line.slice(4) };
    throw await this.#channel.failure(`unexpected answer to ${request}: ${JSON.stringify(line.slice(0, 80))}`);
  }

  #length(text: string): number {
    const length = Number(text.trim());
    if (!Number.isSafeInteger(length) || length < 0) throw new Error(`not a length: ${JSON.stringify(text)}`);
    return length;
  }

  /** Writes `bytes` to PATH atomically (a temp beside it, fsynced, renamed); `syncDir` also fsyncs the directory. */
  put(path: string, bytes: Uint8Array, temp: string, syncDir: boolean): Promise<void> {
    checkPath(path);
    if (temp.includes("/") || !SAFE_PATH.test(temp.replace(/^\./, "x"))) throw new Error(`not a temp name: ${temp}`);
    return this.#request([`put ${path} ${bytes.length} ${temp} ${syncDir ? 1 : 0}\n`, bytes], async () => {
      const status = await this.#status("put");
      if (!status.ok) throw new RemoteRefusal(`ssh destination ${this.destination.url}: cannot write ${path}: ${status.message || "refused"}`);
    });
  }

  /**
   * A get's trailer: whether the object still had the length sent before
   * its bytes. When not, it was replaced meanwhile and the bytes may be cut
   * or padded: the caller asks again.
   */
  async #unchanged(length: number): Promise<boolean> {
    const line = await this.#channel.readLine();
    if (line === undefined) throw await this.#channel.failure("the connection ended");
    const end = /^end (\d+|gone)$/.exec(line);
    if (!end) throw await this.#channel.failure(`unexpected answer to get: ${JSON.stringify(line.slice(0, 80))}`);
    return end[1] === String(length);
  }

  /** Repeats a get whose object was replaced while it was read (CHANGED), a few times. */
  async #getSettled<T>(path: string, once: () => Promise<T | typeof CHANGED>): Promise<T> {
    for (let attempt = 0; attempt < GET_ATTEMPTS; attempt++) {
      const result = await once();
      if (result !== CHANGED) return result;
    }
    throw new RemoteRefusal(`ssh destination ${this.destination.url}: ${path} was replaced while it was read, ${GET_ATTEMPTS} times`);
  }

  get(path: string): Promise<Uint8Array | undefined> {
    return this.#getSettled(path, () =>
      this.#request([`get ${checkPath(path)}\n`], async () => {
        const status = await this.#status("get");
        if (!status.ok) return undefined;
        const length = this.#length(status.rest);
        const bytes = await this.#channel.readBytes(length);
        if (bytes === undefined) throw await this.#channel.failure("the connection ended");
        return (await this.#unchanged(length)) ? bytes : CHANGED;
      }),
    );
  }

  /** The file read into `into`: its length (not read when longer than `into`), or undefined when missing. */
  getInto(path: string, into: Uint8Array): Promise<number | undefined> {
    return this.#getSettled(path, () =>
      this.#request([`get ${checkPath(path)}\n`], async () => {
        const status = await this.#status("get");
        if (!status.ok) return undefined;
        const length = this.#length(status.rest);
        // The bytes come all the same: taken off the stream, kept only when they fit.
        if (!(await this.#channel.readInto(length <= into.length ? into : undefined, length))) throw await this.#channel.failure("the connection ended");
        return (await this.#unchanged(length)) ? length : CHANGED;
      }),
    );
  }

  size(path: string): Promise<number | undefined> {
    return this.#request([`size ${checkPath(path)}\n`], async () => {
      const status = await this.#status("size");
      return status.ok ? this.#length(status.rest) : undefined;
    });
  }

  remove(path: string): Promise<void> {
    return this.#request([`rm ${checkPath(path)}\n`], async () => {
      const status = await this.#status("rm");
      if (!status.ok) throw new RemoteRefusal(`ssh destination ${this.destination.url}: cannot remove ${path}: ${status.message}`);
    });
  }

  /** Names in a directory (dot files included, `.` and `..` not); none when it does not exist. */
  list(dir: string): Promise<string[]> {
    return this.#request([`ls ${dir === "." ? "." : checkPath(dir)}\n`], async () => {
      await this.#status("ls");
      const names: string[] = [];
      for (;;) {
        const line = await this.#channel.readLine();
        if (line === undefined) throw await this.#channel.failure("the connection ended");
        if (line === "") return names;
        if (line !== "." && line !== "..") names.push(line);
      }
    });
  }

  /** Whether a process runs on the remote (a writer whose temps are not stale). */
  alive(pid: number): Promise<boolean> {
    return this.#request([`alive ${Math.trunc(pid)}\n`], async () => (await this.#status("alive")).ok);
  }

  /** Every write so far durable on the remote, renames included. */
  flush(): Promise<void> {
    return this.#request(["flush\n"], async () => {
      const status = await this.#status("flush");
      if (!status.ok) throw new RemoteRefusal(`ssh destination ${this.destination.url}: cannot sync: ${status.message}`);
    });
  }

  /** Ends the remote loop and the connection. */
  async close(): Promise<void> {
    await this.#answered;
    await this.#channel.close();
  }
}

/** The remote answered `err`: that request failed, the connection stays usable. */
export class RemoteRefusal extends BlaineError {
  constructor(message: string) {
    super(message, ExitCode.failure);
  }
}
