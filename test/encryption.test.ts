import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blaine, spawnBlaine, waitFor } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { filesOf, makeTree, snapshotTree, tempDir, type TreeSpec } from "./helpers/fixture.ts";
import { cipherMissing } from "./helpers/mounts.ts";
import { Terminal } from "./helpers/terminal.ts";

setDefaultTimeout(120_000);

const CIPHERS = ["gocryptfs", "securefs"] as const;
type Cipher = (typeof CIPHERS)[number];

for (const cipher of CIPHERS) {
  const reason = cipherMissing(cipher);
  if (reason) console.log(`skipped: encryption tests with ${cipher}: ${reason}`);
}

/** Names and contents that must never appear on the raw disk. */
const SECRET_NAME = "holiday-footage-zanzibar";
const SECRET_TEXT = "the quick brown fox sails to Zanzibar";
const TREE: TreeSpec = {
  [`${SECRET_NAME}.mkv`]: SECRET_TEXT.repeat(50),
  music: { "secret-album-title.flac": { bytes: 300_000, seed: 7 }, "same.flac": { hardlinkTo: `${SECRET_NAME}.mkv` } },
  "link-to-film": { symlink: `${SECRET_NAME}.mkv` },
};

let dir: ReturnType<typeof tempDir> | undefined;
let terminal: Terminal | undefined;
afterEach(() => {
  terminal?.close();
  terminal = undefined;
  dir?.cleanup();
});

/** A source tree, a catalog, a key file and one encrypted disk, with CLI shortcuts. */
async function encryptedEnv(cipher: Cipher, spec: TreeSpec = TREE) {
  dir = tempDir();
  const root = dir.path;
  const source = join(root, "src");
  const disk = join(root, "disk");
  const db = join(root, "catalog.db");
  const keyfile = join(root, "key");
  const password = `pw-${crypto.randomUUID()}`;
  writeFileSync(keyfile, `${password}\n`, { mode: 0o600 });
  makeTree(source, spec);
  const init = await blaine(["disk", "init", disk, "--label", "E", "--db", db, "--encrypt", cipher, "--keyfile", keyfile]);
  if (init.exitCode !== 0) throw new Error(`disk init failed: ${init.stderr}`);
  const base = ["--db", db, "--dest", disk];
  const label = JSON.parse(readFileSync(join(disk, ".blaine/disk.json"), "utf8"));
  return {
    root,
    source,
    disk,
    db,
    keyfile,
    password,
    label,
    cli: (...args: string[]) => blaine([...args, ...base]),
    run: (...args: string[]) => blaine(["run", ...base, "--json", ...args, source]),
  };
}

/** Mounts of this disk copy that the kernel still has (Blaine names them blaine:<copyId>). */
function mountsOf(copyId: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => line.includes(` blaine:${copyId} `))
    .map((line) => line.split(" ")[4]);
}

/** Every process' argv and environment, to look for a password in them. */
function allProcessArgvAndEnv(): string {
  let text = "";
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    for (const file of ["cmdline", "environ"]) {
      try {
        text += readFileSync(`/proc/${pid}/${file}`, "latin1");
      } catch {
        // Gone, or not ours to read.
      }
    }
  }
  return text;
}

/** Every name and every byte on the raw disk, to look for plaintext in them. */
function rawDiskContents(disk: string): { names: string; bytes: string } {
  let names = "";
  let bytes = "";
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      names += `${entry.name}\n`;
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) bytes += readFileSync(full, "latin1");
    }
  };
  walk(disk);
  return { names, bytes };
}

