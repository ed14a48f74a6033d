import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { blaine, type CliResult } from "./helpers/cli.ts";
import { crashAt, expectDiedAt } from "./helpers/crash.ts";
import { MiB, hashOf, randomBytes, sameBytes, writeAt } from "./helpers/image-env.ts";
import { s3Missing, startS3, type TestS3 } from "./helpers/s3rver.ts";
import { sshdMissing, startSshd, type TestSshd } from "./helpers/sshd.ts";

/**
 * The encrypting store (issue 16, "Encryption") on a directory store, on
 * an ssh store against a real sshd and on a real S3 server (s3rver): what lands on the destination is
 * grepped for the image's content, the version's names and labels, the
 * chunks' hashes and the key; a wrong key changes nothing.
 */
const BLOCK = 64 * 1024;
const BS = ["--block-size", "64K"];
const PASSWORD = "correct-horse-battery-4711";
const CONTENT = "PLAINTEXT-CONTENT-MARKER-0815 ";
const NAME = "payroll-vm-marker";
const SNAPSHOT = "snapshot-marker-42";
const LABEL = "label-marker-99";

const noSshd = sshdMissing();
if (noSshd) console.warn(`encrypted ssh store test skipped: ${noSshd}`);
let sshd: TestSshd | undefined;
const noS3 = s3Missing();
if (noS3) console.warn(`encrypted S3 store test skipped: ${noS3}`);
let s3: TestS3 | undefined;
const roots: string[] = [];

beforeAll(async () => {
  if (!noSshd) sshd = await startSshd();
  if (!noS3) s3 = await startS3();
}, 60_000);
afterAll(async () => {
  await sshd?.stop();
  s3?.stop();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function newDir(): string {
  const dir = mkdtempSync("/tmp/blaine-encrypted-store-");
  roots.push(dir);
  return dir;
}

function keyFile(dir: string, name: string, password: string): string {
  const path = join(dir, name);
  writeFileSync(path, `${password}\n`, { mode: 0o600 });
  return path;
}

/** A 2 MiB image: text blocks that say CONTENT (stored uncompressed), random blocks, a hole. */
function makeImage(path: string): void {
  writeFileSync(path, "");
  truncateSync(path, 2 * MiB);
  writeAt(path, 0, Buffer.from(CONTENT.repeat(Math.ceil((3 * BLOCK) / CONTENT.length))).subarray(0, 3 * BLOCK));
  writeAt(path, 512 * 1024, randomBytes(2 * BLOCK, 1));
  writeAt(path, 2 * MiB - 5000, randomBytes(5000, 2));
}

/** Every file under `root`: its path and bytes. */
function filesUnder(root: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else files.set(relative(root, path), readFileSync(path));
    }
  };
  if (existsSync(root)) walk(root);
  return files;
}

/** Every object under `prefix` of an S3 bucket: its key and bytes. */
async function objectsUnder(client: Bun.S3Client, prefix: string): Promise<Map<string, Buffer>> {
  const objects = new Map<string, Buffer>();
  const listing = await client.list({ prefix: `${prefix}/`, maxKeys: 1000 });
  for (const { key } of listing.contents ?? []) objects.set(key, Buffer.from(await client.file(key).arrayBuffer()));
  return objects;
}

/** Where each needle shows up in the store's files (names or bytes), as text for a readable failure. */
function plaintextIn(root: string | Map<string, Buffer>, needles: readonly string[]): string[] {
  const found: string[] = [];
  for (const [path, bytes] of typeof root === "string" ? filesUnder(root) : root) {
    for (const needle of needles) {
      if (path.includes(needle)) found.push(`${needle} in the name ${path}`);
      if (bytes.includes(needle)) found.push(`${needle} in ${path}`);
    }
  }
  return found;
}

function output(...results: CliResult[]): string {
  return results.map((result) => result.stdout + result.stderr).join("\n");
}

