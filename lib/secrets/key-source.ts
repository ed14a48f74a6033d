import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { BlaineError, ExitCode, UsageError, errnoCode, errorMessage } from "../errors.ts";

/** A password Blaine may try on an encrypted disk, and where it came from (for messages; never the password). */
export interface KeyCandidate {
  readonly origin: string;
  readonly password: string;
}

/** The environment variable holding a password (removed from every child's environment). */
export const PASSWORD_VARIABLE = "BLAINE_PASSWORD";

/**
 * Where keys come from, in order: each `--keyfile FILE` (its first line is
 * the password, as gocryptfs' -passfile and `securefs < FILE` read it), then
 * BLAINE_PASSWORD, then a hidden prompt when stdin and stderr are a
 * terminal. Several key files are allowed because a twin may have a key of
 * its own: each disk is opened with the first key that fits.
 */
export class KeySource {
  readonly #keyfiles: readonly string[];
  readonly #env: Readonly<Record<string, string | undefined>>;
  /** Asked of the terminal on first need (see `interactive`). */
  #interactive: boolean | undefined;
  /** Passwords typed at a prompt during this command, tried on the next disk too. */
  readonly #typed: KeyCandidate[] = [];

  constructor(keyfiles: readonly string[] = [], options: { env?: Readonly<Record<string, string | undefined>>; interactive?: boolean } = {}) {
    this.#keyfiles = keyfiles.map((file) => resolve(file));
    this.#env = options.env ?? process.env;
    this.#interactive = options.interactive;
  }

  /**
   * Whether a hidden prompt can be shown. Asked only when a key is wanted:
   * the first touch of process.stdin or process.stderr loads Node's stream
   * modules, a twentieth of a run that has nothing to do (and no encrypted disk).
   */
  get interactive(): boolean {
    return (this.#interactive ??= Boolean(process.stdin.isTTY) && Boolean(process.stderr.isTTY));
  }

  /** Every key given without asking, in the order to try them. */
  known(): KeyCandidate[] {
    const candidates = this.#keyfiles.map(keyfileCandidate);
    const fromEnv = this.#env[PASSWORD_VARIABLE];
    if (fromEnv) candidates.push({ origin: PASSWORD_VARIABLE, password: fromEnv });
    return [...candidates, ...this.#typed];
  }

  /** Asks for the password of a disk on the terminal; undefined when there is no terminal. */
  async ask(message: string): Promise<KeyCandidate | undefined> {
    if (!this.interactive) return undefined;
    return this.#rememberTyped(await promptHidden(message));
  }

  /**
   * The key for a new encrypted disk: the last key file (the others open the
   * disks a twin is cloned from), else BLAINE_PASSWORD, else typed twice on
   * the terminal.
   */
  async forNewDisk(label: string): Promise<KeyCandidate> {
    const lastKeyfile = this.#keyfiles.at(-1);
    if (lastKeyfile) return keyfileCandidate(lastKeyfile);
    // BLAINE_PASSWORD, or a password typed earlier in this command.
    const [given] = this.known();
    if (given) return given;
    if (!this.interactive) {
      throw new UsageError(`disk "${label}" is to be encrypted but no key was given: use --keyfile FILE or set ${PASSWORD_VARIABLE}`);
    }
    for (;;) {
      const password = await promptHidden(`Password for the new disk "${label}" (a lost password loses the archive)`);
      const again = await promptHidden("The same password again");
      if (password === again) return this.#rememberTyped(password);
      process.stderr.write("The two passwords differ; try again.\n");
    }
  }

  /** A password typed at a prompt, kept to be tried on the next disk too. */
  #rememberTyped(password: string): KeyCandidate {
    const candidate = { origin: "the password typed", password };
    this.#typed.push(candidate);
    return candidate;
  }
}

function keyfileCandidate(file: string): KeyCandidate {
  return { origin: `--keyfile ${file}`, password: readKeyFile(file) };
}

const warnedAbout = new Set<string>();

/** The password in a key file: its first line, which must not be empty. */
export function readKeyFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
    // Said once per file, on stderr: a key others can read is no key.
    if ((statSync(file).mode & 0o077) !== 0 && !warnedAbout.has(file)) {
      warnedAbout.add(file);
      process.stderr.write(`warning: key file ${file} can be read by other users (chmod 600 ${file})\n`);
    }
  } catch (error) {
    throw new UsageError(`--keyfile ${file}: ${errnoCode(error) === "ENOENT" ? "no such file (give --keyfile where the key file is now)" : errorMessage(error)}`);
  }
  const password = text.split("\n")[0].replace(/\r$/, "");
  if (!password) throw new UsageError(`--keyfile ${file}: the first line (the password) is empty`);
  return password;
}

/** A new random password (base64 of 32 random bytes) for a key file. */
export function generatePassword(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
}

async function promptHidden(message: string): Promise<string> {
  const { password, isCancel } = await import("@clack/prompts");
  const answer = await password({ message, output: process.stderr, validate: (value) => (value ? undefined : "The password cannot be empty") });
  if (isCancel(answer)) throw new BlaineError("cancelled at the password prompt", ExitCode.usage);
  return answer;
}