describe.each(CIPHERS)("encrypted disk with %s", (cipher) => {
  const skip = cipherMissing(cipher) !== undefined;

  test.skipIf(skip)("archive, then the raw disk holds no plaintext name or content, no mount is left, and restore through the key gives back the same bytes", async () => {
    const env = await encryptedEnv(cipher);
    const run = await env.run("--keyfile", env.keyfile);
    expect(run.exitCode).toBe(0);
    expect(run.json.new).toBe(4);
    expect(mountsOf(env.label.copyId)).toEqual([]);

    const raw = rawDiskContents(env.disk);
    expect(readdirSync(env.disk).sort()).toEqual([".blaine", "encrypted"]);
    expect(readdirSync(join(env.disk, ".blaine"))).toEqual(["disk.json"]);
    expect(Object.keys(env.label).sort()).toEqual(["archiveId", "cipher", "copyId", "created", "diskId", "format", "label"]);
    for (const plaintext of [SECRET_NAME, "secret-album-title", "music", "src", "catalog"]) expect(raw.names).not.toContain(plaintext);
    expect(raw.bytes).not.toContain(SECRET_TEXT);
    expect(raw.bytes).not.toContain(SECRET_NAME);
    expect(raw.bytes).not.toContain(env.password);

    const verify = await env.cli("verify", "--json", "--keyfile", env.keyfile);
    expect(verify.exitCode).toBe(0);
    const to = join(env.root, "restored");
    const restore = await env.cli("restore", env.source, "--to", to, "--json", "--keyfile", env.keyfile);
    expect(restore.exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, env.source)))).toEqual(filesOf(snapshotTree(env.source)));
    expect(mountsOf(env.label.copyId)).toEqual([]);
  });

  test.skipIf(skip)("BLAINE_PASSWORD works like a key file; a wrong key says so (exit 2) and changes nothing", async () => {
    const env = await encryptedEnv(cipher);
    expect((await env.run("--keyfile", env.keyfile)).exitCode).toBe(0);
    const before = snapshotTree(env.root);
    const catalogBefore = readFileSync(env.db);

    const wrongKey = join(env.root, "wrong-key");
    writeFileSync(wrongKey, "not the password\n");
    const wrong = await env.run("--keyfile", wrongKey);
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain("wrong key for disk E");
    expect(wrong.stderr).not.toContain("not the password");
    expect(wrong.stderr).toContain(`warning: key file ${wrongKey} can be read by other users (chmod 600 ${wrongKey})`);
    if (cipher === "gocryptfs") {
      // Where the key comes from is the same code for both ciphers (and securefs' key stretching is slow).
      const wrongEnv = await blaine(["verify", "--db", env.db, "--dest", env.disk], { env: { BLAINE_PASSWORD: "also wrong" } });
      expect(wrongEnv.exitCode).toBe(2);
      expect(wrongEnv.stderr).toContain("wrong key for disk E");
    }
    const noKey = await env.cli("verify");
    expect(noKey.exitCode).toBe(2);
    expect(noKey.stderr).toContain("disk \"E\" is encrypted: give --keyfile FILE or set BLAINE_PASSWORD");
    delete (before as Record<string, unknown>)["wrong-key"];
    const after = snapshotTree(env.root);
    delete (after as Record<string, unknown>)["wrong-key"];
    expect(after).toEqual(before);
    expect(readFileSync(env.db).equals(catalogBefore)).toBe(true);
    expect(mountsOf(env.label.copyId)).toEqual([]);

    const right = await blaine(["verify", "--db", env.db, "--dest", env.disk], { env: { BLAINE_PASSWORD: env.password } });
    expect(right.exitCode).toBe(0);
  });

  test.skipIf(skip)("a run killed with the disk mounted leaves a stale mount (no password in any argv or environment); the next command cleans it up", async () => {
    const env = await encryptedEnv(cipher);
    await blaineKilledAt("after-intents:1", ["run", "--db", env.db, "--dest", env.disk, "--keyfile", env.keyfile, env.source]);
    const stale = mountsOf(env.label.copyId);
    expect(stale.length).toBe(1);
    // The FUSE daemon outlived the kill: while it is up, no process shows the password.
    expect(allProcessArgvAndEnv()).not.toContain(env.password);

    const run = await env.run("--keyfile", env.keyfile);
    expect(run.exitCode).toBe(0);
    expect(existsSync(stale[0])).toBe(false);
    expect(mountsOf(env.label.copyId)).toEqual([]);
    const to = join(env.root, "restored");
    expect((await env.cli("restore", env.source, "--to", to, "--keyfile", env.keyfile)).exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, env.source)))).toEqual(filesOf(snapshotTree(env.source)));
  });

  test.skipIf(skip)("blaine mount/unmount let a person browse read-only; a run is refused meanwhile; a dry run leaves no mount", async () => {
    const env = await encryptedEnv(cipher);
    expect((await env.run("--keyfile", env.keyfile)).exitCode).toBe(0);
    const browse = join(env.root, "browse");
    const mount = await blaine(["mount", "E", browse, "--db", env.db, "--keyfile", env.keyfile, "--json"]);
    expect(mount.exitCode).toBe(0);
    expect(mount.json).toEqual({ label: "E", dir: env.disk, mountpoint: browse, cipher, readonly: true });
    expect(readFileSync(join(browse, env.source, `${SECRET_NAME}.mkv`), "utf8")).toBe(SECRET_TEXT.repeat(50));
    const mountLine = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((line) => line.split(" ")[4] === browse)!;
    expect(mountLine.split(" ")[5].split(",")).toContain("ro");
    expect(allProcessArgvAndEnv()).not.toContain(env.password);

    // While a person browses it, a run is refused rather than mounting the disk twice.
    const busy = await env.run("--keyfile", env.keyfile);
    expect(busy.exitCode).toBe(2);
    expect(busy.stderr).toContain(`already mounted at ${browse} by blaine mount`);

    const unmount = await blaine(["unmount", browse]);
    expect(unmount.exitCode).toBe(0);
    expect(readdirSync(browse)).toEqual([]);
    expect((await blaine(["unmount", browse])).exitCode).toBe(2);

    const dry = await env.run("--dry-run", "--keyfile", env.keyfile);
    expect(dry.exitCode).toBe(0);
    expect(mountsOf(env.label.copyId)).toEqual([]);
  });
});