/** A catalog here, a store at `store` (seen locally at `storeDir`), commands with the key file of `keyfile`. */
function env(dir: string, store: string, extraEnv: Record<string, string> = {}) {
  const db = join(dir, "images.db");
  return {
    db,
    image: (args: readonly string[], keyfile?: string) =>
      blaine(["image", ...args, "--db", db, "--store", store, ...(keyfile ? ["--keyfile", keyfile] : [])], { env: extraEnv }),
    imageNoDb: (args: readonly string[], keyfile: string) => blaine(["image", ...args, "--store", store, "--keyfile", keyfile], { env: extraEnv }),
  };
}

/**
 * The same walk through an encrypted store, on a directory, over ssh or on
 * S3 (`files` reads what the destination holds): nothing readable lands
 * there, and it all works with the key.
 */
async function roundTrip(dir: string, store: string, files: () => Promise<Map<string, Buffer>>, extraEnv: Record<string, string> = {}): Promise<void> {
  const key = keyFile(dir, "images.key", PASSWORD);
  const { db, image, imageNoDb } = env(dir, store, extraEnv);
  const source = join(dir, "vm.img");
  makeImage(source);
  const backup = await image(["backup", source, NAME, "--snapshot", SNAPSHOT, "--label", `tier=${LABEL}`, "--compress", "none", "--json", ...BS], key);
  expect(backup.exitCode).toBe(0);
  const uid = backup.json.uid as string;
  writeAt(source, 512 * 1024, randomBytes(BLOCK, 3));
  const second = await image(["backup", source, NAME, "--from", uid, "--compress", "none", "--json", ...BS], key);
  expect(second.exitCode).toBe(0);

  // The catalog keeps plain content hashes (only the store's names are keyed), and never the key.
  const catalog = new Database(db, { readonly: true });
  const hashes = (catalog.query("SELECT DISTINCT hash FROM image_blocks WHERE hash IS NOT NULL").all() as { hash: string }[]).map((row) => row.hash);
  catalog.close();
  expect(hashes).toContain(hashOf(Buffer.from(CONTENT.repeat(Math.ceil(BLOCK / CONTENT.length))).subarray(0, BLOCK)));
  expect(readFileSync(db).includes(PASSWORD)).toBe(false);

  // Nothing in plaintext on the destination: content, names, labels, uids, hashes, the key.
  const needles = [CONTENT.trim(), NAME, SNAPSHOT, LABEL, uid, second.json.uid, PASSWORD, ...hashes];
  const held = await files();
  expect(plaintextIn(held, needles)).toEqual([]);
  expect(held.size).toBeGreaterThan(hashes.length);

  const out = join(dir, "out.img");
  const restore = await image(["restore", second.json.uid, out], key);
  expect(restore.exitCode).toBe(0);
  expect(sameBytes(source, out)).toBe(true);
  // Without a catalog: the versions listed and restored from the store, decrypted.
  const ls = await imageNoDb(["ls", "--json"], key);
  expect(ls.exitCode).toBe(0);
  expect(ls.json.versions.map((v: { uid: string; name: string; snapshot: string }) => [v.uid, v.name]).sort()).toEqual([[uid, NAME], [second.json.uid, NAME]].sort());
  const dbless = join(dir, "dbless.img");
  expect((await imageNoDb(["restore", uid, dbless], key)).exitCode).toBe(0);
  const scrub = await image(["scrub", uid, second.json.uid, "--json"], key);
  expect(scrub.exitCode).toBe(0);
  expect(scrub.json.chunksChecked).toBe(hashes.length);

  // Without the key: refused, saying so.
  const keyless = await image(["ls"]);
  expect(keyless.exitCode).toBe(0); // the catalog lists without the store
  const keylessRestore = await image(["restore", uid, join(dir, "nokey.img")]);
  expect(keylessRestore.exitCode).toBe(2);
  expect(keylessRestore.stderr).toContain("is encrypted: give --keyfile");

  // A killed backup's chunks are found in the keyed listing and freed by cleanup --full.
  const crash = crashAt("image-chunk-stored:2");
  writeFileSync(join(dir, "other.img"), Buffer.from(randomBytes(4 * BLOCK, 5)));
  expectDiedAt(await blaine(["image", "backup", join(dir, "other.img"), "other", "--db", db, "--store", store, "--keyfile", key, ...BS], { env: { ...extraEnv, ...crash.env } }), crash, "image-chunk-stored:2");
  const full = await image(["cleanup", "--full", "--grace", "0", "--json"], key);
  expect(full.exitCode).toBe(0);
  expect(full.json.orphansFreed).toBeGreaterThanOrEqual(2);
  // rm + cleanup: the first version's own chunk goes; the rest still restores.
  expect((await image(["rm", uid, "--force"], key)).exitCode).toBe(0);
  const cleanup = await image(["cleanup", "--grace", "0", "--json"], key);
  expect(cleanup.json.chunksFreed).toBe(1);
  const after = join(dir, "after.img");
  expect((await image(["restore", second.json.uid, after], key)).exitCode).toBe(0);
  expect(sameBytes(source, after)).toBe(true);
  expect(output(backup, second, restore, ls, scrub, full, cleanup)).not.toContain(PASSWORD);
}

