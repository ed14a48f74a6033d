import { setDefaultTimeout, afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { archiveEnv, type ArchiveEnv } from "./helpers/archive-env.ts";
import { blaine } from "./helpers/cli.ts";
import { sqliteCatalogAsOf, tempDir } from "./helpers/fixture.ts";

// These tests run the real CLI on real trees (and kill it, and re-run it): Bun's 5 s default is too short.
setDefaultTimeout(120_000);

const MIGRATIONS = join(import.meta.dir, "..", "lib", "archive", "catalog", "migrations", "host");

let env: ArchiveEnv | undefined;
afterEach(() => {
  env?.cleanup();
  env = undefined;
});

describe("catalog versions", () => {
  test("a host catalog from an older version is upgraded in place, its data kept", async () => {
    env = await archiveEnv({ a: "1", b: "2" });
    await env.run();
    // Rebuild the same catalog as the first release wrote it: only migration 0000 applied.
    const old = tempDir();
    try {
      const oldDb = join(old.path, "old.db");
      const sqlite = sqliteCatalogAsOf(MIGRATIONS, 1, oldDb);
      sqlite.exec(`ATTACH '${env.db}' AS cur`);
      // The columns the first release had (later migrations added some).
      const columnsOf = (table: string) => (sqlite.query(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[]).map((row) => row.name).join(", ");
      sqlite.exec(
        `INSERT INTO archive SELECT * FROM cur.archive; INSERT INTO disks SELECT * FROM cur.disks; ` +
          `INSERT INTO disk_copies SELECT ${columnsOf("disk_copies")} FROM cur.disk_copies; INSERT INTO files SELECT ${columnsOf("files")} FROM cur.files`,
      );
      sqlite.exec("DETACH cur");
      expect(sqlite.query("SELECT count(*) AS n FROM pragma_table_info('runs') WHERE name = 'hostname'").get()).toEqual({ n: 0 });
      sqlite.close();
      cpSync(oldDb, env.db);

      const readOnly = await env.cli("status");
      expect(readOnly.exitCode).toBe(1);
      expect(readOnly.stderr).toMatch(/older version of Blaine/);
      const run = await env.run();
      expect(run.exitCode).toBe(0);
      expect(run.json.unchanged).toBe(2);
      const upgraded = new Database(env.db, { readonly: true });
      expect(upgraded.query("SELECT count(*) AS n FROM pragma_table_info('runs') WHERE name = 'hostname'").get()).toEqual({ n: 1 });
      // Later migrations too: the queue of deferred actions (issue 3) exists, empty.
      expect(upgraded.query("SELECT count(*) AS n FROM deferred_actions").get()).toEqual({ n: 0 });
      expect(upgraded.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
      upgraded.close();
    } finally {
      old.cleanup();
    }
  });

  test("a catalog written by a newer version is refused and left alone", async () => {
    env = await archiveEnv({ a: "1" });
    await env.run();
    const sqlite = new Database(env.db);
    sqlite.query("INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('future', 99999999999999)").run();
    sqlite.close();
    const before = readFileSync(env.db);
    const result = await env.run();
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/newer version of Blaine/);
    expect(readFileSync(env.db)).toEqual(before);
  });

  test("an SQLite file that is not a Blaine catalog is refused", async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, "other.db");
      const sqlite = new Database(path);
      sqlite.exec("CREATE TABLE t (x)");
      sqlite.close();
      const result = await blaine(["status", "--db", path]);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`${path} is an SQLite file but not a Blaine host catalog`);
    } finally {
      dir.cleanup();
    }
  });

  test("each run leaves an atomic copy of the host catalog on the disk", async () => {
    env = await archiveEnv({ a: "1", b: "2" });
    await env.run();
    const rowsOf = (path: string) => {
      const db = new Database(path, { readonly: true });
      try {
        expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
        return {
          files: db.query("SELECT path, hash, disk_id FROM files ORDER BY path").all(),
          runs: db.query("SELECT count(*) AS n FROM runs").get(),
        };
      } finally {
        db.close();
      }
    };
    const copyPath = join(env.disk, ".blaine", "host-catalog.db");
    expect(rowsOf(copyPath).files).toHaveLength(2);
    expect(rowsOf(copyPath)).toEqual(rowsOf(env.db));
    // A later run that changes something leaves the catalog as it is after that run.
    writeFileSync(join(env.source, "c"), "3");
    rmSync(join(env.source, "a"));
    await env.run();
    expect(rowsOf(copyPath).files).toHaveLength(2);
    expect(rowsOf(copyPath)).toEqual(rowsOf(env.db));
    expect(readdirSync(join(env.disk, ".blaine")).filter((name) => name.includes(".tmp"))).toEqual([]);
  });

  test("status reports the disks and the last run", async () => {
    env = await archiveEnv({ a: "1", b: "22" });
    await env.run();
    const status = await env.cli("status", "--json");
    expect(status.exitCode).toBe(0);
    expect(status.json.files).toBe(2);
    expect(status.json.bytes).toBe(3);
    expect(status.json.disks).toHaveLength(1);
    expect(status.json.disks[0]).toMatchObject({ label: "A", state: "open", files: 2, copies: 1, mounted: env.disk });
    expect(status.json.lastRun.exitCode).toBe(0);
  });
});
