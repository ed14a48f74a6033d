import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { CatalogLock } from "../../catalog/lock.ts";
import { appliedSqliteMigrations, applySqliteMigrations, missingMigrations } from "../../catalog/schema-version.ts";
import { BlaineError, ExitCode, UsageError, errorMessage } from "../../errors.ts";

/** The page size of a new SQLite image catalog. */
export const SQLITE_PAGE_BYTES = 16384;

/**
 * The image catalog's connection, on SQLite (a file, nothing to start) or
 * PostgreSQL (`postgres://…`): the same SQL text on both, written with `?`
 * placeholders (numbered for PostgreSQL here). Transactions serialise the
 * writers that must not interleave (a backup's block rows, a cleanup's
 * choice of chunks): SQLite's BEGIN IMMEDIATE, PostgreSQL's transaction-scoped
 * advisory lock.
 */
export interface ImageSql {
  readonly dialect: "sqlite" | "postgres";
  /** How messages name the catalog (a PostgreSQL URL without its password). */
  readonly name: string;
  all<T>(text: string, params?: readonly unknown[]): Promise<T[]>;
  run(text: string, params?: readonly unknown[]): Promise<void>;
  /** Runs `fn` in one transaction, exclusive among image-catalog writers. */
  transaction<T>(fn: (tx: ImageSql) => Promise<T>): Promise<T>;
  /**
   * Takes a named lock held until released or until this process dies
   * (a lock file beside an SQLite catalog, a session advisory lock on
   * PostgreSQL); undefined when another live process holds it.
   */
  tryLock(name: string): Promise<(() => Promise<void>) | undefined>;
  close(): Promise<void>;
}

const MIGRATIONS = join(import.meta.dir, "..", "migrations");
/** The advisory lock every writing transaction takes on PostgreSQL (any constant; "image" in ASCII). */
const WRITER_LOCK = 0x696d616765;

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//.test(db);
}

/** A PostgreSQL URL with its password blanked, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/, "$1:***@");
}

/** Opens (creating if asked) the image catalog at `db` and applies its migrations. */
export async function openImageSql(db: string, options: { create: boolean }): Promise<ImageSql> {
  return isPostgresUrl(db) ? openPostgres(db) : openSqlite(db, options.create);
}

function openSqlite(path: string, create: boolean): ImageSql {
  const name = `image catalog ${path}`;
  if (!existsSync(path)) {
    if (!create) throw new UsageError(`${name} does not exist`);
    if (!existsSync(dirname(path))) throw new UsageError(`--db ${path}: directory ${dirname(path)} does not exist`);
  }
  let db: Database;
  try {
    db = new Database(path, { create: true });
    db.exec("PRAGMA busy_timeout = 30000");
    // Before anything is written, so a new catalog takes it (an existing one keeps its own): block lists are
    // read, copied and deleted by the ten thousand rows, and this VM's syscalls are dear. A prune of 50
    // sessions of 60 (4 GiB, 32 768 rows each) read and wrote 4 KiB pages ~290 000 times; with 16 KiB
    // pages it took 1.2-1.7 s instead of 1.7-2.3 s.
    db.exec(`PRAGMA page_size = ${SQLITE_PAGE_BYTES}`);
    // WAL: a backup's reads and a cleanup beside it do not wait on each other; writers still take turns.
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA cache_size = -16384");
    const folder = join(MIGRATIONS, "sqlite");
    const applied = appliedSqliteMigrations(db);
    if (applied === undefined && db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").get()) {
      throw new BlaineError(`${path} is an SQLite file but not a Blaine image catalog`);
    }
    if (missingMigrations(applied ?? [], folder, name) > 0) applySqliteMigrations(db, folder);
  } catch (error) {
    if (error instanceof BlaineError) throw error;
    throw new BlaineError(`cannot open ${name}: ${errorMessage(error)}`, ExitCode.failure);
  }
  const statements = new Map<string, ReturnType<Database["query"]>>();
  const prepared = (text: string) => {
    let statement = statements.get(text);
    if (!statement) statements.set(text, (statement = db.query(text)));
    return statement;
  };
  // This connection's transactions one after another: a backup's claims and its block rows are begun by different stages, and one begun while another is open on the connection
  // failed its BEGIN (SQLite has no nesting); its ROLLBACK would have ended the other's.
  let turn: Promise<unknown> = Promise.resolve();
  const runner: ImageSql = {
    dialect: "sqlite",
    name,
    all: async <T>(text: string, params: readonly unknown[] = []) => prepared(text).all(...(params as never[])) as T[],
    run: async (text, params = []) => void prepared(text).run(...(params as never[])),
    transaction: <T>(fn: (tx: ImageSql) => Promise<T>): Promise<T> => {
      const mine = turn.then(async () => {
        db.exec("BEGIN IMMEDIATE");
        try {
          const result = await fn(runner);
          db.exec("COMMIT");
          return result;
        } catch (error) {
          db.exec("ROLLBACK");
          throw error;
        }
      });
      turn = mine.catch(() => {});
      return mine;
    },
    tryLock: async (lockName) => {
      try {
        const lock = CatalogLock.acquire(`${path}.${lockName}`);
        return async () => lock.release();
      } catch (error) {
        if (error instanceof BlaineError) return undefined;
        throw error;
      }
    },
    close: async () => {
      for (const statement of statements.values()) statement.finalize();
      db.close();
    },
  };
  return runner;
}

