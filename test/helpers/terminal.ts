import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "./cli.ts";

const BIN = join(import.meta.dir, "..", "..", "bin", "blaine.ts");

/**
 * A real terminal: blaine runs in a tmux pane (a pseudo-terminal of its
 * own); the test types with send-keys and reads the screen with
 * capture-pane, as a person would.
 */
export class Terminal {
  readonly socket = `blaine-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly exitFile: string;

  /** `args` are passed through a shell: quote what needs it. `env` is set for blaine alone. */
  constructor(readonly cwd: string, args: readonly string[], env: Record<string, string> = {}) {
    this.exitFile = join(cwd, ".exit-code");
    rmSync(this.exitFile, { force: true });
    const assignments = Object.entries(env).map(([key, value]) => `${key}=${JSON.stringify(value)} `).join("");
    const command = `${assignments}bun ${BIN} ${args.join(" ")}; echo $? > ${this.exitFile}; sleep 300`;
    this.tmux("new-session", "-d", "-s", "main", "-x", "150", "-y", "50", "-c", cwd, "bash", "-c", command);
  }

  tmux(...args: string[]): string {
    const result = Bun.spawnSync(["tmux", "-L", this.socket, ...args], { stdout: "pipe", stderr: "pipe" });
    if (result.exitCode !== 0) throw new Error(`tmux ${args[0]} failed: ${result.stderr.toString()}`);
    return result.stdout.toString();
  }

  screen(): string {
    return this.tmux("capture-pane", "-p", "-J", "-t", "main", "-S", "-200");
  }

  async waitForText(text: string): Promise<void> {
    await waitFor(() => this.screen().includes(text), 30_000, `"${text}" on the screen`).catch((error) => {
      throw new Error(`${error.message}; the screen:\n${this.screen()}`);
    });
  }

  /** Types text literally, then presses the named keys (Enter, Down, C-c, …). */
  type(text: string, ...keys: string[]): void {
    if (text) this.tmux("send-keys", "-t", "main", "-l", text);
    if (keys.length > 0) this.tmux("send-keys", "-t", "main", ...keys);
  }

  async answer(prompt: string, text: string, ...keys: string[]): Promise<void> {
    await this.waitForText(prompt);
    this.type(text, ...keys);
  }

  async exitCode(): Promise<number> {
    // The shell creates the file before it writes the code: an empty file is not an exit code 0 yet.
    await waitFor(() => existsSync(this.exitFile) && readFileSync(this.exitFile, "utf8").trim() !== "", 60_000, "blaine to exit").catch((error) => {
      throw new Error(`${error.message}; the screen:\n${this.screen()}`);
    });
    return Number(readFileSync(this.exitFile, "utf8").trim());
  }

  close(): void {
    Bun.spawnSync(["tmux", "-L", this.socket, "kill-server"]);
  }
}

