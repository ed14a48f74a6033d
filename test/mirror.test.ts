import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cifsMountOptions, credentialsText } from "../lib/system/cifs.ts";
import { kernelHasFileSystem, mountArguments } from "../lib/system/block-mount.ts";
import { hasDeviceMapper } from "../lib/system/cryptsetup.ts";
import { blaine, spawnBlaine, waitFor } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { canMount, cipherMissing } from "./helpers/mounts.ts";
import { snapshotTree } from "./helpers/fixture.ts";

setDefaultTimeout(120_000);

/** Why the mirror chain cannot run here, or undefined. */
function chainMissing(): string | undefined {
  if (!canMount()) return "not root, or mounts are not allowed";
  for (const program of ["losetup", "blkid", "mkfs.ext4", "mkfs.btrfs", "btrfs", "rsync"]) if (!Bun.which(program)) return `${program} is not installed`;
  if (!kernelHasFileSystem("btrfs")) return "the kernel has no btrfs";
  return cipherMissing("gocryptfs");
}

const missing = chainMissing();
if (missing) console.log(`skipping the mirror chain tests: ${missing}`);
const luksMissing = missing ?? (Bun.which("cryptsetup") ? undefined : "cryptsetup is not installed");
if (!missing && luksMissing) console.log(`skipping the LUKS tests: ${luksMissing}`);

function run(args: string[]): void {
  const result = Bun.spawnSync(args);
  if (result.exitCode !== 0) throw new Error(`${args.join(" ")}: ${result.stderr}`);
}

/** A "NAS": a loop device holding ext4, found by UUID (no udev here). */
class Remote {
  readonly dir = mkdtempSync(join(tmpdir(), "blaine-mirror-"));
  readonly image = join(this.dir, "remote.img");
  readonly runDir = join(this.dir, "run");
  loop = "";
  uuid = "";

  setUp(): void {
    run(["truncate", "-s", "600M", this.image]);
    run(["mkfs.ext4", "-q", "-F", this.image]);
    this.loop = new TextDecoder().decode(Bun.spawnSync(["losetup", "--find", "--show", this.image]).stdout).trim();
    this.uuid = new TextDecoder().decode(Bun.spawnSync(["blkid", "-s", "UUID", "-o", "value", this.image]).stdout).trim();
    mkdirSync(join(this.dir, "keys"), { mode: 0o700 });
  }

  tearDown(): void {
    // Loops found before the lazy unmounts: after them a backing file's path no longer starts with the temp dir.
    const loops = loopsOf(this.dir);
    for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n").reverse()) {
      const mountpoint = line.split(" ")[4];
      if (mountpoint?.startsWith(this.dir)) Bun.spawnSync(["umount", "-l", mountpoint]);
    }
    for (const device of loops) if (device !== this.loop) Bun.spawnSync(["losetup", "-d", device]);
    if (this.loop) Bun.spawnSync(["losetup", "-d", this.loop]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  config(name: string, change: (json: any) => void = () => {}): string {
    const json: any = {
      remote: { type: "block", device: `UUID=${this.uuid}` },
      store: { name: `${name}.btrfs`, size: "256M", keyfile: `keys/${name}.key`, encryption: "gocryptfs" },
      strategy: { stages: 3, rotate: 24 },
      local: { directories: [{ key: "docs", directory: `src-${name}/docs` }] },
    };
    change(json);
    const file = join(this.dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(json, null, 2));
    mkdirSync(join(this.dir, `src-${name}`, "docs"), { recursive: true });
    return file;
  }

  env(now?: string): Record<string, string> {
    return { BLAINE_RUN_DIR: this.runDir, ...(now ? { BLAINE_NOW: now } : {}) };
  }

  /** The remote's files, looked at with the stock tools (mounted read-only for the look). */
  withRemote<T>(look: (dir: string) => T): T {
    const mountpoint = join(this.dir, "look");
    mkdirSync(mountpoint, { recursive: true });
    run(["mount", "-o", "ro", this.loop, mountpoint]);
    try {
      return look(mountpoint);
    } finally {
      run(["umount", mountpoint]);
    }
  }
}

/** Loop devices whose backing file lies under `dir`. */
function loopsOf(dir: string): string[] {
  return readdirSync("/sys/block")
    .filter((name) => name.startsWith("loop"))
    .filter((name) => {
      try {
        return readFileSync(`/sys/block/${name}/loop/backing_file`, "utf8").startsWith(dir);
      } catch {
        return false;
      }
    })
    .map((name) => `/dev/${name}`);
}

/** What a mirror run may have left: mounts under the run directory, loop devices of the remote's files, mounts of the remote. */
function leftovers(remote: Remote): string[] {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => line.includes(remote.runDir) || line.includes("blaine-mirror:") || line.includes(` ${remote.loop} `))
    .map((line) => line.split(" ")[4]);
  const loops = loopsOf(remote.dir).filter((device) => device !== remote.loop);
  const records = existsSync(join(remote.runDir, "mirror")) ? readdirSync(join(remote.runDir, "mirror")) : [];
  return [...mounts, ...loops, ...records];
}