/** `?` placeholders as PostgreSQL's `$1, $2, …` (the SQL here holds no `?` in strings). */
function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/** A named lock's advisory-lock key: the writer lock's constant plus a small hash of the name. */
function lockKey(name: string): number {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) % 65_536;
  return WRITER_LOCK + 1 + hash;
}

async function openPostgres(url: string): Promise<ImageSql> {
  const name = `image catalog ${redactUrl(url)}`;
  const sql = new Bun.SQL(url, { max: 4 });
  try {
    const folder = join(MIGRATIONS, "postgres");
    // drizzle keeps PostgreSQL's record of migrations in its own schema.
    const [table] = (await sql.unsafe("SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS present")) as { present: boolean }[];
    const applied = table?.present ? ((await sql.unsafe("SELECT created_at FROM drizzle.__drizzle_migrations")) as { created_at: string | number }[]).map((row) => Number(row.created_at)) : [];
    if (missingMigrations(applied, folder, name) > 0) {
      const { drizzle } = require("drizzle-orm/bun-sql") as typeof import("drizzle-orm/bun-sql");
      const { migrate } = require("drizzle-orm/bun-sql/migrator") as typeof import("drizzle-orm/bun-sql/migrator");
      await migrate(drizzle({ client: sql }), { migrationsFolder: folder });
    }
  } catch (error) {
    await sql.close().catch(() => {});
    if (error instanceof BlaineError) throw error;
    throw new BlaineError(`cannot open ${name}: ${errorMessage(error).replaceAll(url, redactUrl(url))}`, ExitCode.failure);
  }
  const over = (client: Bun.SQL): ImageSql => ({
    dialect: "postgres",
    name,
    all: async <T>(text: string, params: readonly unknown[] = []) => (await client.unsafe(numbered(text), params as unknown[])) as T[],
    run: async (text, params = []) => void (await client.unsafe(numbered(text), params as unknown[])),
    transaction: async (fn) =>
      (await sql.begin(async (tx) => {
        await tx.unsafe("SELECT pg_advisory_xact_lock($1)", [WRITER_LOCK]);
        return fn(over(tx as unknown as Bun.SQL));
      })) as never,
    tryLock: async (lockName) => {
      const key = lockKey(lockName);
      const connection = await sql.reserve();
      const [row] = (await connection.unsafe("SELECT pg_try_advisory_lock($1) AS taken", [key])) as { taken: boolean }[];
      if (!row?.taken) {
        connection.release();
        return undefined;
      }
      return async () => {
        await connection.unsafe("SELECT pg_advisory_unlock($1)", [key]);
        connection.release();
      };
    },
    close: async () => {
      await sql.close();
    },
  });
  return over(sql);
}