// Code paths that do not depend on the cipher: each runs once, with the cipher named in it.
describe("encrypted disk, prompts and signals", () => {
  // The prompt is the same code for both ciphers; a wrong securefs password costs seconds of key stretching.
  test.skipIf(cipherMissing("gocryptfs") !== undefined || !Bun.which("tmux"))("on a terminal with no key given, the password is asked with a hidden prompt; a wrong one is asked again", async () => {
    const env = await encryptedEnv("gocryptfs");
    expect((await env.run("--keyfile", env.keyfile)).exitCode).toBe(0);
    terminal = new Terminal(env.root, ["verify", "--db", env.db, "--dest", env.disk]);
    await terminal.answer('Password for disk "E"', "a wrong guess", "Enter");
    await waitFor(() => (terminal!.screen().match(/Password for disk "E"/g) ?? []).length >= 2, 60_000, "the second prompt");
    terminal.type(env.password, "Enter");
    await terminal.waitForText("all intact");
    expect(await terminal.exitCode()).toBe(0);
    expect(terminal.screen()).not.toContain(env.password);
    expect(terminal.screen()).not.toContain("a wrong guess");
    expect(mountsOf(env.label.copyId)).toEqual([]);
  });

  // The signal handling is the same code for both ciphers: one of them is enough (securefs mounts are slow).
  test.skipIf(cipherMissing("gocryptfs") !== undefined)("SIGTERM during a run: the run stops, saves its catalogs and unmounts", async () => {
    const env = await encryptedEnv("gocryptfs", { big: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}.bin`, { bytes: 1_000_000, seed: i + 1 }])) });
    const child = spawnBlaine(["run", "--db", env.db, "--dest", env.disk, "--keyfile", env.keyfile, env.source]);
    await waitFor(() => mountsOf(env.label.copyId).length > 0, 30_000, "the disk to be mounted");
    child.kill("SIGTERM");
    const code = await child.exited;
    const output = (await new Response(child.stdout).text()) + (await new Response(child.stderr).text());
    expect({ code, interrupted: output.includes("Interrupted") }).toEqual({ code: 1, interrupted: true });
    expect(mountsOf(env.label.copyId)).toEqual([]);
    // What was stored is kept; the next run finishes.
    const run = await env.run("--keyfile", env.keyfile);
    expect(run.exitCode).toBe(0);
    expect(run.json.new + run.json.unchanged).toBe(40);
  });

  // A terminal's Ctrl-C goes to the whole foreground process group; the FUSE daemons are started in a
  // session of their own so that only blaine gets it (securefs -b would otherwise stay in blaine's group).
  test.skipIf(cipherMissing("securefs") !== undefined || !Bun.which("tmux"))("Ctrl-C at the terminal during a run: the run stops, saves its catalogs and unmounts", async () => {
    const env = await encryptedEnv("securefs", { big: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}.bin`, { bytes: 1_000_000, seed: i + 1 }])) });
    terminal = new Terminal(env.root, ["run", "--db", env.db, "--dest", env.disk, "--keyfile", env.keyfile, env.source]);
    await waitFor(() => mountsOf(env.label.copyId).length > 0, 30_000, "the disk to be mounted");
    terminal.type("", "C-c");
    expect(await terminal.exitCode()).toBe(1);
    expect(terminal.screen()).toContain("Interrupted");
    expect(mountsOf(env.label.copyId)).toEqual([]);
    const run = await env.run("--keyfile", env.keyfile);
    expect(run.exitCode).toBe(0);
    expect(run.json.new + run.json.unchanged).toBe(40);
  });
});