describe.skipIf(Boolean(missing))("blaine mirror: the gocryptfs chain on a block remote (loop device with ext4, found by UUID)", () => {
  const remote = new Remote();
  beforeAll(() => remote.setUp());
  afterAll(() => remote.tearDown());

  test("init-key, init-store, backups with rotation, list, mount, restore of a deleted file; nothing left mounted; the key never in argv or environment", async () => {
    const config = remote.config("main");
    const src = join(remote.dir, "src-main", "docs");
    const keyfile = join(remote.dir, "keys", "main.key");
    const mirror = (args: string[], now?: string) => blaine(["mirror", ...args, "-c", config], { env: remote.env(now) });

    // init-key: 0600, refuses to replace.
    expect((await mirror(["init-key"])).exitCode).toBe(0);
    expect(statSync(keyfile).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyfile, "utf8").trim();
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const again = await mirror(["--init-key"]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain("already exists");
    expect(readFileSync(keyfile, "utf8").trim()).toBe(key);

    // init-store (mnemosyne's flag spelling), then refused when the store exists.
    const init = await mirror(["--init-store"]);
    expect(init.stderr).toBe("");
    expect(init.exitCode).toBe(0);
    expect(leftovers(remote)).toEqual([]);
    expect((await mirror(["init-store"])).exitCode).toBe(2);
    remote.withRemote((dir) => {
      expect(readdirSync(dir).filter((name) => name.startsWith("main"))).toEqual(["main.btrfs"]);
      // store.size "256M": the image's size, sparse.
      expect(statSync(join(dir, "main.btrfs")).size).toBe(256 * 1024 ** 2);
      // The image holds no plaintext name or content.
      const bytes = readFileSync(join(dir, "main.btrfs"));
      expect(bytes.includes(Buffer.from(key))).toBe(false);
    });

    // Six backups over five days, rotation every 24 h, 3 snapshots kept. A rotation snapshots the live copy
    // BEFORE the new copy (as mnemosyne), named by the time of the backup it holds: states[NAME] is the
    // source as it was backed up at NAME's time.
    const states: Record<string, ReturnType<typeof snapshotTree>> = {};
    const backup = async (now: string) => {
      const result = await mirror(["backup", "--json"], now);
      expect(result.stderr).not.toContain("error");
      expect(result.exitCode).toBe(0);
      expect(leftovers(remote)).toEqual([]);
      return result.json;
    };
    writeFileSync(join(src, "a.txt"), "alpha v1\n");
    writeFileSync(join(src, "b.txt"), "bravo v1\n");
    mkdirSync(join(src, "sub"));
    writeFileSync(join(src, "sub", "c.bin"), Buffer.alloc(200_000, 7));

    // The key must never show in any process' argv or environment during a backup.
    let polling = true;
    const seen: string[] = [];
    const poller = (async () => {
      while (polling) {
        for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
          for (const what of ["cmdline", "environ"]) {
            try {
              if (readFileSync(`/proc/${pid}/${what}`).includes(key)) seen.push(`${pid} ${what}`);
            } catch {
              // Gone already.
            }
          }
        }
        await Bun.sleep(5);
      }
    })();
    const first = await backup("2026-01-01T00:00:00Z");
    polling = false;
    await poller;
    expect(seen).toEqual([]);
    expect(JSON.stringify(first)).not.toContain(key);
    // The first backup: nothing to keep yet, so no snapshot; the rotation period starts here.
    expect(first.snapshots).toEqual({ taken: [], dropped: [], skipped: ["docs"] });
    expect(first.directories[0].filesTransferred).toBe(3);

    // Each new version of b.txt gets its own mtime: rsync's quick check (size and mtime) would skip a
    // same-size rewrite within the same second, as it does for any user, and the test would race the clock.
    let stamp = 1_700_000_000;
    const rewrite = (name: string, text: string) => {
      writeFileSync(join(src, name), text);
      stamp += 3600;
      utimesSync(join(src, name), stamp, stamp);
    };
    rewrite("b.txt", "bravo v2\n");
    expect((await backup("2026-01-01T06:00:00Z")).snapshots).toEqual({ taken: [], dropped: [], skipped: [] });
    states["docs-20260101-060000"] = snapshotTree(src);

    writeFileSync(join(src, "d.txt"), "delta v3\n");
    expect((await backup("2026-01-02T00:00:00Z")).snapshots).toEqual({ taken: ["docs-20260101-060000"], dropped: [], skipped: [] });
    states["docs-20260102-000000"] = snapshotTree(src);

    rmSync(join(src, "a.txt"));
    rewrite("b.txt", "bravo v4\n");
    expect((await backup("2026-01-03T00:00:00Z")).snapshots).toEqual({ taken: ["docs-20260102-000000"], dropped: [], skipped: [] });
    states["docs-20260103-000000"] = snapshotTree(src);

    writeFileSync(join(src, "e.txt"), "echo v5\n");
    expect((await backup("2026-01-04T00:00:00Z")).snapshots).toEqual({ taken: ["docs-20260103-000000"], dropped: [], skipped: [] });
    states["docs-20260104-000000"] = snapshotTree(src);

    rewrite("b.txt", "bravo v6\n");
    const sixth = await mirror(["backup"], "2026-01-05T00:00:00Z");
    expect(sixth.exitCode).toBe(0);
    expect(sixth.stdout).toContain("Snapshots taken (each the copy of the backup at its date): docs-20260104-000000");
    expect(sixth.stdout).toContain("Snapshots deleted (beyond 3): docs-20260101-060000");
    delete states["docs-20260101-060000"];
    expect(leftovers(remote)).toEqual([]);

    const list = await mirror(["list", "--json"]);
    expect(list.exitCode).toBe(0);
    expect(list.json.snapshots.map((s: any) => [s.key, s.name, s.date])).toEqual([
      ["docs", "docs-20260102-000000", "2026-01-02T00:00:00.000Z"],
      ["docs", "docs-20260103-000000", "2026-01-03T00:00:00.000Z"],
      ["docs", "docs-20260104-000000", "2026-01-04T00:00:00.000Z"],
    ]);
    expect(Object.keys(states)).toEqual(list.json.snapshots.map((s: any) => s.name));
    expect(leftovers(remote)).toEqual([]);

    // Browse: each snapshot equals the source as it was at the snapshot's date; the live copy, the source now.
    const browse = join(remote.dir, "browse");
    mkdirSync(browse);
    const mounted = await blaine(["mirror", "--mount", browse, "-c", config], { env: remote.env() });
    expect(mounted.stderr).toBe("");
    expect(mounted.exitCode).toBe(0);
    try {
      for (const [name, tree] of Object.entries(states)) expect(snapshotTree(join(browse, "snapshots", name))).toEqual(tree);
      expect(snapshotTree(join(browse, "docs"))).toEqual(snapshotTree(src));
      // Busy while browsed: a backup is refused, naming the mount.
      const refused = await mirror(["backup"], "2026-01-06T00:00:00Z");
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain("mounted for browsing");
    } finally {
      const unmounted = await mirror(["unmount"]);
      expect(unmounted.exitCode).toBe(0);
    }
    expect(leftovers(remote)).toEqual([]);

    // a.txt, deleted from the source before the backup of the 3rd, is found in the newest snapshot holding it
    // (the backup of the 2nd) and restored.
    const restoreTo = join(remote.dir, "restored");
    const restored = await mirror(["restore", join(src, "a.txt"), "--to", restoreTo, "--json"]);
    expect(restored.exitCode).toBe(0);
    expect(restored.json.snapshot).toBe("docs-20260102-000000");
    expect(readFileSync(join(restoreTo, "a.txt"), "utf8")).toBe("alpha v1\n");
    // --from KEY-DATE: the file as it was at DATE.
    const older = await mirror(["restore", "b.txt", "--from", "docs-20260102-000000", "--to", join(remote.dir, "older")]);
    expect(older.exitCode).toBe(0);
    expect(readFileSync(join(remote.dir, "older", "b.txt"), "utf8")).toBe("bravo v2\n");
    const newer = await mirror(["restore", "b.txt", "--from", "docs-20260104-000000", "--to", join(remote.dir, "newer")]);
    expect(readFileSync(join(remote.dir, "newer", "b.txt"), "utf8")).toBe("bravo v4\n");
    const subTo = join(remote.dir, "sub-restored");
    const sub = await mirror(["restore", join(src, "sub"), "--from", "docs-20260104-000000", "--to", subTo]);
    expect(sub.exitCode).toBe(0);
    expect(snapshotTree(join(subTo, "sub"))).toEqual(snapshotTree(join(src, "sub")));
    const nowhere = await mirror(["restore", "zulu.txt", "--to", restoreTo]);
    expect(nowhere.exitCode).toBe(1);
    expect(nowhere.stderr).toContain("zulu.txt is in no snapshot");
    expect(leftovers(remote)).toEqual([]);

    // The README's recovery with stock tools (gocryptfs), as written there: no Blaine.
    const [nas, store, files] = ["mnt-nas", "mnt-store", "mnt-files"].map((name) => join(remote.dir, name));
    for (const dir of [nas, store, files]) mkdirSync(dir);
    const fusermount = Bun.which("fusermount") ? "fusermount" : "fusermount3";
    const recipe = [
      "set -e",
      `mount -o ro UUID=${remote.uuid} ${nas}`,
      `LOOP=$(losetup --find --show --read-only ${nas}/main.btrfs)`,
      `mount -o ro "$LOOP" ${store}`,
      `gocryptfs -ro -passfile ${keyfile} ${store}/snapshots/docs-20260102-000000 ${files}`,
      `cp -a ${files}/a.txt ${remote.dir}/recovered.txt`,
      `${fusermount} -u ${files}`,
      `until umount ${store} 2>/dev/null; do sleep 0.2; done`,
      `losetup -d "$LOOP"; umount ${nas}`,
    ].join("\n");
    const stock = Bun.spawnSync(["sh", "-c", recipe]);
    // gocryptfs complains on stderr when it finds no syslog (as in containers): noise, not failure.
    expect(new TextDecoder().decode(stock.stderr).split("\n").filter((line) => line && !/syslog/i.test(line))).toEqual([]);
    expect(stock.exitCode).toBe(0);
    expect(readFileSync(join(remote.dir, "recovered.txt"), "utf8")).toBe("alpha v1\n");
    expect(leftovers(remote)).toEqual([]);
  });

  test("a failing rsync (the store is full), SIGTERM and Ctrl-C mid-copy and kill -9 mid-copy leave nothing mounted (the next command cleans a killed run); one command per store", async () => {
    const config = remote.config("fail");
    const src = join(remote.dir, "src-fail", "docs");
    const mirror = (args: string[], now?: string) => blaine(["mirror", ...args, "-c", config], { env: remote.env(now) });
    expect((await mirror(["init-key"])).exitCode).toBe(0);
    expect((await mirror(["init-store"])).exitCode).toBe(0);
    writeFileSync(join(src, "small.txt"), "small\n");
    expect((await mirror(["backup"], "2026-01-01T00:00:00Z")).exitCode).toBe(0);
    expect((await mirror(["backup"], "2026-01-02T00:00:00Z")).stdout).toContain("Snapshots taken (each the copy of the backup at its date): docs-20260101-000000");
    // 400 MB of data for a 256 MB store: rsync fails with ENOSPC.
    const big = join(src, "big.bin");
    run(["truncate", "-s", "400M", big]);
    const full = await mirror(["backup"], "2026-01-02T01:00:00Z");
    expect(full.exitCode).toBe(1);
    expect(full.stderr).toContain("rsync");
    expect(leftovers(remote)).toEqual([]);
    // From here on the clock is the real one: every run is past the rotation period.

    const rsyncOf = () =>
      readdirSync("/proc")
        .filter((name) => /^\d+$/.test(name))
        .filter((pid) => {
          try {
            const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
            return cmdline.startsWith("rsync\0") && cmdline.includes(src);
          } catch {
            return false;
          }
        })
        .map(Number);

    for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
      // An rsync of the run before may still be exiting: it must not be taken for this run's.
      await waitFor(() => rsyncOf().length === 0, 10_000, "the previous rsync to end");
      const interrupted = spawnBlaine(["mirror", "backup", "-c", config], { env: remote.env() });
      await waitFor(() => rsyncOf().length > 0, 60_000, "rsync to start");
      if (signal === "SIGTERM") {
        // One command per store: a second backup meanwhile is refused, naming the first.
        const second = await mirror(["backup"]);
        expect(second.exitCode).toBe(2);
        expect(second.stderr).toContain(`another blaine mirror command (pid ${interrupted.pid})`);
      }
      interrupted.kill(signal);
      expect(await interrupted.exited).toBe(code);
      expect(await new Response(interrupted.stderr).text()).toContain("interrupted");
      expect(leftovers(remote)).toEqual([]);
    }

    await waitFor(() => rsyncOf().length === 0, 10_000, "the previous rsync to end");
    const killed = spawnBlaine(["mirror", "backup", "-c", config], { env: remote.env() });
    await waitFor(() => rsyncOf().length > 0, 60_000, "rsync to start");
    // kill -9 of the run: blaine and its rsync, as a killed job or a power cut leaves them.
    killed.kill("SIGKILL");
    for (const pid of rsyncOf()) process.kill(pid, "SIGKILL");
    await killed.exited;
    await waitFor(() => rsyncOf().length === 0, 10_000, "rsync to end");
    expect(leftovers(remote).length).toBeGreaterThan(0);
    rmSync(big);
    const next = await mirror(["backup"]);
    expect(next.stderr).toBe("");
    expect(next.exitCode).toBe(0);
    expect(leftovers(remote)).toEqual([]);
    // issue 17: the rotations due since the failed copy found the live copy half-written (not a point in
    // time): no snapshot of it; the one of the last completed backup is still there.
    expect(next.stdout).toContain("docs: no snapshot (the copy since the last one did not complete: not a point in time)");
    const list = await mirror(["list", "--json"]);
    expect(list.json.snapshots.map((snapshot: any) => snapshot.name)).toEqual(["docs-20260101-000000"]);
  });

  test.skipIf(Boolean(luksMissing))("LUKS: init-store formats the image (isLuks, luksDump, the key opens it) and stops where device-mapper is needed, exit 2; backup says the same", async () => {
    const config = remote.config("luks", (json) => {
      delete json.store.encryption;
    });
    const mirror = (args: string[]) => blaine(["mirror", ...args, "-c", config], { env: remote.env() });
    expect((await mirror(["init-key"])).exitCode).toBe(0);
    const init = await mirror(["init-store"]);
    const hasDm = hasDeviceMapper();
    if (!hasDm) {
      expect(init.exitCode).toBe(2);
      expect(init.stderr).toContain("no device-mapper, so a LUKS store cannot be opened here");
      expect(leftovers(remote)).toEqual([]);
      remote.withRemote((dir) => {
        const partial = join(dir, "luks.btrfs.partial");
        expect(Bun.spawnSync(["cryptsetup", "isLuks", partial]).exitCode).toBe(0);
        expect(new TextDecoder().decode(Bun.spawnSync(["cryptsetup", "luksDump", partial]).stdout)).toMatch(/Version:\s+2/);
        const keyfile = join(remote.dir, "keys", "luks.key");
        expect(Bun.spawnSync(["cryptsetup", "open", "--test-passphrase", "--key-file", keyfile, partial]).exitCode).toBe(0);
        expect(existsSync(join(dir, "luks.btrfs"))).toBe(false);
      });
      const backup = await mirror(["backup"]);
      expect(backup.exitCode).toBe(2);
      expect(backup.stderr).toContain("device-mapper");
      const env = await mirror(["verify-environment"]);
      expect(env.exitCode).toBe(1);
      expect(env.stdout).toContain("MISSING device-mapper: missing: LUKS stores cannot be opened here");
    } else {
      expect(init.exitCode).toBe(0);
    }
  });

  test.skipIf(!Bun.which("script"))("backup at a terminal shows rsync's progress line, then a summary of the files copied and bytes sent (skipped without script, util-linux)", async () => {
    const config = remote.config("tty");
    const src = join(remote.dir, "src-tty", "docs");
    expect((await blaine(["mirror", "init-key", "-c", config], { env: remote.env() })).exitCode).toBe(0);
    expect((await blaine(["mirror", "init-store", "-c", config], { env: remote.env() })).exitCode).toBe(0);
    writeFileSync(join(src, "big.bin"), Buffer.alloc(3_000_000, 1));
    // script(1) gives the backup a pseudo-terminal, as a person running it by hand has.
    const command = ["bun", join(import.meta.dir, "..", "bin", "blaine.ts"), "mirror", "backup", "-c", config].map((word) => `'${word}'`).join(" ");
    const atTerminal = Bun.spawnSync(["script", "-qec", command, "/dev/null"], { env: { ...process.env, ...remote.env("2026-02-01T00:00:00Z") } });
    const screen = new TextDecoder().decode(atTerminal.stdout);
    expect(atTerminal.exitCode).toBe(0);
    expect(screen).toMatch(/\r\s+3,000,000 100%/);
    expect(screen).not.toContain("Number of files:");
    expect(screen).toMatch(/docs: 1 files copied, [\d.]+ [KMG]i?B sent \([\d.]+ [KMG]i?B mirrored\)/);
    expect(screen).toContain("docs: no snapshot (the first backup: nothing to keep yet)");
    expect(leftovers(remote)).toEqual([]);
    // Without a terminal (cron): no progress, the same summary.
    // mnemosyne's spellings: --backup, --config.
    const quiet = await blaine(["mirror", "--backup", "--config", config], { env: remote.env("2026-02-01T01:00:00Z") });
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stdout + quiet.stderr).not.toContain("%");
    expect(quiet.stdout).toMatch(/docs: 0 files copied, [\d.]+ \w+ sent/);
  });

  test("verify-environment: a gocryptfs store works here; a missing key file and directory are named, exit 1", async () => {
    const config = remote.config("env");
    const env = await blaine(["mirror", "--verify-environment", "-c", config, "--json"], { env: remote.env() });
    expect(env.exitCode).toBe(1);
    const failed = env.json.checks.filter((check: any) => !check.ok && check.required).map((check: any) => check.name);
    expect(failed).toEqual(["key file"]);
    expect((await blaine(["mirror", "init-key", "-c", config], { env: remote.env() })).exitCode).toBe(0);
    const ok = await blaine(["mirror", "verify-environment", "-c", config], { env: remote.env() });
    expect(ok.stdout).toContain("This configuration can work here.");
    expect(ok.exitCode).toBe(0);
  });
});

