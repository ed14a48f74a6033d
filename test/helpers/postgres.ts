import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * A throwaway PostgreSQL cluster on 127.0.0.1 for tests: initdb as the
 * postgres user (initdb refuses root) in a temp directory, pg_ctl start on
 * a free port, `pg_ctl -m immediate stop` at the end. One database per test.
 */
export interface TestPostgres {
  /** A new, empty database's URL. */
  createDatabase(): Promise<string>;
  stop(): void;
}

/** Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/VERSION/bin (not on PATH there). */
function serverBin(): string | undefined {
  const onPath = Bun.which("initdb");
  if (onPath && Bun.which("pg_ctl")) return dirname(onPath);
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a)) : [];
  return versions.map((version) => `/usr/lib/postgresql/${version}/bin`).find((bin) => existsSync(join(bin, "initdb")));
}

/** Why PostgreSQL cannot be started here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  if (!serverBin()) return "PostgreSQL (initdb, pg_ctl) is not installed (Debian package postgresql)";
  if (process.getuid?.() !== 0) return "starting a throwaway cluster as the postgres user needs root";
  if (Bun.spawnSync(["id", "postgres"]).exitCode !== 0) return "there is no postgres user";
  return undefined;
}

function asPostgres(command: string[]): { exitCode: number; output: string } {
  const result = Bun.spawnSync(["su", "postgres", "-s", "/bin/sh", "-c", command.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ")]);
  return { exitCode: result.exitCode, output: `${result.stdout}${result.stderr}` };
}

export async function startPostgres(): Promise<TestPostgres> {
  const root = mkdtempSync("/tmp/blaine-pg-");
  chmodSync(root, 0o777);
  const data = join(root, "data");
  Bun.spawnSync(["chown", "postgres", root]);
  const bin = serverBin() as string;
  const init = asPostgres([join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync"]);
  if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.output}`);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const start = asPostgres([join(bin, "pg_ctl"), "-D", data, "-l", join(root, "log"), "-o", `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`, "-w", "start"]);
  if (start.exitCode !== 0) throw new Error(`pg_ctl start failed: ${start.output}`);
  const admin = new Bun.SQL(`postgres://postgres@127.0.0.1:${port}/postgres`);
  let databases = 0;
  return {
    async createDatabase() {
      const name = `blaine_test_${++databases}`;
      await admin.unsafe(`CREATE DATABASE ${name}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop() {
      void admin.close();
      asPostgres([join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop"]);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