describe.skipIf(cipherMissing("gocryptfs") !== undefined || !Bun.which("tmux"))("disk init --encrypt on a terminal without a key", () => {
  test("the password is typed twice (hidden); Ctrl-C at the prompt leaves nothing written", async () => {
    dir = tempDir();
    const db = join(dir.path, "catalog.db");
    terminal = new Terminal(dir.path, ["disk", "init", join(dir.path, "disk"), "--label", "T", "--db", db, "--encrypt", "gocryptfs"]);
    await terminal.answer('Password for the new disk "T"', "", "C-c");
    expect(await terminal.exitCode()).toBe(2);
    expect(readdirSync(dir.path).filter((name) => name !== ".exit-code")).toEqual([]);
    terminal.close();

    terminal = new Terminal(dir.path, ["disk", "init", join(dir.path, "disk"), "--label", "T", "--db", db, "--encrypt", "gocryptfs"]);
    await terminal.answer('Password for the new disk "T"', "typed secret", "Enter");
    await terminal.answer("The same password again", "typed secret", "Enter");
    await terminal.waitForText('archive disk "T"');
    expect(await terminal.exitCode()).toBe(0);
    expect(terminal.screen()).not.toContain("typed secret");
    const verify = await blaine(["verify", "--db", db, "--dest", join(dir.path, "disk")], { env: { BLAINE_PASSWORD: "typed secret" } });
    expect(verify.exitCode).toBe(0);
  });
});

