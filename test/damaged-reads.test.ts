import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { close, closeSync, constants, fstat, fstatSync, mkdirSync, open as openAsync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { copyWithHash } from "../lib/index.ts";
import { errnoCode } from "../lib/errors.ts";
import { archiveEnv } from "./helpers/archive-env.ts";
import { blaine } from "./helpers/cli.ts";
import { makeTree, seededBytes, snapshotTree, tempDir, type TreeSpec } from "./helpers/fixture.ts";
import { cipherMissing } from "./helpers/mounts.ts";

// securefs stretches its key on every mount (seconds each), and this test mounts six times.
setDefaultTimeout(240_000);

const CIPHERS = ["gocryptfs", "securefs"] as const;
type Cipher = (typeof CIPHERS)[number];
for (const cipher of CIPHERS) {
  const reason = cipherMissing(cipher);
  if (reason) console.log(`skipped: damaged reads on ${cipher} disks: ${reason}`);
}

let dir: ReturnType<typeof tempDir> | undefined;
afterEach(() => dir?.cleanup());

const FILM_BYTES = 300_000;
const TREE: TreeSpec = { "film one.mkv": { bytes: FILM_BYTES, seed: 11 }, "notes.txt": "intact notes\n" };

/** A source tree, a catalog, a key file and one encrypted disk "E" with parity on (the default), archived once. */
async function archivedOnEncryptedDisk(cipher: Cipher, ...runArgs: string[]) {
  dir = tempDir();
  const root = dir.path;
  const source = join(root, "src");
  const disk = join(root, "disk");
  const db = join(root, "catalog.db");
  const keyfile = join(root, "key");
  writeFileSync(keyfile, `pw-${crypto.randomUUID()}\n`, { mode: 0o600 });
  makeTree(source, TREE);
  const init = await blaine(["disk", "init", disk, "--label", "E", "--db", db, "--encrypt", cipher, "--keyfile", keyfile]);
  if (init.exitCode !== 0) throw new Error(`disk init failed: ${init.stderr}`);
  const base = ["--db", db, "--dest", disk, "--keyfile", keyfile];
  const run = await blaine(["run", ...base, ...runArgs, source]);
  if (run.exitCode !== 0) throw new Error(`run failed: ${run.stderr}`);
  return { root, source, disk, cli: (...args: string[]) => blaine([...args, ...base]) };
}

/** Every file below `dir`. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/** The largest file below `dir`: on these disks, the film's ciphertext (its parity is a tenth of it). */
function largestFile(dir: string): string {
  let best = { path: "", size: -1 };
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && statSync(full).size > best.size) best = { path: full, size: statSync(full).size };
    }
  };
  walk(dir);
  return best.path;
}

/** Bit rot: inverts `count` bytes at `offset` of a file, in place. */
function flipBytes(path: string, offset: number, count: number): void {
  const fd = openSync(path, "r+");
  try {
    const bytes = Buffer.alloc(count);
    readSync(fd, bytes, 0, count, offset);
    for (let i = 0; i < count; i++) bytes[i] ^= 0xff;
    writeSync(fd, bytes, 0, count, offset);
  } finally {
    closeSync(fd);
  }
}

describe.each(CIPHERS)("bit rot in the ciphertext of a %s disk", (cipher) => {
  test.skipIf(cipherMissing(cipher) !== undefined)(
    "issue 11.1: the unreadable block counts as damaged slices: verify names the file and the range, restore and verify --repair rebuild it from parity",
    async () => {
      const env = await archivedOnEncryptedDisk(cipher);
      const film = join(env.source, "film one.mkv");
      const ciphertext = largestFile(join(env.disk, "encrypted"));
      expect(statSync(ciphertext).size).toBeGreaterThan(FILM_BYTES);
      // The middle of the ciphertext is in the film's 37th 4 KiB block with both ciphers (a header, then blocks and their tags).
      flipBytes(ciphertext, Math.floor(statSync(ciphertext).size / 2), 4);

      const verify = await env.cli("verify", "--json");
      expect(verify.exitCode).toBe(4);
      expect(verify.json.disks[0].corrupt).toEqual([{ path: film, message: expect.stringContaining("cannot read bytes 147456–151551") }]);

      // restore mounts the disk read-only: the copy is rebuilt from parity, the disk is left for verify --repair.
      const to = join(env.root, "restored");
      const restore = await env.cli("restore", env.source, "--to", to, "--json");
      expect(restore.json.errors).toEqual([]);
      expect(restore.json.damaged).toEqual([]);
      expect(restore.exitCode).toBe(0);
      expect(restore.json.restored).toBe(2);
      expect(snapshotTree(join(to, env.source), { mtimes: true })).toEqual(snapshotTree(env.source, { mtimes: true }));

      const repair = await env.cli("verify", "--repair", "--json");
      expect(repair.json.parity.unrepaired).toEqual([]);
      expect(repair.json.parity.repaired).toEqual([film]);
      expect(repair.exitCode).toBe(0);
      const again = await env.cli("verify", "--json");
      expect(again.exitCode).toBe(0);
      expect(again.json.disks[0].corrupt).toEqual([]);
      expect(again.json.disks[0].unexpected).toEqual([]);
    },
  );
});

