import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blaine } from "./helpers/cli.ts";
import { MiB, randomBytes, textBytes, writeAt } from "./helpers/image-env.ts";
import { sshdMissing, startSshd, type TestSshd } from "./helpers/sshd.ts";
import { removeRoots, tempDir, volumeEnv } from "./helpers/volume-env.ts";

/**
 * Volume archives on an ssh destination (a real sshd on 127.0.0.1, one
 * connection per command) and encrypted destinations (issue 16): sessions
 * received byte for byte, nothing readable on the destination, a wrong key
 * refused with nothing written.
 */
const CHUNK = 64 * 1024;
const roots: string[] = [];
const missing = sshdMissing();
if (missing) console.warn(`volume tests on an ssh destination skipped: ${missing}`);
let sshd: TestSshd | undefined;
beforeAll(async () => {
  if (!missing) sshd = await startSshd();
}, 30_000);
afterAll(() => {
  sshd?.stop();
  removeRoots(roots);
});

/** A volume of recognisable text (its words would show in any plaintext copy) and some random data. */
function makeVolume(path: string): void {
  writeFileSync(path, Buffer.concat([textBytes(MiB, 4242), randomBytes(MiB, 1)]));
}

/** Every file under `dir`, read whole. */
function allFiles(dir: string): { path: string; bytes: Buffer }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile())
    .map((path) => ({ path, bytes: readFileSync(path) }));
}

async function sendAndReceiveAll(env: ReturnType<typeof volumeEnv>, vm: string, extra: Record<string, string> = {}): Promise<void> {
  const expected = new Map<string, Buffer>();
  for (let round = 0; round < 3; round++) {
    if (round > 0) writeAt(vm, round * 5 * CHUNK, randomBytes(CHUNK, 90 + round));
    await env.sendRecorded(expected, vm, { ...extra, BLAINE_NOW: `2026-09-0${1 + round}T00:00:00Z` });
  }
  const names = [...expected.keys()];
  await env.ok(["prune", "--session", names[1]!], extra);
  expected.delete(names[1]!);
  for (const [session, bytes] of expected) {
    const target = join(env.dir, `received-${session}`);
    await env.ok(["receive", "vm-payroll", "--session", session, "--save-to", target], extra);
    expect(Buffer.compare(readFileSync(target), bytes)).toBe(0);
  }
  expect((await env.ok(["verify", "vm-payroll"], extra)).badChunks).toEqual([]);
}

describe.skipIf(Boolean(missing))("an ssh destination", () => {
  test("issue 16: sessions sent to ssh://user@127.0.0.1:PORT/path (BLAINE_SSH_COMMAND), one ssh connection per command, received byte for byte after a prune", async () => {
    const server = sshd as TestSshd;
    const dir = tempDir("blaine-volume-ssh-", roots);
    const source = join(dir, "vms");
    mkdirSync(source);
    const vm = join(source, "vm-payroll");
    makeVolume(vm);
    const remote = join(dir, "remote");
    mkdirSync(remote);
    const ssh = { BLAINE_SSH_COMMAND: server.sshCommand };
    const env = volumeEnv({ dir, source, db: join(dir, "volumes.db"), dest: server.url(remote), env: ssh });
    await env.ok(["arch-init", "--source", source, "--dest", env.dest, "--subdir", "archive", "--chunk-factor", "0"]);
    expect(existsSync(join(remote, "archive", "store.json"))).toBe(true);
    await env.ok(["add", "vm-payroll"]);
    const before = server.logins();
    await env.ok(["send"], { BLAINE_NOW: "2026-08-31T00:00:00Z" });
    expect(server.logins() - before).toBe(1);
    await sendAndReceiveAll(env, vm);
    const beforeDedup = server.logins();
    await env.ok(["arch-deduplicate"]);
    expect(server.logins() - beforeDedup).toBe(1);
    // The remote's archive gone (its disk not mounted there): exit 3, nothing made on the remote.
    renameSync(join(remote, "archive"), join(remote, "away"));
    const refused = await env.volume(["send"]);
    expect(refused.exitCode).toBe(3);
    expect(refused.stderr).toContain("holds no volume archive");
    expect(readdirSync(remote)).toEqual(["away"]);
  });
});