describe("two encrypted disks with different keys and ciphers", () => {
  const skip = CIPHERS.some((cipher) => cipherMissing(cipher) !== undefined);

  test.skipIf(skip)("a run spans onto the second disk; each opens with its own key; restore needs both", async () => {
    dir = tempDir();
    const root = dir.path;
    const source = join(root, "src");
    makeTree(source, Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`f${i}.bin`, { bytes: 400_000, seed: i + 1 }])));
    const db = join(root, "catalog.db");
    const keys = [join(root, "key-a"), join(root, "key-b")];
    writeFileSync(keys[0], "first disk's password\n");
    writeFileSync(keys[1], "second disk's password\n");
    const disks = [join(root, "disk-a"), join(root, "disk-b")];
    expect((await blaine(["disk", "init", disks[0], "--label", "A", "--db", db, "--encrypt", "gocryptfs", "--keyfile", keys[0], "--capacity", "1M"])).exitCode).toBe(0);
    expect((await blaine(["disk", "init", disks[1], "--label", "B", "--db", db, "--encrypt", "securefs", "--keyfile", keys[1]])).exitCode).toBe(0);
    const withBoth = ["--db", db, "--dest", disks[0], "--dest", disks[1], "--keyfile", keys[0], "--keyfile", keys[1]];
    const run = await blaine(["run", ...withBoth, "--json", source]);
    expect(run.exitCode).toBe(0);
    expect(run.json.new).toBe(6);
    const ls = await blaine(["ls", "--db", db, "--json"]);
    expect(new Set(ls.json.files.map((row: any) => row.disk))).toEqual(new Set(["A", "B"]));

    const onlyA = await blaine(["restore", source, "--to", join(root, "r1"), "--db", db, "--dest", disks[0], "--keyfile", keys[0], "--json"]);
    expect(onlyA.exitCode).toBe(3);
    const to = join(root, "r2");
    const both = await blaine(["restore", source, "--to", to, ...withBoth]);
    expect(both.exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, source)))).toEqual(filesOf(snapshotTree(source)));
  });

  test.skipIf(skip)("a twin with its own key: cloned from the encrypted original, catches up on deferred actions when mounted", async () => {
    dir = tempDir();
    const root = dir.path;
    const source = join(root, "src");
    makeTree(source, { "a.mkv": "first film", sub: { "b.flac": { bytes: 200_000, seed: 3 } } });
    const db = join(root, "catalog.db");
    const [keyA, keyTwin] = [join(root, "key-a"), join(root, "key-twin")];
    writeFileSync(keyA, "original's password\n");
    writeFileSync(keyTwin, "twin's password\n");
    const [diskA, twin] = [join(root, "disk-a"), join(root, "twin")];
    expect((await blaine(["disk", "init", diskA, "--label", "A", "--db", db, "--encrypt", "gocryptfs", "--keyfile", keyA])).exitCode).toBe(0);
    expect((await blaine(["run", "--db", db, "--dest", diskA, "--keyfile", keyA, source])).exitCode).toBe(0);

    // The new copy takes the last --keyfile; the first opens the original it is filled from.
    const clone = await blaine(["disk", "clone", "A", twin, "--db", db, "--dest", diskA, "--encrypt", "gocryptfs", "--keyfile", keyA, "--keyfile", keyTwin]);
    expect(clone.exitCode).toBe(0);
    expect(JSON.parse(readFileSync(join(twin, ".blaine/disk.json"), "utf8")).cipher).toBe("gocryptfs");
    expect(rawDiskContents(twin).bytes).not.toContain("first film");
    const wrong = await blaine(["verify", "--db", db, "--dest", twin, "--keyfile", keyA]);
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain("wrong key for disk A");

    // A rename while the twin is on the shelf is deferred for it, and applied when it is mounted.
    renameSync(join(source, "a.mkv"), join(source, "renamed.mkv"));
    const run = await blaine(["run", "--db", db, "--dest", diskA, "--keyfile", keyA, "--json", source]);
    expect(run.exitCode).toBe(0);
    expect(run.json.renamed).toBe(1);
    const verifyTwin = await blaine(["verify", "--db", db, "--dest", twin, "--keyfile", keyTwin, "--json"]);
    expect(verifyTwin.exitCode).toBe(0);
    const to = join(root, "restored");
    expect((await blaine(["restore", source, "--to", to, "--db", db, "--dest", twin, "--keyfile", keyTwin])).exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, source)))).toEqual(filesOf(snapshotTree(source)));
  });
});