describe.skipIf(cipherMissing("gocryptfs") !== undefined)("bit rot in the ciphertext of both a file and its parity", () => {
  test("issue 11.1: the vol file's readable recovery slices still repair the file, and the set is made again", async () => {
    const env = await archivedOnEncryptedDisk("gocryptfs");
    const film = join(env.source, "film one.mkv");
    // gocryptfs passes inode numbers through: the vol file's ciphertext has its plaintext inode.
    // The film's own vol file, by its content hash: notes.txt has a set too, and the order in
    // which a gocryptfs directory lists them follows the random encrypted names.
    const filmSet = `sha1-${new Bun.CryptoHasher("sha1").update(readFileSync(film)).digest("hex")}.vol`;
    const plain = join(env.root, "plain");
    mkdirSync(plain);
    expect(Bun.spawnSync(["gocryptfs", "-ro", "-q", "-passfile", join(env.root, "key"), join(env.disk, "encrypted"), plain]).exitCode).toBe(0);
    let volInode: number;
    try {
      const vols = readdirSync(join(plain, ".blaine", "parity"), { recursive: true, withFileTypes: true }).filter((entry) => entry.name.startsWith(filmSet));
      expect(vols.length).toBe(1);
      volInode = statSync(join(vols[0].parentPath, vols[0].name)).ino;
    } finally {
      Bun.spawnSync(["fusermount", "-u", plain]);
    }
    const volCiphertext = filesBelow(join(env.disk, "encrypted")).find((path) => statSync(path).ino === volInode)!;
    const dataCiphertext = largestFile(join(env.disk, "encrypted"));
    flipBytes(dataCiphertext, Math.floor(statSync(dataCiphertext).size / 2), 4);
    flipBytes(volCiphertext, Math.floor(statSync(volCiphertext).size / 2), 4);

    const repair = await env.cli("verify", "--repair", "--json");
    expect(repair.json.parity.unrepaired).toEqual([]);
    expect(repair.json.parity.repaired).toEqual([film]);
    expect(repair.json.parity.rebuiltSets).toEqual([film]);
    expect(repair.exitCode).toBe(0);
    expect((await env.cli("verify")).exitCode).toBe(0);
  });
});

describe.skipIf(cipherMissing("gocryptfs") !== undefined)("bit rot in the ciphertext of content without parity", () => {
  test("issue 11.1: restore keeps what it could read as NAME.blaine-damaged and names the unreadable range (exit 4)", async () => {
    const env = await archivedOnEncryptedDisk("gocryptfs", "--parity", "off");
    const ciphertext = largestFile(join(env.disk, "encrypted"));
    flipBytes(ciphertext, Math.floor(statSync(ciphertext).size / 2), 4);
    const to = join(env.root, "restored");
    const restore = await env.cli("restore", env.source, "--to", to, "--json");
    expect(restore.exitCode).toBe(4);
    const kept = join(to, env.source, "film one.mkv.blaine-damaged");
    expect(restore.json.damaged).toEqual([
      { path: join(env.source, "film one.mkv"), message: `bytes 147456–151551 could not be read on the disk (zeros in their place); the bytes read are kept as ${kept}` },
    ]);
    const expected = seededBytes(FILM_BYTES, 11);
    expected.fill(0, 147456, 151552);
    expect(Buffer.from(readFileSync(kept)).equals(Buffer.from(expected))).toBe(true);
    expect(restore.json.restored).toBe(1);
  });
});

