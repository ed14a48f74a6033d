/**
 * Where a command's words go: with --json the one JSON document owns stdout
 * and every human line goes to stderr.
 */
export interface Output {
  readonly json: boolean;
  /** A line for people. */
  say(line: string): void;
  /** The machine-readable result (only printed with --json). */
  result(value: unknown): void;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    say: (line) => (json ? process.stderr : process.stdout).write(`${line}\n`),
    result: (value) => {
      if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
  };
}
