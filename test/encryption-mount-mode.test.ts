import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openArchive } from "../lib/archive/commands/open-disks.ts";
import { loadSettings } from "../lib/archive/settings.ts";
import { releaseDiskMounts } from "../lib/archive/disk/unlock.ts";
import { listMounts } from "../lib/system/fuse-mount.ts";
import { blaine } from "./helpers/cli.ts";
import { blaineKilledAt } from "./helpers/crash.ts";
import { makeTree, tempDir } from "./helpers/fixture.ts";
import { cipherMissing } from "./helpers/mounts.ts";

// Real FUSE mounts: Bun's 5 s default is too short on a busy machine.
setDefaultTimeout(120_000);

const skipReason = cipherMissing("gocryptfs");
if (skipReason) console.log(`skipped: read-only mounts of encrypted disks: ${skipReason}`);

let dir: ReturnType<typeof tempDir> | undefined;
afterEach(async () => {
  await releaseDiskMounts();
  dir?.cleanup();
  dir = undefined;
});

async function archivedEncryptedDisk() {
  dir = tempDir();
  const root = dir.path;
  const keyfile = join(root, "key");
  writeFileSync(keyfile, `pw-${crypto.randomUUID()}\n`, { mode: 0o600 });
  makeTree(join(root, "src"), { "film.mkv": "frames", music: { "a.flac": "notes" } });
  const db = join(root, "catalog.db");
  const disk = join(root, "disk");
  const init = await blaine(["disk", "init", disk, "--label", "E", "--db", db, "--encrypt", "gocryptfs", "--keyfile", keyfile]);
  expect(init.exitCode).toBe(0);
  const run = await blaine(["run", "--db", db, "--dest", disk, "--keyfile", keyfile, join(root, "src")]);
  expect(run.exitCode).toBe(0);
  return { root, keyfile, db, disk, settings: loadSettings({ db, dest: [disk], keyfile: [keyfile] }) };
}

const mountOf = (root: string) => listMounts().findLast((mount) => mount.mountpoint === root);

describe("how restore and verify mount an encrypted disk", () => {
  test.skipIf(skipReason !== undefined)("with nothing to settle: read-only", async () => {
    const env = await archivedEncryptedDisk();
    const archive = await openArchive(env.settings, { write: true, settleOnly: true });
    try {
      expect(mountOf(archive.disks[0].root)?.readonly).toBe(true);
      const entries = archive.catalog.sqlite.query(`SELECT count(*) AS n FROM ${archive.disks[0].alias}.entries`).get() as { n: number };
      expect(entries.n).toBe(2);
    } finally {
      archive.close();
    }
  });

  test.skipIf(skipReason !== undefined)("with a deferred action queued for it: read-write, and the action is applied", async () => {
    const env = await archivedEncryptedDisk();
    // The disk goes away; the film is renamed meanwhile: a deferred rename waits for it.
    const elsewhere = join(env.root, "other-disk");
    expect((await blaine(["disk", "init", elsewhere, "--label", "F", "--db", env.db])).exitCode).toBe(0);
    renameSync(join(env.root, "src", "film.mkv"), join(env.root, "src", "movie.mkv"));
    expect((await blaine(["run", "--db", env.db, "--dest", elsewhere, join(env.root, "src")])).exitCode).toBe(0);
    const archive = await openArchive(env.settings, { write: true, settleOnly: true });
    try {
      const disk = archive.disks[0];
      expect(mountOf(disk.root)?.readonly).toBe(false);
      expect(existsSync(join(disk.root, env.root, "src", "movie.mkv"))).toBe(true);
      expect(readFileSync(join(disk.root, env.root, "src", "movie.mkv"), "utf8")).toBe("frames");
    } finally {
      archive.close();
    }
  });

  test.skipIf(skipReason !== undefined)("with intents a killed run left: read-write, and they are settled", async () => {
    const env = await archivedEncryptedDisk();
    writeFileSync(join(env.root, "src", "new.txt"), "arrived after the first run");
    await blaineKilledAt("before-commit:1", ["run", "--db", env.db, "--dest", env.disk, "--keyfile", env.keyfile, join(env.root, "src")]);
    const archive = await openArchive(env.settings, { write: true, settleOnly: true });
    try {
      const disk = archive.disks[0];
      expect(mountOf(disk.root)?.readonly).toBe(false);
      const intents = archive.catalog.sqlite.query(`SELECT count(*) AS n FROM ${disk.alias}.intents`).get() as { n: number };
      expect(intents.n).toBe(0);
      const settled = archive.catalog.sqlite.query("SELECT count(*) AS n FROM main.files WHERE path LIKE '%/new.txt'").get() as { n: number };
      expect(settled.n).toBe(1);
    } finally {
      archive.close();
    }
  });

  test.skipIf(skipReason !== undefined)("a writing command (settleOnly not given) mounts read-write", async () => {
    const env = await archivedEncryptedDisk();
    const archive = await openArchive(env.settings, { write: true });
    try {
      expect(mountOf(archive.disks[0].root)?.readonly).toBe(false);
    } finally {
      archive.close();
    }
  });
});