describe.skipIf(cipherMissing("gocryptfs") !== undefined)("a read refused in the middle of a large copy", () => {
  test("issue 11.1: the copy waits for the write of what it read before closing its target (nothing lands in the next file opened, no EBADF)", async () => {
    dir = tempDir();
    const cipherDir = join(dir.path, "cipher");
    const plain = join(dir.path, "plain");
    const keyfile = join(dir.path, "key");
    for (const path of [cipherDir, plain]) mkdirSync(path);
    writeFileSync(keyfile, "pw-large-copy\n", { mode: 0o600 });
    expect(Bun.spawnSync(["gocryptfs", "-init", "-q", "-passfile", keyfile, cipherDir]).exitCode).toBe(0);
    expect(Bun.spawnSync(["gocryptfs", "-q", "-passfile", keyfile, cipherDir, plain]).exitCode).toBe(0);
    writeFileSync(join(plain, "film.mkv"), seededBytes(FILM_BYTES, 11));
    Bun.spawnSync(["fusermount", "-u", plain]);
    const ciphertext = largestFile(cipherDir);
    flipBytes(ciphertext, Math.floor(statSync(ciphertext).size / 2), 4);
    expect(Bun.spawnSync(["gocryptfs", "-ro", "-q", "-passfile", keyfile, cipherDir, plain]).exitCode).toBe(0);

    // The copy reads the film's first 147456 bytes (up to the refused block), hands their write to
    // the I/O threads and reads on: refused. Whether that write has run when the copy gives up is a
    // race, so it is made certain: every I/O thread first waits in open() on a FIFO nobody writes.
    const fifos = Array.from({ length: 64 }, (_, i) => join(dir!.path, `fifo-${i}`));
    for (const fifo of fifos) expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    const stalls = fifos.map((fifo) => new Promise<void>((done) => openAsync(fifo, "r", (error, fd) => (error ? done() : close(fd, () => done())))));
    const strays: unknown[] = [];
    const onStray = (error: unknown) => strays.push(error);
    process.on("unhandledRejection", onStray);
    const releases: number[] = [];
    const nextFiles: number[] = [];
    try {
      const copy = copyWithHash({ source: join(plain, "film.mkv"), target: join(dir.path, "copy"), algorithm: "sha1", mode: 0o644, mtimeMs: 0 });
      const outcome = copy.then(
        () => "copied",
        (error) => errnoCode(error),
      );
      // A turn of the event loop (no I/O thread needed): a copy that gave up has closed its target.
      await new Promise((done) => setImmediate(done));
      // Files opened now take the lowest free descriptors, the copy's among them if it closed it.
      for (let i = 0; i < 16; i++) nextFiles.push(openSync(join(dir.path, `next-${i}`), "w"));
      // O_RDWR opens of a FIFO never wait: each releases the open() stalled on it.
      for (const fifo of fifos) releases.push(openSync(fifo, constants.O_RDWR));
      await Promise.all(stalls);
      expect(await outcome).toBe("EIO");
      // Round trips through every I/O thread: a write queued before them has run.
      await Promise.all(nextFiles.map((fd) => new Promise((done) => fstat(fd, done))));
      expect(nextFiles.map((fd) => fstatSync(fd).size)).toEqual(nextFiles.map(() => 0));
      expect(strays).toEqual([]);
    } finally {
      process.off("unhandledRejection", onStray);
      for (const fd of [...nextFiles, ...releases]) closeSync(fd);
      Bun.spawnSync(["fusermount", "-u", plain]);
    }
  });
});

describe("damaged parity index files", () => {
  test.each([["its start", 0], ["its middle", 0.5], ["its end", 1]] as const)(
    "issue 12.12: 200 bytes overwritten at %s of a .par2 index file are damaged parity; verify --repair makes the set again",
    async (_where, fraction) => {
      const env = await archiveEnv({ "film.mkv": { bytes: 300_000, seed: 3 } });
      dir = { path: env.root, cleanup: env.cleanup };
      expect((await env.run()).exitCode).toBe(0);
      const index = parityIndexFiles(join(env.disk, ".blaine", "parity"));
      expect(index.length).toBe(1);
      const size = statSync(index[0]).size;
      const before = readFileSync(index[0]);
      const fd = openSync(index[0], "r+");
      writeSync(fd, seededBytes(200, 99), 0, 200, Math.min(size - 200, Math.floor(size * fraction)));
      closeSync(fd);

      const verify = await env.verify();
      expect(verify.json.parity.damagedSets).toEqual([{ path: join(env.source, "film.mkv"), message: "its parity is missing or damaged" }]);
      expect(verify.exitCode).toBe(4);
      const repair = await env.cli("verify", "--repair", "--json");
      expect(repair.json.parity.rebuiltSets).toEqual([join(env.source, "film.mkv")]);
      expect(repair.exitCode).toBe(0);
      expect(readFileSync(index[0]).equals(before)).toBe(true);
      expect((await env.verify()).exitCode).toBe(0);
    },
  );
});

/** The index files (`SET.par2`, not the vol files) below a disk's parity store. */
function parityIndexFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(".par2") && !entry.name.includes(".vol")) found.push(join(entry.parentPath, entry.name));
  }
  return found;
}

/** The lines of the first ```sh block after `marker` in the README, as the reader would type them. */
function readmeBlock(marker: string): string[] {
  const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README has no "${marker}"`);
  const start = readme.indexOf("```sh\n", at) + "```sh\n".length;
  return readme.slice(start, readme.indexOf("\n```", start)).split("\n");
}