describe("blaine mirror: CIFS", () => {
  test("the credentials file holds the password; the mount arguments never do", () => {
    const share = { username: "user123", password: "PASSWORD-GOES-HERE" };
    expect(credentialsText(share)).toBe("username=user123\npassword=PASSWORD-GOES-HERE\n");
    const options = cifsMountOptions("/run/blaine/mirror/x/cifs-credentials", "vers=3.0");
    const args = mountArguments("//synologic.local/volumename", "/run/blaine/mirror/x/remote", { type: "cifs", options });
    expect(args).toEqual([
      "-t",
      "cifs",
      "-o",
      "rw,credentials=/run/blaine/mirror/x/cifs-credentials,uid=0,gid=0,file_mode=0600,dir_mode=0700,vers=3.0",
      "//synologic.local/volumename",
      "/run/blaine/mirror/x/remote",
    ]);
    expect(args.join(" ")).not.toContain("PASSWORD");
    expect(() => credentialsText({ username: "u", password: "a\nb" })).toThrow("line break");
  });

  test.skipIf(kernelHasFileSystem("cifs"))("a kernel without cifs: init-store says so, exit 2, and the password is in no message", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blaine-mirror-cifs-"));
    try {
      mkdirSync(join(dir, "keys"), { mode: 0o700 });
      mkdirSync(join(dir, "home"));
      writeFileSync(join(dir, "keys", "key"), "k".repeat(64) + "\n", { mode: 0o600 });
      const config = join(dir, "cifs.json");
      writeFileSync(
        config,
        JSON.stringify({
          remote: { type: "cifs", volume: "\\\\nas.invalid\\backup", username: "user123", password: "PASSWORD-GOES-HERE" },
          store: { name: "backup.btrfs", size: 1, keyfile: "keys/key", encryption: "gocryptfs" },
          strategy: { stages: 2, rotate: 24 },
          local: { directories: [{ key: "home", directory: "home" }] },
        }),
      );
      const result = await blaine(["mirror", "init-store", "-c", config], { env: { BLAINE_RUN_DIR: join(dir, "run") } });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain("cannot mount //nas.invalid/backup: this kernel has no cifs support");
      expect(result.stderr + result.stdout).not.toContain("PASSWORD-GOES-HERE");
      const env = await blaine(["mirror", "verify-environment", "-c", config, "--json"], { env: { BLAINE_RUN_DIR: join(dir, "run") } });
      expect(env.exitCode).toBe(1);
      expect(env.stdout).not.toContain("PASSWORD-GOES-HERE");
      expect(env.json.config.remote.password).toBe("********");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("blaine mirror verify-environment", () => {
  function cifsConfig(dir: string, change: (json: any) => void = () => {}): string {
    mkdirSync(join(dir, "home"), { recursive: true });
    const json: any = {
      remote: { type: "cifs", volume: "\\\\127.0.0.1\\backup", username: "user123", password: "PASSWORD-GOES-HERE" },
      store: { name: "backup.btrfs", size: 1, keyfile: "key", encryption: "gocryptfs" },
      strategy: { stages: 2, rotate: 24 },
      local: { directories: [{ key: "home", directory: "home" }] },
    };
    change(json);
    const file = join(dir, "cifs.json");
    writeFileSync(file, JSON.stringify(json));
    return file;
  }

  test("the configuration is echoed with the password masked; the NAS is reachable only when it answers on its port", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blaine-mirror-env-"));
    const nas = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const config = cifsConfig(dir, (json) => (json.remote.options = `vers=3.0,port=${nas.port}`));
      const env = { BLAINE_RUN_DIR: join(dir, "run") };
      const shown = await blaine(["mirror", "verify-environment", "-c", config], { env });
      expect(shown.stdout).toContain('"password": "********"');
      expect(shown.stdout).toContain('"username": "user123"');
      expect(shown.stdout + shown.stderr).not.toContain("PASSWORD-GOES-HERE");
      expect(shown.stdout).toContain(`ok      remote: 127.0.0.1 (127.0.0.1) answers on port ${nas.port}`);
      const answered = await blaine(["mirror", "verify-environment", "-c", config, "--json"], { env });
      expect(answered.json.checks.find((check: any) => check.name === "remote").ok).toBe(true);
      expect(answered.json.config.remote.password).toBe("********");
      expect(answered.stdout + answered.stderr).not.toContain("PASSWORD-GOES-HERE");
      nas.stop(true);
      const silent = await blaine(["mirror", "verify-environment", "-c", config, "--json"], { env });
      expect(silent.exitCode).toBe(1);
      const remote = silent.json.checks.find((check: any) => check.name === "remote");
      expect(remote.ok).toBe(false);
      expect(remote.detail).toContain(`does not answer on port ${nas.port}`);
    } finally {
      nas.stop(true);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an invalid configuration is a failed check naming the key (exit 1), and the tools are still checked", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blaine-mirror-env-"));
    try {
      const config = cifsConfig(dir, (json) => (json.strategy.rotate = "weekly"));
      const result = await blaine(["mirror", "--verify-environment", "-c", config], { env: { BLAINE_RUN_DIR: join(dir, "run") } });
      expect(result.exitCode).toBe(1);
      expect(result.stdout).toContain(`MISSING configuration: ${config}: strategy.rotate: expected hours as a number`);
      expect(result.stdout).toMatch(/(ok     |MISSING) rsync: /);
      expect(result.stdout).toMatch(/(ok     |absent ) cryptsetup: /);
      expect(result.stdout).toContain("This configuration cannot work here: configuration");
      expect(result.stdout + result.stderr).not.toContain("PASSWORD-GOES-HERE");
      const json = await blaine(["mirror", "verify-environment", "-c", config, "--json"], { env: { BLAINE_RUN_DIR: join(dir, "run") } });
      expect(json.exitCode).toBe(1);
      expect(json.json.ok).toBe(false);
      expect(json.json.checks[0]).toEqual({ name: "configuration", ok: false, required: true, detail: `${config}: strategy.rotate: expected hours as a number` });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("blaine mirror: a killed run's secrets", () => {
  test("a CIFS credentials file left by a run killed while mount.cifs read it is removed by the next command", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blaine-mirror-stale-"));
    try {
      const runDir = join(dir, "run");
      const chainDir = join(runDir, "mirror", "dead-1");
      mkdirSync(chainDir, { recursive: true, mode: 0o700 });
      const credentials = join(chainDir, "cifs-credentials");
      writeFileSync(credentials, "username=user123\npassword=PASSWORD-GOES-HERE\n", { mode: 0o600 });
      // A pid that ran and ended: the record's owner is dead.
      const gone = Bun.spawnSync(["true"]).pid;
      const record = { id: "dead-1", config: join(dir, "cifs.json"), purpose: "command", pid: gone, pidStart: "0", complete: false, steps: [{ kind: "dir", path: chainDir }, { kind: "mount", target: join(chainDir, "remote"), fuse: false }] };
      writeFileSync(join(runDir, "mirror", "dead-1.json"), JSON.stringify(record));
      writeFileSync(join(dir, "cifs.json"), "{}");
      const result = await blaine(["mirror", "verify-environment", "-c", join(dir, "cifs.json")], { env: { BLAINE_RUN_DIR: runDir } });
      expect(result.stdout).toContain("Took down what 1 killed mirror command(s) had left mounted.");
      expect(existsSync(credentials)).toBe(false);
      expect(existsSync(chainDir)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("blaine mirror init-key", () => {
  test("the key's directory is checked (missing, writable by everyone, someone else's); the key is 0600, the user told to keep a copy, never replaced", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blaine-mirror-key-"));
    try {
      mkdirSync(join(dir, "home"));
      const configFor = (keyfile: string) => {
        const file = join(dir, "mirror.json");
        writeFileSync(
          file,
          JSON.stringify({
            remote: { type: "block", device: "LABEL=nas" },
            store: { name: "backup.btrfs", size: 1, keyfile, encryption: "gocryptfs" },
            strategy: { stages: 2, rotate: 24 },
            local: { directories: [{ key: "home", directory: "home" }] },
          }),
        );
        return file;
      };
      const initKey = (keyfile: string) => blaine(["mirror", "init-key", "-c", configFor(keyfile)], { env: { BLAINE_RUN_DIR: join(dir, "run") } });

      const missingDir = await initKey("nowhere/key");
      expect(missingDir.exitCode).toBe(2);
      expect(missingDir.stderr).toContain(`store.keyfile: the directory ${join(dir, "nowhere")} does not exist`);

      mkdirSync(join(dir, "open"));
      chmodSync(join(dir, "open"), 0o777);
      const open = await initKey("open/key");
      expect(open.exitCode).toBe(2);
      expect(open.stderr).toContain("is writable by everyone");
      expect(existsSync(join(dir, "open", "key"))).toBe(false);

      if (process.getuid?.() === 0) {
        mkdirSync(join(dir, "theirs"), { mode: 0o755 });
        chownSync(join(dir, "theirs"), 12345, 12345);
        const theirs = await initKey("theirs/key");
        expect(theirs.exitCode).toBe(2);
        expect(theirs.stderr).toContain("belongs to uid 12345");
        expect(readdirSync(join(dir, "theirs"))).toEqual([]);
      }

      mkdirSync(join(dir, "keys"), { mode: 0o700 });
      const made = await initKey("keys/key");
      expect(made.exitCode).toBe(0);
      expect(made.stdout).toContain("Store a copy somewhere safe");
      expect(statSync(join(dir, "keys", "key")).mode & 0o777).toBe(0o600);
      const key = readFileSync(join(dir, "keys", "key"), "utf8");
      const again = await initKey("keys/key");
      expect(again.exitCode).toBe(2);
      expect(again.stderr).toContain("already exists; init-key never replaces a key");
      expect(readFileSync(join(dir, "keys", "key"), "utf8")).toBe(key);
      expect(readdirSync(join(dir, "keys"))).toEqual(["key"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("kill -9: init-key's temp (the key not yet linked) beside the key file is removed by the next init-key", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blaine-mirror-key-kill-"));
    try {
      mkdirSync(join(dir, "home"));
      mkdirSync(join(dir, "keys"), { mode: 0o700 });
      const config = join(dir, "mirror.json");
      writeFileSync(
        config,
        JSON.stringify({
          remote: { type: "block", device: "LABEL=nas" },
          store: { name: "backup.btrfs", size: 1, keyfile: join(dir, "keys", "key"), encryption: "gocryptfs" },
          strategy: { stages: 2, rotate: 24 },
          local: { directories: [{ key: "home", directory: "home" }] },
        }),
      );
      const env = { BLAINE_RUN_DIR: join(dir, "run") };
      await blaineKilledAt("mirror-key-written:1", ["mirror", "init-key", "-c", config], { env });
      expect(readdirSync(join(dir, "keys"))).toHaveLength(1);
      expect(existsSync(join(dir, "keys", "key"))).toBe(false);
      expect((await blaine(["mirror", "init-key", "-c", config], { env })).exitCode).toBe(0);
      expect(readdirSync(join(dir, "keys"))).toEqual(["key"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
