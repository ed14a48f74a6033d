import { Database } from "bun:sqlite";

/** The last run a host catalog recorded. */
export interface LastRun {
  readonly startedAt: number;
  readonly finishedAt: number | null;
  readonly exitCode: number | null;
  /** The run's summary as JSON (null while it runs, or after a kill). */
  readonly summary: string | null;
  readonly hostname: string | null;
}

const RUN_COLUMNS = "started_at AS startedAt, finished_at AS finishedAt, exit_code AS exitCode, summary, hostname";

/** The host catalog's `runs`: one row per `blaine run`, with its summary. */
export class RunsTable {
  readonly #sqlite: Database;

  constructor(sqlite: Database) {
    this.#sqlite = sqlite;
  }

  /** Records a run as started; returns its id. */
  start(startedAt: number, hostname: string): number {
    return (this.#sqlite.query("INSERT INTO main.runs (started_at, hostname) VALUES (?, ?) RETURNING id").get(startedAt, hostname) as { id: number }).id;
  }

  finish(id: number | null, run: { readonly finishedAt: number; readonly exitCode: number; readonly summary: string }): void {
    this.#sqlite.query("UPDATE main.runs SET finished_at = ?, exit_code = ?, summary = ? WHERE id = ?").run(run.finishedAt, run.exitCode, run.summary, id);
  }

  last(): LastRun | undefined {
    return lastRunOf(this.#sqlite);
  }

  /** Whether this catalog recorded the run that started at `startedAt` on `hostname`. */
  has(startedAt: number, hostname: string | null): boolean {
    return this.#sqlite.query("SELECT 1 FROM main.runs WHERE started_at = ? AND hostname IS ?").get(startedAt, hostname) !== null;
  }
}

function lastRunOf(sqlite: Database): LastRun | undefined {
  return (sqlite.query(`SELECT ${RUN_COLUMNS} FROM main.runs ORDER BY id DESC LIMIT 1`).get() as LastRun | null) ?? undefined;
}

/**
 * The last run recorded in a copy of a host catalog (the one a run leaves on
 * each disk), read from the file as it is: no migration, no lock. Throws
 * when the file cannot be read.
 */
export function lastRunInCopy(path: string): LastRun | undefined {
  const copy = new Database(path, { readonly: true });
  try {
    return lastRunOf(copy);
  } finally {
    copy.close();
  }
}

/** When the last run of a copy of a host catalog ended (or began, if killed); 0 when it has none. Throws when the file cannot be read. */
export function lastRunTimeInCopy(path: string): number {
  const copy = new Database(path, { readonly: true });
  try {
    return (copy.query("SELECT coalesce(max(coalesce(finished_at, started_at)), 0) AS t FROM main.runs").get() as { t: number }).t;
  } finally {
    copy.close();
  }
}