/** Runs shell lines with bash, with `variables` set; returns its exit code and output. */
function sh(lines: readonly string[], variables: Record<string, string> = {}) {
  const result = Bun.spawnSync(["bash", "-c", lines.join("\n")], { env: { ...process.env, ...variables }, stdout: "pipe", stderr: "pipe" });
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

const RECIPE = "#### Verifying and repairing one archived file with stock par2cmdline";
const EIO_RECIPE = "**`Input/output error`**";
const ENCRYPTED_RECIPE = "### Reading an encrypted disk without Blaine";
const recipeToolsMissing = ["par2", "sqlite3", "dd", "truncate"].find((tool) => !Bun.which(tool));
if (recipeToolsMissing) console.log(`skipped: the README's stock-tools recipes: ${recipeToolsMissing} is not installed`);

describe.skipIf(recipeToolsMissing !== undefined)("the README's stock-tools recipes", () => {
  const NAME = "it's a film.mkv";

  test("issue 11 README: the par2cmdline recipe repairs a file whose name has an apostrophe and a space", async () => {
    const env = await archiveEnv({ movies: { [NAME]: { bytes: 300_000, seed: 21 } } });
    dir = { path: env.root, cleanup: env.cleanup };
    expect((await env.run()).exitCode).toBe(0);
    const onDisk = env.onDisk(`movies/${NAME}`);
    flipBytes(onDisk, 100_000, 500);

    const lines = readmeBlock(RECIPE).filter((line) => !line.startsWith("root="));
    // par2 verify exits 1 when it finds damage it can repair: every line runs, the outcome is checked.
    const recipe = sh(lines, { root: env.disk, path: join(env.source, "movies", NAME) });
    expect(recipe.stderr).toBe("");
    expect(recipe.exitCode).toBe(0);
    expect(recipe.stdout).toContain("Repair complete");
    const sha1 = new Bun.CryptoHasher("sha1").update(readFileSync(join(env.source, "movies", NAME))).digest("hex");
    expect(recipe.stdout).toContain(`${sha1}  ${onDisk}`);
    expect(readFileSync(onDisk).equals(readFileSync(join(env.source, "movies", NAME)))).toBe(true);
    const verify = await env.verify();
    expect(verify.json.disks[0].unexpected).toEqual([]);
    expect(verify.exitCode).toBe(0);
  });

  test.skipIf(cipherMissing("gocryptfs") !== undefined)(
    "issue 11 README: on a gocryptfs disk read without Blaine, a block refused with EIO is repaired by the recipe on a read-write mount",
    async () => {
      const env = await archivedOnEncryptedDisk("gocryptfs");
      const plain = join(env.root, "plain");
      const keyfile = join(env.root, "key");
      const film = join(env.source, "film one.mkv");
      const local = (line: string) => line.replaceAll("/mnt/offsite1", env.disk).replaceAll("/root/blaine.key", keyfile).replaceAll("/mnt/plain", plain);
      const ciphertext = largestFile(join(env.disk, "encrypted"));
      flipBytes(ciphertext, Math.floor(statSync(ciphertext).size / 2), 4);
      try {
        // Reading: mount read-only, list what the disk holds, unmount.
        const reading = readmeBlock(ENCRYPTED_RECIPE).filter((line) => !/^(securefs|cp) /.test(line)).map(local);
        const read = sh(["set -e", ...reading]);
        expect(read.exitCode).toBe(0);
        expect(read.stdout).toContain(`${film}|sha1:`);

        // Repairing: the read-write mount the README gives, then the EIO recipe.
        const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
        const mountReadWrite = "gocryptfs -passfile /root/blaine.key /mnt/offsite1/encrypted /mnt/plain";
        expect(readme).toContain(`(\`${mountReadWrite}\`)`);
        expect(sh([local(mountReadWrite)]).exitCode).toBe(0);
        const setup = readmeBlock(RECIPE).filter((line) => !line.startsWith("root="));
        const lookup = setup.slice(0, setup.findIndex((line) => line.startsWith("par2 verify")));
        const unreadable = sh([...lookup, 'sha1sum "$file"'], { root: plain, path: film });
        expect(unreadable.stderr).toContain("Input/output error");
        const repair = sh(["set -e", ...lookup, ...readmeBlock(EIO_RECIPE)], { root: plain, path: film });
        expect(repair.exitCode).toBe(0);
        expect(repair.stdout).toContain("Repair complete");
      } finally {
        Bun.spawnSync(["fusermount", "-u", plain]);
      }
      const verify = await env.cli("verify", "--json");
      expect(verify.json.disks[0].corrupt).toEqual([]);
      expect(verify.json.disks[0].unexpected).toEqual([]);
      expect(verify.exitCode).toBe(0);
    },
  );
});