describe("catalog rebuild from encrypted disks", () => {
  const skip = cipherMissing("gocryptfs") !== undefined;

  test.skipIf(skip)("issue 11.5: catalog rebuild unlocks encrypted disks with the given keys and says which key opened which disk; init and clone say which key encrypted the disk", async () => {
    dir = tempDir();
    const root = dir.path;
    const source = join(root, "src");
    makeTree(source, { "a film.mkv": { bytes: 200_000, seed: 5 }, "it's here.txt": "apostrophe\n" });
    const db = join(root, "catalog.db");
    const [keyA, keyB, keyTwin] = [join(root, "key-a"), join(root, "key-b"), join(root, "key-twin")];
    for (const [file, password] of [[keyA, "password of A"], [keyB, "password of B"], [keyTwin, "password of the twin"]]) writeFileSync(file, `${password}\n`, { mode: 0o600 });
    const [diskA, diskB, twin] = [join(root, "disk-a"), join(root, "disk-b"), join(root, "twin")];

    const initA = await blaine(["disk", "init", diskA, "--label", "A", "--db", db, "--encrypt", "gocryptfs", "--keyfile", keyA, "--json"]);
    expect(initA.exitCode).toBe(0);
    expect(initA.json.key).toBe(`--keyfile ${keyA}`);
    const initB = await blaine(["disk", "init", diskB, "--label", "B", "--db", db, "--encrypt", "gocryptfs", "--keyfile", keyB]);
    expect(initB.exitCode).toBe(0);
    expect(initB.stdout).toContain(`encrypted with gocryptfs, key from --keyfile ${keyB}`);
    expect(initB.stdout + initB.stderr).not.toContain("password of B");
    const both = ["--dest", diskA, "--dest", diskB, "--keyfile", keyA, "--keyfile", keyB];
    expect((await blaine(["run", "--db", db, ...both, source])).exitCode).toBe(0);
    const clone = await blaine(["disk", "clone", "A", twin, "--db", db, "--dest", diskA, "--encrypt", "gocryptfs", "--keyfile", keyA, "--keyfile", keyTwin]);
    expect(clone.exitCode).toBe(0);
    expect(clone.stdout).toContain(`encrypted with gocryptfs, key from --keyfile ${keyTwin}`);

    // The host is lost: the catalog comes back from the copies inside the encrypted disks.
    const rebuiltDb = join(root, "rebuilt.db");
    const rebuild = await blaine(["catalog", "rebuild", diskA, diskB, "--db", rebuiltDb, "--keyfile", keyB, "--keyfile", keyA, "--json"]);
    expect(rebuild.stderr).not.toContain("skipped");
    expect(rebuild.exitCode).toBe(0);
    expect(rebuild.json.files).toBe(2);
    expect(rebuild.json.considered.map((disk: { label: string; key: string }) => [disk.label, disk.key])).toEqual([
      ["A", `--keyfile ${keyA}`],
      ["B", `--keyfile ${keyB}`],
    ]);
    expect(rebuild.stderr).toContain(`disk "A" (${diskA}) opened with --keyfile ${keyA}`);
    expect(rebuild.stderr).toContain(`disk "B" (${diskB}) opened with --keyfile ${keyB}`);
    expect(rebuild.stdout + rebuild.stderr).not.toContain("password of");
    const to = join(root, "restored");
    const restore = await blaine(["restore", source, "--to", to, "--db", rebuiltDb, "--dest", diskA, "--keyfile", keyA]);
    expect(restore.exitCode).toBe(0);
    expect(filesOf(snapshotTree(join(to, source)))).toEqual(filesOf(snapshotTree(source)));

    // A disk no given key opens is skipped with the reason; the others still rebuild.
    const onlyA = await blaine(["catalog", "rebuild", diskA, diskB, "--db", join(root, "from-a.db"), "--keyfile", keyA, "--json"]);
    expect(onlyA.exitCode).toBe(0);
    expect(onlyA.stderr).toContain(`${diskB}: wrong key for disk B (tried --keyfile ${keyA}); skipped`);
    expect(onlyA.json.considered.map((disk: { label: string }) => disk.label)).toEqual(["A"]);
    const noKey = await blaine(["catalog", "rebuild", diskA, "--db", join(root, "no-key.db")]);
    expect(noKey.exitCode).toBe(2);
    expect(noKey.stderr).toContain('disk "A" is encrypted: give --keyfile FILE or set BLAINE_PASSWORD');
  });
});
