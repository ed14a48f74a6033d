import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blaine } from "./helpers/cli.ts";
import { MiB, hashOf, randomBytes, sameBytes, textBytes, writeAt } from "./helpers/image-env.ts";
import { sshdMissing, startSshd, type TestSshd } from "./helpers/sshd.ts";

/**
 * The ssh chunk store (issue 16, "Destinations") against a real sshd on
 * 127.0.0.1 started by the test: its own host key and authorized_keys in a
 * temp dir, the client's key through BLAINE_SSH_COMMAND. The remote
 * directory is on this machine, so the test looks at it directly.
 */
const BS = ["--block-size", "64K"];
const BLOCK = 64 * 1024;

const missing = sshdMissing();
if (missing) console.warn(`ssh store tests skipped: ${missing}`);
let sshd: TestSshd | undefined;
const roots: string[] = [];

beforeAll(async () => {
  if (!missing) sshd = await startSshd();
}, 30_000);
afterAll(async () => {
  await sshd?.stop();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function server(): TestSshd {
  if (!sshd) throw new Error("sshd did not start");
  return sshd;
}

/** A catalog here, a store in a remote directory (REMOTE, seen locally at `remote`). */
function sshEnv() {
  const dir = mkdtempSync("/tmp/blaine-ssh-store-");
  roots.push(dir);
  const remote = join(dir, "remote", "images");
  const store = server().url(remote);
  const env = { BLAINE_SSH_COMMAND: server().sshCommand };
  const db = join(dir, "images.db");
  return {
    dir,
    remote,
    store,
    image: (args: readonly string[], extraEnv: Record<string, string> = {}) => blaine(["image", ...args, "--db", db, "--store", store], { env: { ...env, ...extraEnv } }),
    imageNoDb: (args: readonly string[]) => blaine(["image", ...args, "--store", store], { env }),
    chunkFile: (hash: string) => join(remote, "chunks", hash.slice(0, 2), hash),
    chunks: () =>
      existsSync(join(remote, "chunks"))
        ? readdirSync(join(remote, "chunks")).flatMap((sub) => readdirSync(join(remote, "chunks", sub)).filter((name) => /^[0-9a-f]{64}$/.test(name))).sort()
        : [],
  };
}

/** A sparse 4 MiB image: random data, text, a hole, and one random block twice. */
function makeImage(path: string): void {
  writeFileSync(path, "");
  truncateSync(path, 4 * MiB);
  writeAt(path, 0, randomBytes(3 * BLOCK, 1));
  writeAt(path, 1 * MiB, textBytes(4 * BLOCK, 2));
  writeAt(path, 2 * MiB, randomBytes(BLOCK, 3));
  writeAt(path, 3 * MiB, randomBytes(BLOCK, 3));
  writeAt(path, 4 * MiB - 1000, randomBytes(1000, 4));
}

describe.skipIf(Boolean(missing))("ssh store", () => {
  test("issue 16: an ssh:// store backs up, restores byte for byte, scrubs, cleans up and restores db-less, each command over one ssh connection", async () => {
    const env = sshEnv();
    const source = join(env.dir, "vm.img");
    makeImage(source);
    let logins = server().logins();
    /** Runs a command and checks it opened exactly one connection. */
    const once = async <T>(run: Promise<T>): Promise<T> => {
      const result = await run;
      expect(server().logins() - logins).toBe(1);
      logins = server().logins();
      return result;
    };

    const first = await once(env.image(["backup", source, "vm", "--json", ...BS]));
    expect(first.exitCode).toBe(0);
    expect(first.json.status).toBe("valid");
    // The remote directory has the directory store's layout.
    expect(JSON.parse(readFileSync(join(env.remote, "store.json"), "utf8"))).toEqual({ format: "blaine-image-store", version: 1 });
    expect(readdirSync(join(env.remote, "versions"))).toEqual([`${first.json.uid}.json`]);
    // 3 random + 1 text + 1 random (twice) + the end.
    expect(env.chunks()).toHaveLength(6);
    expect(readdirSync(env.remote).filter((name) => name.endsWith(".tmp"))).toEqual([]);

    writeAt(source, 0, randomBytes(2 * BLOCK, 5));
    const second = await once(env.image(["backup", source, "vm", "--from", first.json.uid, "--json", ...BS]));
    expect(second.exitCode).toBe(0);
    expect(env.chunks()).toHaveLength(8);

    const out = join(env.dir, "out.img");
    expect((await once(env.image(["restore", second.json.uid, out]))).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);

    const ls = await once(env.imageNoDb(["ls", "--json"]));
    expect(ls.json.versions.map((v: { uid: string }) => v.uid).sort()).toEqual([first.json.uid, second.json.uid].sort());
    const dbless = join(env.dir, "dbless.img");
    expect((await once(env.imageNoDb(["restore", second.json.uid, dbless, "--sparse"]))).exitCode).toBe(0);
    expect(sameBytes(source, dbless)).toBe(true);

    const scrub = await once(env.image(["scrub", first.json.uid, second.json.uid, "--json"]));
    expect(scrub.exitCode).toBe(0);
    expect(scrub.json.chunksChecked).toBe(8);
    const shared = env.chunkFile(hashOf(randomBytes(BLOCK, 3)));
    const original = readFileSync(shared);
    const rotten = Buffer.from(original);
    rotten[rotten.length - 3] ^= 0x10;
    writeFileSync(shared, rotten);
    const bad = await once(env.image(["scrub", second.json.uid, "--json"]));
    expect(bad.exitCode).toBe(4);
    expect(bad.json.invalidVersions.sort()).toEqual([first.json.uid, second.json.uid].sort());
    writeFileSync(shared, original);
    expect((await once(env.image(["scrub", first.json.uid, second.json.uid]))).exitCode).toBe(0);

    // A killed writer's temp (its remote shell gone) and an orphan chunk go with cleanup --full.
    const orphan = randomBytes(100, 77);
    const orphanHash = hashOf(orphan);
    const stale = join(env.remote, "chunks", orphanHash.slice(0, 2), `.${orphanHash}.999999.1.abc.tmp`);
    rmSync(join(env.remote, "chunks", orphanHash.slice(0, 2)), { recursive: true, force: true });
    mkdirSync(join(env.remote, "chunks", orphanHash.slice(0, 2)));
    writeFileSync(stale, "half a chunk");
    writeFileSync(env.chunkFile(orphanHash), orphan);
    const full = await once(env.image(["cleanup", "--full", "--grace", "0", "--json"]));
    expect(full.exitCode).toBe(0);
    expect(full.json).toMatchObject({ orphansFreed: 1, tempsRemoved: 1 });
    expect(existsSync(stale)).toBe(false);
    expect(env.chunks()).toHaveLength(8);

    expect((await once(env.image(["rm", first.json.uid, "--force"]))).exitCode).toBe(0);
    expect(readdirSync(join(env.remote, "versions"))).toEqual([`${second.json.uid}.json`]);
    const cleanup = await once(env.image(["cleanup", "--grace", "0", "--json"]));
    expect(cleanup.exitCode).toBe(0);
    // The two blocks the second backup rewrote were the first's alone.
    expect(cleanup.json.chunksFreed).toBe(2);
    expect(env.chunks()).toHaveLength(6);
    const after = join(env.dir, "after.img");
    expect((await once(env.image(["restore", second.json.uid, after]))).exitCode).toBe(0);
    expect(sameBytes(source, after)).toBe(true);
  });

  test("issue 16: the store can be named in blaine.toml's [image] table", async () => {
    const env = sshEnv();
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(2 * BLOCK, 9)));
    writeFileSync(join(env.dir, "blaine.toml"), `[image]\ndb = "images.db"\nstore = "${env.store}"\nblock-size = "64K"\n`);
    const backup = await blaine(["image", "backup", source, "vm", "--json"], { cwd: env.dir, env: { BLAINE_SSH_COMMAND: server().sshCommand } });
    expect(backup.exitCode).toBe(0);
    expect(env.chunks()).toHaveLength(2);
    const out = join(env.dir, "out.img");
    expect((await blaine(["image", "restore", backup.json.uid, out], { cwd: env.dir, env: { BLAINE_SSH_COMMAND: server().sshCommand } })).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
  });

  test("issue 16: a refused key, a closed port or a missing remote directory is a clear error naming the destination (exit 1 or 2)", async () => {
    const env = sshEnv();
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(BLOCK, 11)));
    const noKey = `ssh -o BatchMode=yes -o IdentitiesOnly=yes -i ${join(env.dir, "no-such-key")} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
    const refused = await env.image(["backup", source, "vm", ...BS], { BLAINE_SSH_COMMAND: noKey });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`ssh destination ${env.store}: cannot connect or log in`);
    expect(refused.stderr).toContain("Permission denied");
    expect(existsSync(env.remote)).toBe(false);

    const closedPort = env.store.replace(`:${server().port}/`, ":1/");
    const closed = await blaine(["image", "ls", "--store", closedPort], { env: { BLAINE_SSH_COMMAND: server().sshCommand } });
    expect(closed.exitCode).toBe(1);
    expect(closed.stderr).toContain(`ssh destination ${closedPort}`);
    expect(closed.stderr).toContain("Connection refused");

    const absent = await env.imageNoDb(["ls"]);
    expect(absent.exitCode).toBe(2);
    expect(absent.stderr).toContain(`--store ${env.store}: no directory ${env.remote}`);

    const password = await blaine(["image", "ls", "--store", `ssh://root:secret-4711@127.0.0.1/x`]);
    expect(password.exitCode).toBe(2);
    expect(password.stderr).toContain("no password in the URL");
    expect(password.stderr).not.toContain("secret-4711");
  });

  test("issue 16: a remote path with spaces, quotes, $(…), ; and a newline is one directory on the remote, never run by its shell", async () => {
    const dir = mkdtempSync("/tmp/blaine-ssh-store-");
    roots.push(dir);
    const odd = `it's a "dir" $(touch ${dir}/pwned1); \`touch ${dir}/pwned2\` & x\nline`;
    const remote = join(dir, odd);
    const store = server().url(encodeURI(remote).replaceAll("#", "%23"));
    const env = { BLAINE_SSH_COMMAND: server().sshCommand };
    const source = join(dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(2 * BLOCK, 13)));
    const db = join(dir, "images.db");
    const backup = await blaine(["image", "backup", source, "vm", ...BS, "--db", db, "--store", store, "--json"], { env });
    expect(backup.exitCode).toBe(0);
    expect(existsSync(join(remote, "store.json"))).toBe(true);
    const out = join(dir, "out.img");
    expect((await blaine(["image", "restore", backup.json.uid, out, "--db", db, "--store", store], { env })).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
    expect(readdirSync(dir).filter((name) => name.startsWith("pwned"))).toEqual([]);
  });

  test("issue 16: a remote whose head -c reads ahead of its count (busybox's, BSD's) is refused with a clear error, never a hung or garbled stream", async () => {
    const env = sshEnv();
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(2 * BLOCK, 14)));
    // A head that reads its input through a buffer (as stdio does), so it takes more than it prints.
    const fake = join(env.dir, "fake-bin");
    mkdirSync(fake);
    writeFileSync(join(fake, "head"), `#!/usr/bin/perl\nbinmode STDIN; binmode STDOUT; my $n = $ARGV[1]; read(STDIN, my $b, $n); print $b;\n`);
    chmodSync(join(fake, "head"), 0o755);
    // The remote command runs with the fake head first on its PATH.
    const wrapper = join(env.dir, "ssh-fake-head");
    writeFileSync(wrapper, `#!/bin/bash\nargs=("$@")\nlast=\${args[-1]}\nunset "args[-1]"\nexec ${server().sshCommand} "\${args[@]}" "PATH=${fake}:\\$PATH $last"\n`);
    chmodSync(wrapper, 0o755);
    const backup = await env.image(["backup", source, "vm", ...BS], { BLAINE_SSH_COMMAND: wrapper });
    expect(backup.exitCode).toBe(1);
    expect(backup.stderr).toContain(`ssh destination ${env.store}`);
    expect(backup.stderr).toContain("head -c");
  }, 60_000);

  test("issue 16.3: an object replaced between get's size and its data (a longer store.json here) never desyncs the stream: the get is read again", async () => {
    const env = sshEnv();
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(2 * BLOCK, 15)));
    expect((await env.image(["backup", source, "vm", ...BS])).exitCode).toBe(0);
    // The same store.json with trailing spaces: valid, and longer than the size wc -c just said.
    const marker = join(env.remote, "store.json");
    writeFileSync(join(env.dir, "store.json.new"), `${readFileSync(marker, "utf8").trimEnd()}${" ".repeat(300)}\n`);
    // A wc on the remote that, the first time it runs, replaces store.json by rename right after counting it.
    const fake = join(env.dir, "fake-bin");
    mkdirSync(fake);
    writeFileSync(join(fake, "wc"), `#!/bin/sh\n/usr/bin/wc "$@"\nif mkdir ${env.dir}/replaced 2>/dev/null; then mv ${env.dir}/store.json.new ${marker}; fi\n`);
    chmodSync(join(fake, "wc"), 0o755);
    const wrapper = join(env.dir, "ssh-fake-wc");
    writeFileSync(wrapper, `#!/bin/bash\nargs=("$@")\nlast=\${args[-1]}\nunset "args[-1]"\nexec ${server().sshCommand} "\${args[@]}" "PATH=${fake}:\\$PATH $last"\n`);
    chmodSync(wrapper, 0o755);
    writeAt(source, 0, randomBytes(BLOCK, 16));
    const backup = await env.image(["backup", source, "vm", ...BS, "--json"], { BLAINE_SSH_COMMAND: wrapper });
    expect(backup.stderr).not.toContain("blaine:");
    expect(backup.exitCode).toBe(0);
    expect(existsSync(join(env.dir, "replaced"))).toBe(true);
    const out = join(env.dir, "out.img");
    expect((await env.image(["restore", backup.json.uid, out])).exitCode).toBe(0);
    expect(sameBytes(source, out)).toBe(true);
  }, 60_000);

  test("issue 16: a connection cut in the middle of a chunk never leaves a truncated chunk under its name", async () => {
    const env = sshEnv();
    const source = join(env.dir, "vm.img");
    writeFileSync(source, Buffer.from(randomBytes(4 * BLOCK, 12)));
    // The remote gets the first 100 000 bytes the command sends, then the end of its input: the second chunk's put is cut in its middle.
    const cutter = join(env.dir, "cut-ssh");
    // dd a byte at a time passes each byte on at once (head -c would wait to fill its buffer).
    writeFileSync(cutter, `#!/bin/sh\ndd bs=1 count=100000 2>/dev/null | ${server().sshCommand} "$@"\n`);
    chmodSync(cutter, 0o755);
    const cut = await env.image(["backup", source, "vm", ...BS], { BLAINE_SSH_COMMAND: cutter });
    expect(cut.exitCode).not.toBe(0);
    expect(cut.stderr).toContain(`ssh destination ${env.store}`);
    // Whatever is under a chunk's name is the whole chunk: its content hashes to its name.
    const { decodeChunk } = await import("../lib/image/store/chunk-format.ts");
    expect(env.chunks().length).toBeGreaterThanOrEqual(1);
    for (const hash of env.chunks()) expect(hashOf(await decodeChunk(readFileSync(env.chunkFile(hash))))).toBe(hash);
  });
});

test("issue 16: an ssh:// URL whose path is not valid percent-encoding is a usage error naming the option, not a crash", async () => {
  const bad = await blaine(["image", "ls", "--store", "ssh://127.0.0.1/backups/100%"]);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toContain("--store ssh://127.0.0.1/backups/100%: ");
  expect(bad.stderr).toContain("%25");
  const dir = mkdtempSync("/tmp/blaine-ssh-url-");
  roots.push(dir);
  const init = await blaine(["volume", "arch-init", "--source", dir, "--dest", "ssh://127.0.0.1/a%zz", "--db", join(dir, "v.db")]);
  expect(init.exitCode).toBe(2);
  expect(init.stderr).toContain("--dest ssh://127.0.0.1/a%zz: ");
});
