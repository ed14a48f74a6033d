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

// console.log/error, not process.stdout/stderr: a single string is written
// as it is, and the first touch of process.stdout loads Node's streams, a
// few percent of a run that has nothing to do.
export function createOutput(json: boolean): Output {
  return {
    json,
    say: (line) => (json ? console.error(line) : console.log(line)),
    result: (value) => {
      if (json) console.log(JSON.stringify(value, null, 2));
    },
  };
}