describe("encrypted store", () => {
  test("issue 16: an encrypted directory store holds nothing in plaintext (content, names, labels, hashes, key) and backs up, restores, scrubs and cleans up with the key", async () => {
    const dir = newDir();
    // The control: a plain store does hold the markers the encrypted one must not.
    const plainDir = join(dir, "plain");
    const plain = env(dir, plainDir);
    const source = join(dir, "plain.img");
    makeImage(source);
    expect((await plain.image(["backup", source, NAME, "--snapshot", SNAPSHOT, "--compress", "none", ...BS])).exitCode).toBe(0);
    expect(plaintextIn(plainDir, [CONTENT.trim(), NAME, SNAPSHOT]).length).toBeGreaterThanOrEqual(3);

    const other = newDir();
    await roundTrip(other, join(other, "store"), async () => filesUnder(join(other, "store")));
  });

  test("issue 16: a damaged encrypted chunk is found by scrub and listed by restore (exit 4), not taken for another", async () => {
    const dir = newDir();
    const key = keyFile(dir, "k", PASSWORD);
    const storeDir = join(dir, "store");
    const { image } = env(dir, storeDir);
    const source = join(dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(3 * BLOCK, 20)));
    const uid = (await image(["backup", source, "vm", "--json", ...BS], key)).json.uid as string;
    const chunkFiles = [...filesUnder(join(storeDir, "chunks")).keys()].sort();
    expect(chunkFiles).toHaveLength(3);
    const victim = join(storeDir, "chunks", chunkFiles[1]);
    const bytes = readFileSync(victim);
    bytes[bytes.length - 40] ^= 0x01;
    writeFileSync(victim, bytes);
    const scrub = await image(["scrub", uid, "--json"], key);
    expect(scrub.exitCode).toBe(4);
    expect(scrub.json.badChunks).toHaveLength(1);
    expect(scrub.json.badChunks[0].problem).toContain("does not decrypt");
    const restore = await image(["restore", uid, join(dir, "out.img"), "--json"], key);
    expect(restore.exitCode).toBe(4);
    expect(restore.json.damaged).toHaveLength(1);
    // An object swapped under another chunk's name does not open either.
    const [a, , c] = chunkFiles.map((name) => join(storeDir, "chunks", name));
    writeFileSync(a, readFileSync(c));
    expect((await image(["scrub", uid, "--json"], key)).json.badChunks).toHaveLength(2);
  });

  test("issue 16: a wrong key is a clear error and writes nothing; no key for an encrypted store, a key for a plain one, are refused", async () => {
    const dir = newDir();
    const key = keyFile(dir, "right.key", PASSWORD);
    const wrong = keyFile(dir, "wrong.key", "not-the-password");
    const storeDir = join(dir, "store");
    const { image } = env(dir, storeDir);
    const source = join(dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(2 * BLOCK, 30)));
    const uid = (await image(["backup", source, "vm", "--json", ...BS], key)).json.uid as string;
    const before = filesUnder(storeDir);
    const mtimes = [...before.keys()].map((path) => statSync(join(storeDir, path)).mtimeMs);

    writeFileSync(source, Buffer.from(randomBytes(2 * BLOCK, 31)));
    for (const args of [["backup", source, "vm", ...BS], ["restore", uid, join(dir, "out.img")], ["cleanup", "--full", "--grace", "0"], ["rm", uid, "--force"]]) {
      const refused = await image(args, wrong);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain(`wrong key for --store ${storeDir} (--keyfile ${wrong})`);
      expect(refused.stderr).not.toContain("not-the-password");
    }
    expect(filesUnder(storeDir)).toEqual(before);
    expect([...before.keys()].map((path) => statSync(join(storeDir, path)).mtimeMs)).toEqual(mtimes);
    expect(existsSync(join(dir, "out.img"))).toBe(false);
    expect((await image(["ls", "--json"])).json.versions.map((v: { uid: string }) => v.uid)).toEqual([uid]);

    const noKey = await image(["backup", source, "vm", ...BS]);
    expect(noKey.exitCode).toBe(2);
    expect(noKey.stderr).toContain(`--store ${storeDir} is encrypted: give --keyfile FILE`);
    expect(filesUnder(storeDir)).toEqual(before);

    // A plain store with versions cannot become encrypted in place.
    const plainDir = join(dir, "plain");
    expect((await blaine(["image", "backup", source, "vm", "--db", join(dir, "plain.db"), "--store", plainDir, ...BS])).exitCode).toBe(0);
    const onPlain = await blaine(["image", "backup", source, "vm", "--db", join(dir, "plain.db"), "--store", plainDir, "--keyfile", key, ...BS]);
    expect(onPlain.exitCode).toBe(2);
    expect(onPlain.stderr).toContain("cannot be encrypted in place");
    const missingKeyBackup = await blaine(["image", "backup", source, "vm", "--db", join(dir, "new.db"), "--store", join(dir, "new-store"), "--keyfile", join(dir, "no-such.key"), ...BS]);
    expect(missingKeyBackup.exitCode).toBe(2);
    expect(missingKeyBackup.stderr).toContain("--keyfile");
    expect(existsSync(join(dir, "new-store"))).toBe(false);
  });

  test("issue 16: encrypt-keyfile in blaine.toml's [image] table", async () => {
    const dir = newDir();
    keyFile(dir, "images.key", PASSWORD);
    writeFileSync(join(dir, "blaine.toml"), `[image]\ndb = "images.db"\nstore = "store"\nblock-size = "64K"\nencrypt-keyfile = "images.key"\n`);
    const source = join(dir, "vm.img");
    makeImage(source);
    const backup = await blaine(["image", "backup", source, NAME, "--json", "--compress", "none"], { cwd: dir });
    expect(backup.exitCode).toBe(0);
    expect(plaintextIn(join(dir, "store"), [CONTENT.trim(), NAME, backup.json.uid])).toEqual([]);
    const out = join(dir, "out.img");
    expect((await blaine(["image", "restore", backup.json.uid, out], { cwd: dir })).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
  });

  test.skipIf(Boolean(noSshd))("issue 16: an encrypted ssh store holds nothing in plaintext on the remote and works with the key", async () => {
    if (!sshd) throw new Error("sshd did not start");
    const dir = newDir();
    const remote = join(dir, "remote", "images");
    await roundTrip(dir, sshd.url(remote), async () => filesUnder(remote), { BLAINE_SSH_COMMAND: sshd.sshCommand });
  });

  test.skipIf(Boolean(noS3))("issue 16: an encrypted S3 store (s3rver) holds nothing in plaintext and works with the key", async () => {
    if (!s3) throw new Error("s3rver did not start");
    const server = s3;
    const dir = newDir();
    const prefix = `enc${Math.random().toString(36).slice(2, 10)}`;
    await roundTrip(dir, `s3://${server.bucket}/${prefix}`, () => objectsUnder(server.client, prefix), server.env);
  });
});
