import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blaine } from "./helpers/cli.ts";
import { makeTree, tempDir } from "./helpers/fixture.ts";
import { cipherMissing } from "./helpers/mounts.ts";
import { Terminal } from "./helpers/terminal.ts";

setDefaultTimeout(120_000);

const haveTmux = Bun.which("tmux") !== null;
if (!haveTmux) console.log("skipped: the interactive blaine init tests drive a terminal with tmux, which is not installed");

let dir: ReturnType<typeof tempDir> | undefined;
let terminal: Terminal | undefined;
afterEach(() => {
  terminal?.close();
  terminal = undefined;
  dir?.cleanup();
});

function workplace() {
  dir = tempDir();
  const source = join(dir.path, "media");
  makeTree(source, { "film.mkv": "frames", "film.part": "half", music: { "song.flac": "notes" } });
  return { root: dir.path, source };
}

/** Starts `blaine init` on a terminal and answers the questions before "Encrypt the disk?" (an empty answer takes the default). */
async function answerUpToEncryption(place: ReturnType<typeof workplace>, answers: { exclude: string; label: string }): Promise<Terminal> {
  terminal = new Terminal(place.root, ["init"]);
  const t = terminal;
  await t.answer("A directory to archive", place.source, "Enter");
  await t.answer("Add another directory to archive?", "", "Enter");
  await t.answer("Exclude patterns", answers.exclude, "Enter");
  await t.answer("SnapRAID configuration", "", "Enter");
  await t.answer("Where to keep the catalog", join(place.root, "catalog.db"), "Enter");
  await t.answer("The first archive disk", join(place.root, "disk1"), "Enter");
  await t.answer("A label for this disk", answers.label, "Enter");
  await t.answer("Most data this disk may hold", "", "Enter");
  return t;
}

const canEncrypt = cipherMissing("gocryptfs") === undefined;