describe("an encrypted destination", () => {
  test("issue 16: arch-init --encrypt --keyfile: nothing readable on the destination (no volume content, no volume name), sessions received byte for byte, the key in no catalog", async () => {
    const dir = tempDir("blaine-volume-enc-", roots);
    const source = join(dir, "vms");
    mkdirSync(source);
    const vm = join(source, "vm-payroll");
    makeVolume(vm);
    const keyfile = join(dir, "volume.key");
    writeFileSync(keyfile, "correct horse battery staple volume key\n", { mode: 0o600 });
    mkdirSync(join(dir, "dest"));
    const env = volumeEnv({ dir, source, db: join(dir, "volumes.db"), dest: `internal:${join(dir, "dest")}` });
    // No compression: a plaintext chunk would hold the volume's text as it is.
    const init = await env.ok(["arch-init", "--source", source, "--dest", env.dest, "--compression", "none", "--chunk-factor", "0", "--encrypt", "--keyfile", keyfile]);
    expect(init.encrypted).toBe(true);
    await env.ok(["add", "vm-payroll"]);
    await sendAndReceiveAll(env, vm);
    const files = allFiles(join(dir, "dest"));
    expect(files.length).toBeGreaterThan(10);
    const text = Buffer.from("text-like block that compresses");
    for (const file of files) {
      expect({ path: file.path, content: file.bytes.includes(text) }).toEqual({ path: file.path, content: false });
      expect({ path: file.path, name: file.bytes.includes(Buffer.from("vm-payroll")) || file.path.includes("vm-payroll") }).toEqual({ path: file.path, name: false });
      expect(file.path.includes("volume-archive")).toBe(false);
    }
    // The catalog knows where the key file is, never the key.
    const catalog = Buffer.concat([readFileSync(join(dir, "volumes.db")), ...(existsSync(join(dir, "volumes.db-wal")) ? [readFileSync(join(dir, "volumes.db-wal"))] : [])]);
    expect(catalog.includes(Buffer.from("battery staple"))).toBe(false);
  });

  test("issue 16: a wrong key is a clear error and writes nothing to the destination", async () => {
    const dir = tempDir("blaine-volume-wrongkey-", roots);
    const source = join(dir, "vms");
    mkdirSync(source);
    const vm = join(source, "vm-payroll");
    makeVolume(vm);
    const keyfile = join(dir, "volume.key");
    writeFileSync(keyfile, "the right key\n", { mode: 0o600 });
    const wrong = join(dir, "wrong.key");
    writeFileSync(wrong, "a wrong key\n", { mode: 0o600 });
    mkdirSync(join(dir, "dest"));
    const env = volumeEnv({ dir, source, db: join(dir, "volumes.db"), dest: `internal:${join(dir, "dest")}` });
    await env.ok(["arch-init", "--source", source, "--dest", env.dest, "--chunk-factor", "0", "--encrypt", "--keyfile", keyfile]);
    await env.ok(["add", "vm-payroll"]);
    await env.ok(["send"]);
    const listing = () => allFiles(join(dir, "dest")).map((file) => `${file.path} ${file.bytes.length}`).sort();
    const before = listing();
    writeAt(vm, 0, randomBytes(CHUNK, 5));
    for (const verb of [["send"], ["prune", "--all-before", "--session", "20990101-000000"], ["verify", "vm-payroll"], ["receive", "vm-payroll", "--save-to", join(dir, "out")]]) {
      const refused = await env.volume([...verb, "--keyfile", wrong]);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain(`wrong key for destination ${env.dest}`);
      expect(refused.stderr).not.toContain("a wrong key");
    }
    expect(listing()).toEqual(before);
    expect(existsSync(join(dir, "out"))).toBe(false);
    // --encrypt without a key file is refused before anything is made.
    const noKey = await blaine(["volume", "arch-init", "--source", source, "--dest", `internal:${dir}`, "--encrypt", "--db", join(dir, "other.db")]);
    expect(noKey.exitCode).toBe(2);
    expect(noKey.stderr).toContain("--keyfile");
  });
});

test("TestS3CredentialsInUrl: an s3:// --dest with credentials is refused (exit 2) without showing them, and nothing is made", async () => {
  const dir = mkdtempSync("/tmp/blaine-volume-s3-url-");
  try {
    const source = join(dir, "images");
    mkdirSync(source);
    for (const url of ["s3://KEY:TOPSECRETX@images/pre", "s3://KEY:TOP/SECRETX+9@images/pre"]) {
      const result = await blaine(["volume", "arch-init", "--source", source, "--dest", url, "--db", join(dir, "v.db"), "--json"]);
      expect(result.exitCode).toBe(2);
      expect(result.stdout + result.stderr).not.toContain("SECRETX");
      expect(result.stderr).toContain("--dest s3://…@images/pre: no credentials in the URL; put them in [volume] of blaine.toml (s3-access-key-id, s3-secret-access-key)");
    }
    expect(readdirSync(dir)).toEqual(["images"]);
    expect(readdirSync(source)).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("issue 16: an ssh:// --dest with a password is refused without showing it; an IPv6 host is an ssh:// URL like any other", async () => {
  const dir = mkdtempSync("/tmp/blaine-volume-url-");
  try {
    const db = join(dir, "v.db");
    const password = await blaine(["volume", "arch-init", "--source", dir, "--dest", "ssh://root:secret-4711@127.0.0.1/srv/x", "--db", db]);
    expect(password.exitCode).toBe(2);
    expect(password.stderr).toContain("no password in the URL");
    expect(password.stderr).not.toContain("secret-4711");
    // Port 1 refuses the connection: the URL itself was taken.
    const ipv6 = await blaine(["volume", "arch-init", "--source", dir, "--dest", "ssh://root@[::1]:1/srv/x", "--db", db], { env: { BLAINE_SSH_COMMAND: "ssh -o BatchMode=yes -o ConnectTimeout=5" } });
    expect(ipv6.stderr).not.toContain("not ssh://user@host[:port]/path");
    expect(ipv6.stderr).toContain("ssh://root@[::1]:1/srv/x");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
