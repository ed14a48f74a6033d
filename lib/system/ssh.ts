import { BlaineError, ExitCode, UsageError } from "../errors.ts";
import { childEnvironment, hasProgram } from "./exec.ts";

/**
 * The system's `ssh`, as one long-lived connection whose stdin and stdout
 * carry a protocol (the ssh chunk store's). It runs with the user's keys,
 * known_hosts and ~/.ssh/config; `BLAINE_SSH_COMMAND` replaces the program
 * and its options the way GIT_SSH_COMMAND does for git (run by `sh`, the
 * destination and remote command appended).
 *
 * Bun.spawn rather than zx (lib/system/exec.ts): zx runs a command to its
 * end, this is a binary stream in both directions for a whole command.
 */
export const SSH_COMMAND_VARIABLE = "BLAINE_SSH_COMMAND";

/** `ssh://[user@]host[:port]/path` taken apart. `/~/dir` is dir under the remote home. */
export interface SshDestination {
  /** The URL as the user gave it (for messages). */
  readonly url: string;
  readonly user: string | undefined;
  readonly host: string;
  readonly port: number | undefined;
  /** The remote directory: absolute, or `~/…` for the home directory. */
  readonly path: string;
}

export function parseSshUrl(url: string, option: string): SshDestination {
  const match = /^ssh:\/\/(?:([^@/:]+)(:[^@/]*)?@)?(\[[0-9a-fA-F:.]+\]|[^/:@[\]]+)(?::(\d+))?(\/.*)?$/.exec(url);
  if (!match) throw new UsageError(`${option} ${url}: not ssh://user@host[:port]/path`);
  const [, user, password, rawHost, portText, rawPath] = match;
  // A password in the URL would sit in argv and in shell histories; ssh takes keys (or asks on the terminal).
  if (password !== undefined) throw new UsageError(`${option} ${url.replace(/:[^@/]*@/, ":…@")}: no password in the URL; use an ssh key (ssh-agent, ~/.ssh/config)`);
  const host = rawHost.replace(/^\[(.*)\]$/, "$1");
  // ssh would take a leading dash as an option (a host of "-oProxyCommand=…").
  if (host.startsWith("-") || user?.startsWith("-")) throw new UsageError(`${option} ${url}: a host or user cannot start with "-"`);
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (port < 1 || port > 65535)) throw new UsageError(`${option} ${url}: port ${portText} is not 1–65535`);
  if (!rawPath || rawPath === "/") throw new UsageError(`${option} ${url}: give the directory on the remote (ssh://host/srv/images, or ssh://host/~/images under the home directory)`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath).replace(/\/+$/, "");
  } catch {
    throw new UsageError(`${option} ${url}: the path is percent-encoded (as in a URL): write a % as %25`);
  }
  const path = decoded.startsWith("/~/") ? decoded.slice(1) : decoded === "/~" ? "~" : decoded;
  return { url, user, host, port, path };
}

/** The program and arguments that open the connection and run `remoteCommand` there. */
export function sshArgv(destination: SshDestination, remoteCommand: string, env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  const target = destination.user ? `${destination.user}@${destination.host}` : destination.host;
  // -T: no terminal (binary data both ways); -x: no X11 forwarding.
  const args = ["-T", "-x", ...(destination.port ? ["-p", String(destination.port)] : []), target, remoteCommand];
  const custom = env[SSH_COMMAND_VARIABLE]?.trim();
  // As git runs GIT_SSH_COMMAND: through the shell, so it may hold options and quoting.
  return custom ? ["sh", "-c", `${custom} "$@"`, "blaine-ssh", ...args] : ["ssh", ...args];
}

/** Words quoted for a POSIX shell (the remote login shell reads the remote command). */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** How much of ssh's stderr is kept for messages. */
const STDERR_KEPT = 4096;

/** One ssh connection: bytes to the remote command's stdin, lines and byte counts from its stdout. */
export class SshChannel {
  readonly destination: SshDestination;
  readonly #child: ReturnType<typeof spawnSsh>;
  readonly #reader: { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(): Promise<void> };
  /** Bytes received and not yet taken, oldest first; `#offset` into the first. */
  #pending: Uint8Array[] = [];
  #offset = 0;
  #buffered = 0;
  #ended = false;
  #stderr = "";
  readonly #stderrDone: Promise<void>;