describe.skipIf(!haveTmux)("blaine init on a terminal", () => {
  test("every question answered at the prompts: disk initialised (encrypted), blaine.toml written, dry run offered and run", async () => {
    if (!canEncrypt) console.log("note: gocryptfs or /dev/fuse missing: the disk is left unencrypted in this run");
    const place = workplace();
    const t = await answerUpToEncryption(place, { exclude: "*.part", label: "T1" });
    await t.waitForText("Encrypt the disk?");
    if (canEncrypt) {
      t.type("", "Down", "Enter");
      await t.waitForText("A lost key loses the archive");
      await t.answer("Key file", "", "Enter");
    } else t.type("", "Enter");
    await t.answer("Parity (PAR2", "", "Enter");
    await t.answer("Parity engine", "", "Enter");
    await t.answer("Copier", "", "Enter");
    await t.answer("Initialise disk", "", "Enter");
    await t.answer("Run a dry run now", "", "Enter");
    await t.waitForText("Dry run (nothing changed)");
    expect(await t.exitCode()).toBe(0);

    const toml = readFileSync(join(place.root, "blaine.toml"), "utf8");
    expect(toml).toContain(`sources = [${JSON.stringify(place.source)}]`);
    expect(toml).toContain('exclude = ["*.part"]');
    expect(toml).toMatch(/^parity = "10%"$/m);
    const label = JSON.parse(readFileSync(join(place.root, "disk1/.blaine/disk.json"), "utf8"));
    expect(label.label).toBe("T1");
    if (canEncrypt) {
      expect(label.cipher).toBe("gocryptfs");
      expect(toml).toContain(`keyfile = ${JSON.stringify(join(place.root, "blaine.key"))}`);
      expect(t.screen()).not.toContain(readFileSync(join(place.root, "blaine.key"), "utf8").trim());
    }
    // The dry run saw the two files the excludes leave.
    expect(t.screen()).toMatch(/2 new/);
  });

  test("issue 11.10: blaine init asks for the disk's capacity, and for a SnapRAID file even where /etc/snapraid.conf is absent", async () => {
    const place = workplace();
    const snapraid = join(place.root, "my-snapraid.conf");
    writeFileSync(snapraid, "parity /mnt/parity/snapraid.parity\nexclude *.part\n");
    terminal = new Terminal(place.root, ["init"]);
    const t = terminal;
    await t.answer("A directory to archive", place.source, "Enter");
    await t.answer("Add another directory to archive?", "", "Enter");
    await t.answer("Exclude patterns", "", "Enter");
    await t.answer("SnapRAID configuration", snapraid, "Enter");
    await t.answer("Where to keep the catalog", join(place.root, "catalog.db"), "Enter");
    await t.answer("The first archive disk", join(place.root, "disk1"), "Enter");
    await t.answer("A label for this disk", "C1", "Enter");
    await t.answer("Most data this disk may hold", "1G", "Enter");
    await t.answer("Encrypt the disk?", "", "Enter");
    await t.answer("Parity (PAR2", "", "Enter");
    await t.answer("Parity engine", "", "Enter");
    await t.answer("Copier", "", "Enter");
    await t.answer("Initialise disk", "", "Enter");
    await t.answer("Run a dry run now", "", "Enter");
    await t.waitForText("Dry run (nothing changed)");
    expect(await t.exitCode()).toBe(0);
    expect(readFileSync(join(place.root, "blaine.toml"), "utf8")).toContain(`snapraid-conf = ${JSON.stringify(snapraid)}`);
    // The SnapRAID file's exclude left film.part out.
    expect(t.screen()).toMatch(/2 new/);
    const listed = await blaine(["disk", "list", "--db", join(place.root, "catalog.db"), "--json"]);
    expect(listed.json.disks[0]).toMatchObject({ label: "C1", capacity: 1024 ** 3 });
  });

  test("Ctrl-C at a prompt leaves nothing written", async () => {
    const place = workplace();
    const t = await answerUpToEncryption(place, { exclude: "", label: "" });
    await t.answer("Encrypt the disk?", "", "C-c");
    expect(await t.exitCode()).toBe(1);
    expect(t.screen()).toContain("nothing was written");
    expect(readdirSync(place.root).filter((name) => name !== ".exit-code").sort()).toEqual(["media"]);
  });

  test("a wrong answer is refused at its prompt, naming the problem", async () => {
    const place = workplace();
    terminal = new Terminal(place.root, ["init"]);
    const t = terminal;
    await t.answer("A directory to archive", join(place.root, "no-such-dir"), "Enter");
    await t.waitForText(`${join(place.root, "no-such-dir")} does not exist`);
    t.type("", "C-c");
    expect(await t.exitCode()).toBe(1);
  });

  test.each([
    [["--parity", "abc", "--encrypt", "none", "--label", "I3"], '--parity: "abc" is not a percentage'],
    [["--label", "'bad label'"], "--label bad label: use letters"],
    [["--label", "I3", "--copier", "cat"], '--copier: "cat" is not builtin or dc3dd'],
  ])("answers given as flags are checked before the first question: %p is refused (exit 2), nothing written", async (flags, message) => {
    const place = workplace();
    terminal = new Terminal(place.root, ["init", "--source", place.source, "--db", "c.db", "--disk", "d", ...flags]);
    const t = terminal;
    expect(await t.exitCode()).toBe(2);
    expect(t.screen()).toContain(message);
    expect(t.screen()).not.toContain("Your answers");
    expect(readdirSync(place.root).filter((name) => name !== ".exit-code").sort()).toEqual(["media"]);
  });

  test("answers given as flags are taken as blaine run takes them: --parity 10 is written as 10%", async () => {
    const place = workplace();
    terminal = new Terminal(place.root, ["init", "--source", place.source, "--exclude", "x", "--db", "c.db", "--disk", "d", "--label", "I3", "--capacity", "1G", "--encrypt", "none", "--parity", "10", "--parity-engine", "builtin", "--copier", "builtin"]);
    const t = terminal;
    await t.answer("Initialise disk", "", "Enter");
    await t.answer("Run a dry run now", "n", "Enter");
    expect(await t.exitCode()).toBe(0);
    expect(readFileSync(join(place.root, "blaine.toml"), "utf8")).toMatch(/^parity = "10%"$/m);
  });

  test("blaine run with no configuration offers blaine init", async () => {
    const place = workplace();
    terminal = new Terminal(place.root, ["run"]);
    const t = terminal;
    await t.waitForText("no catalog (--db FILE), no archive disk (--dest DIR), no sources");
    await t.answer("Set up an archive now with blaine init?", "", "Enter");
    await t.answer("A directory to archive", "", "C-c");
    expect(await t.exitCode()).toBe(1);
    expect(existsSync(join(place.root, "blaine.toml"))).toBe(false);
  });
});