  private constructor(destination: SshDestination, child: ReturnType<typeof spawnSsh>) {
    this.destination = destination;
    this.#child = child;
    this.#reader = child.stdout.getReader();
    this.#stderrDone = (async () => {
      const decoder = new TextDecoder();
      for await (const piece of child.stderr) this.#stderr = (this.#stderr + decoder.decode(piece, { stream: true })).slice(-STDERR_KEPT);
    })().catch(() => {});
  }

  /** Starts ssh running `remoteCommand` on the destination. */
  static open(destination: SshDestination, remoteCommand: string): SshChannel {
    const argv = sshArgv(destination, remoteCommand);
    if (!hasProgram(argv[0])) {
      // The table of tools (and the FUSE and cipher modules it names) loaded only to say this, not by every ssh:// URL parsed.
      const { notInstalled } = require("./tool-versions.ts") as typeof import("./tool-versions.ts");
      throw new BlaineError(`ssh destination ${destination.url}: ${notInstalled(argv[0])}`, ExitCode.failure);
    }
    return new SshChannel(destination, spawnSsh(argv));
  }

  /** Sends bytes (written in order; resolves once ssh has taken them). */
  async send(...parts: (string | Uint8Array)[]): Promise<void> {
    const sink = this.#child.stdin;
    try {
      for (const part of parts) sink.write(part);
      await sink.flush();
    } catch (error) {
      throw await this.failure(`the connection broke (${error instanceof Error ? error.message : String(error)})`);
    }
  }

  async #fill(): Promise<boolean> {
    if (this.#ended) return false;
    const { done, value } = await this.#reader.read();
    if (done || !value) {
      this.#ended = true;
      return false;
    }
    if (value.length > 0) {
      this.#pending.push(value);
      this.#buffered += value.length;
    }
    return true;
  }

  /** The next line (without its newline); undefined when the connection ended first. */
  async readLine(): Promise<string | undefined> {
    const parts: Uint8Array[] = [];
    for (;;) {
      while (this.#pending.length > 0) {
        const head = this.#pending[0];
        const newline = head.indexOf(10, this.#offset);
        if (newline >= 0) {
          parts.push(head.subarray(this.#offset, newline));
          this.#take(newline + 1 - this.#offset);
          return Buffer.concat(parts).toString("utf8");
        }
        parts.push(head.subarray(this.#offset));
        this.#take(head.length - this.#offset);
      }
      if (!(await this.#fill())) return undefined;
    }
  }

  /** Exactly `length` bytes; undefined when the connection ended first. */
  async readBytes(length: number): Promise<Uint8Array | undefined> {
    const out = new Uint8Array(length);
    return (await this.readInto(out, length)) ? out : undefined;
  }

  /**
   * The next `length` bytes into `target` (which holds at least that many),
   * or dropped when `target` is undefined; false when the connection ended
   * first. Taken as they arrive: no buffer of the whole length is made.
   */
  async readInto(target: Uint8Array | undefined, length: number): Promise<boolean> {
    let filled = 0;
    while (filled < length) {
      if (this.#pending.length === 0 && !(await this.#fill())) return false;
      const head = this.#pending[0];
      const count = Math.min(length - filled, head.length - this.#offset);
      target?.set(head.subarray(this.#offset, this.#offset + count), filled);
      filled += count;
      this.#take(count);
    }
    return true;
  }

  #take(count: number): void {
    this.#offset += count;
    const head = this.#pending[0];
    if (this.#offset >= head.length) {
      this.#pending.shift();
      this.#buffered -= head.length;
      this.#offset = 0;
    }
  }

  /**
   * The error for a connection that ended or failed: names the destination
   * and says what ssh said (its last lines on stderr). Exit 1: the
   * destination could not be used, the command did nothing wrong.
   */
  async failure(what: string): Promise<BlaineError> {
    const exited = await within(this.#child.exited, 2000);
    await within(this.#stderrDone, 500);
    const said = this.#stderr
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line && !/^Warning: Permanently added/.test(line))
      .slice(-3)
      .join("; ");
    const status = exited === undefined ? "" : ` (ssh exit ${exited})`;
    return new BlaineError(`ssh destination ${this.destination.url}: ${what}${status}${said ? `: ${said}` : ""}`, ExitCode.failure);
  }

  /** Ends the remote command's input (it exits at its end) and waits for ssh to finish. */
  async close(): Promise<void> {
    try {
      await this.#child.stdin.end();
    } catch {
      // Already gone: nothing left to close.
    }
    if ((await within(this.#child.exited, 10_000)) === undefined) this.#child.kill();
    await this.#reader.cancel().catch(() => {});
  }
}

/** The promise's value, or undefined after `ms` (a timer that does not keep the process alive once settled). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)))]);
  } finally {
    clearTimeout(timer);
  }
}

function spawnSsh(argv: string[]) {
  return Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: childEnvironment() });
}
