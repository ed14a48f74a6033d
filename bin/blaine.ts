#!/usr/bin/env bun
/**
 * The `blaine` command line. Parsing and dispatch only: each command is a
 * function in lib/archive/commands, so scripts can do everything the CLI does.
 */
import { cac } from "cac";
import { singleFlag } from "../lib/config.ts";
import { BlaineError, ExitCode, UsageError, errorMessage } from "../lib/errors.ts";
import { createOutput } from "../lib/cli/output.ts";

// Commands are loaded when they run: each pulls in its own share of the
// toolkit (prompts, PAR2, FUSE mounts), and a daily run should not pay for
// loading the others.
const command = {
  // The archive's settings (and the stages and disk modules they name) load only for archive commands: 10–18 ms of every image, volume and mirror command's start.
  archiveSettings: () => import("../lib/archive/settings.ts"),
  diskInit: () => import("../lib/archive/commands/disk-init.ts"),
  diskClone: () => import("../lib/archive/commands/disk-clone.ts"),
  diskList: () => import("../lib/archive/commands/disk-list.ts"),
  diskRetire: () => import("../lib/archive/commands/disk-retire.ts"),
  diskRebuild: () => import("../lib/archive/commands/disk-rebuild.ts"),
  diskForget: () => import("../lib/archive/commands/disk-forget.ts"),
  catalogRebuild: () => import("../lib/archive/commands/catalog-rebuild.ts"),
  pending: () => import("../lib/archive/commands/pending.ts"),
  whereis: () => import("../lib/archive/commands/whereis.ts"),
  doctor: () => import("../lib/archive/commands/doctor.ts"),
  init: () => import("../lib/archive/commands/init.ts"),
  initPrompts: () => import("../lib/archive/commands/init-prompts.ts"),
  ls: () => import("../lib/archive/commands/ls.ts"),
  mount: () => import("../lib/archive/commands/mount.ts"),
  restore: () => import("../lib/archive/commands/restore.ts"),
  par2: () => import("../lib/par2/cli.ts"),
  run: () => import("../lib/archive/commands/run.ts"),
  status: () => import("../lib/archive/commands/status.ts"),
  verify: () => import("../lib/archive/commands/verify.ts"),
  image: () => import("../lib/image/commands/image-command.ts"),
  mirror: () => import("../lib/mirror/cli.ts"),
  volume: () => import("../lib/volume/cli.ts"),
};

const cli = cac("blaine");
type Flags = Record<string, unknown>;

/**
 * Each command's definition, in the order `blaine --help` lists them. cac
 * parses argv once for every command defined, so a command named first on
 * the line is the only one defined: an image or volume command's start
 * defined and parsed fifteen it did not run (about 10 ms). Anything else
 * (help, an option first, an unknown name) defines them all.
 */
const definitions = new Map<string, () => unknown>();
function define(name: string, definition: () => unknown): void {
  definitions.set(name, definition);
}

/** Options every command accepts. */
function common<T extends ReturnType<typeof cli.command>>(command: T): T {
  return command
    .option("--config <file>", "Settings file (default: ./blaine.toml)")
    .option("--db <file>", "Host catalog (SQLite)")
    .option("--dest <dir>", "Mounted archive disk (repeatable)")
    .option("--disks <glob>", "Where archive disks may be mounted: whichever are, are used (repeatable)")
    .option("--keyfile <file>", "Key file of encrypted disks (repeatable; or BLAINE_PASSWORD): its first line is the password")
    .option("--json", "Machine-readable output on stdout") as T;
}

define("run", () => common(cli.command("run [...args]", "Archive the sources (or run a pipeline script: blaine run ./my-pipeline.ts)"))
  .option("--dry-run", "Change nothing; print what would be done")
  .option("--exclude <glob>", "Exclude a name or path glob; a trailing / means a directory (repeatable)")
  .option("--snapraid-conf <file>", "Also exclude what a SnapRAID config excludes")
  .option("--match <mode>", "Unchanged-file test: inode | path-size-mtime | size-mtime (default inode)")
  .option("--hash <algorithm>", "sha1 (default) or sha256")
  .option("--copier <name>", "builtin (default) or dc3dd")
  .option("--reserve <size>", "Space always left free on the disk: SIZE or PERCENT (default 1%)")
  .option("--capacity <size>", "Most data this disk may hold")
  .option("--max-delete <n>", "Safety stop above this many deletions: COUNT or PERCENT (default 10% or 1000)")
  .option("--keep-deleted", "Keep files deleted from the sources in the archive")
  .option("--parity <percent>", "PAR2 recovery data per archived file: PERCENT (10 or 10%; default 10%) or off")
  .option("--parity-engine <name>", "builtin (default), parpar or par2")
  .action(async (args: string[], flags: Flags) => {
    const { isPipelineArgument, runPipeline } = await command.run();
    const pipeline = args.length > 0 && isPipelineArgument(args[0]) ? args[0] : undefined;
    const sources = pipeline ? args.slice(1) : args;
    const settings = (await command.archiveSettings()).loadSettings(flags, sources);
    const missing = pipeline ? undefined : (await command.archiveSettings()).missingForRun(settings);
    if (missing) {
      // No configuration at all: a person at a terminal is offered the set-up; a script is told what is missing.
      if (!process.stdin.isTTY || !process.stdout.isTTY) throw new UsageError(`nothing to run with: ${missing}; run blaine init (or give the flags)`);
      if (!(await (await command.initPrompts()).offerInit(missing))) return ExitCode.usage;
      return (await (await command.init()).runInit({}, createOutput(false))).exitCode;
    }
    return runPipeline(pipeline, settings, createOutput(settings.json));
  }));

define("disk", () => common(cli.command("disk <action> [...args]", "Archive disks: disk init DIR --label NAME [--capacity SIZE] [--encrypt gocryptfs|securefs]; clone LABEL DIR; list; forget LABEL --copy N|ID|DIR; retire LABEL; rebuild DIR (a lost disk.json or disk catalog)"))
  .option("--label <name>", "Disk label (disk init; disk rebuild: which disk a DIR that lost its disk.json is)")
  .option("--copy <copy>", "disk rebuild: which copy of the disk a DIR that lost its disk.json is (its id, or the start of it as disk list shows); disk forget: the copy to forget (its number in disk list, its id, or its directory)")
  .option("--capacity <size>", "Most data the disk may hold (disk init)")
  .option("--encrypt <cipher>", "Encrypt the disk with gocryptfs or securefs (disk init, disk clone; key from --keyfile, BLAINE_PASSWORD or a prompt)")
  .option("--force", "disk retire: retire even a disk holding the only copy of files (they are listed as lost); disk rebuild: rebuild even a whole catalog; disk forget: forget even a copy holding files the others lack (listed as lost)")
  .action(async (action: string, args: string[], flags: Flags) => {
    const settings = (await command.archiveSettings()).loadSettings(flags);
    const output = createOutput(settings.json);
    if (action === "init") {
      if (args.length !== 1) throw new BlaineError("usage: blaine disk init DIR --label NAME [--capacity SIZE] [--encrypt gocryptfs|securefs]", ExitCode.usage);
      const encrypt = singleFlag(flags, "encrypt");
      await (await command.diskInit()).initDisk(settings, { dir: args[0], label: singleFlag(flags, "label") as string, capacity: singleFlag(flags, "capacity"), encrypt }, output);
      return ExitCode.ok;
    }
    if (action === "clone") {
      if (args.length !== 2) throw new BlaineError("usage: blaine disk clone LABEL DIR [--dest DIR-OF-A-MOUNTED-COPY] [--encrypt gocryptfs|securefs]", ExitCode.usage);
      return (await (await command.diskClone()).cloneDisk(settings, { label: args[0], dir: args[1], encrypt: singleFlag(flags, "encrypt") }, output)).exitCode;
    }
    if (action === "list") {
      if (args.length !== 0) throw new BlaineError(`usage: blaine disk list (no arguments; given ${args.join(" ")})`, ExitCode.usage);
      return (await command.diskList()).listDisks(settings, output).exitCode;
    }
    if (action === "retire") {
      if (args.length !== 1) throw new BlaineError("usage: blaine disk retire LABEL [--force]", ExitCode.usage);
      return (await command.diskRetire()).retireDisk(settings, { label: args[0], force: Boolean(flags.force) }, output).exitCode;
    }
    if (action === "forget") {
      if (args.length !== 1) throw new BlaineError("usage: blaine disk forget LABEL --copy N|ID|DIR [--force]", ExitCode.usage);
      return (await command.diskForget()).forgetCopy(settings, { label: args[0], copy: singleFlag(flags, "copy"), force: Boolean(flags.force) }, output).exitCode;
    }
    if (action === "rebuild") {
      if (args.length !== 1) throw new BlaineError("usage: blaine disk rebuild DIR [--force] [--label NAME] [--copy ID]", ExitCode.usage);
      const choice = { label: singleFlag(flags, "label") as string | undefined, copy: singleFlag(flags, "copy") as string | undefined };
      return (await (await command.diskRebuild()).rebuildDisk(settings, { dir: args[0], force: Boolean(flags.force), ...choice }, output)).exitCode;
    }
    throw new BlaineError(`unknown disk action "${action}" (known: init, clone, list, forget, retire, rebuild)`, ExitCode.usage);
  }));

define("pending", () => common(cli.command("pending", "Deferred actions waiting for disks and copies that are not mounted"))
  .option("--disk <label>", "Only this disk's copies")
  .action(async (flags: Flags) => {
    const settings = (await command.archiveSettings()).loadSettings(flags);
    return (await command.pending()).listPending(settings, { disk: singleFlag(flags, "disk") }, createOutput(settings.json)).exitCode;
  }));

define("whereis", () => common(cli.command("whereis [...paths]", "Which disk (and which copies) hold archived paths, directories or globs")).action(async (paths: string[], flags: Flags) => {
  const settings = (await command.archiveSettings()).loadSettings(flags);
  return (await command.whereis()).whereIs(settings, paths, createOutput(settings.json)).exitCode;
}));

define("catalog", () => common(cli.command("catalog <action> [...dirs]", "catalog rebuild --db NEW DIR…: rebuild a lost host catalog from archive disks")).action(
  async (action: string, dirs: string[], flags: Flags) => {
    const settings = (await command.archiveSettings()).loadSettings(flags);
    if (action !== "rebuild") throw new BlaineError(`unknown catalog action "${action}" (known: rebuild)`, ExitCode.usage);
    return (await (await command.catalogRebuild()).rebuildCatalog(settings, dirs, createOutput(settings.json))).exitCode;
  },
));

define("status", () => common(cli.command("status", "Show the archive, its disks and the last run")).action(async (flags: Flags) => {
  const settings = (await command.archiveSettings()).loadSettings(flags);
  return (await command.status()).archiveStatus(settings, createOutput(settings.json)).exitCode;
}));

define("ls", () => common(cli.command("ls [...globs]", "List archived files (all, or matching paths/globs)")).action(async (globs: string[], flags: Flags) => {
  const settings = (await command.archiveSettings()).loadSettings(flags);
  return (await command.ls()).listFiles(settings, globs, createOutput(settings.json));
}));

define("verify", () => common(cli.command("verify", "Re-read every file on the mounted disks and check it against the catalog"))
  .option("--repair", "Repair damaged files from their PAR2 parity")
  .action(async (flags: Flags) => {
    const settings = (await command.archiveSettings()).loadSettings(flags);
    return (await (await command.verify()).verifyDisks(settings, createOutput(settings.json), undefined, { repair: Boolean(flags.repair) })).exitCode;
  }));

define("restore", () => common(cli.command("restore [...paths]", "Restore archived paths, directories or globs under --to DIR"))
  .option("--to <dir>", "Where to restore (files come back at DIR/<absolute path>)")
  .option("--overwrite", "Replace existing files")
  .action(async (paths: string[], flags: Flags) => {
    const settings = (await command.archiveSettings()).loadSettings(flags);
    const result = await (await command.restore()).restoreFiles(settings, { paths, to: singleFlag(flags, "to") as string, overwrite: Boolean(flags.overwrite) }, createOutput(settings.json));
    return result.exitCode;
  }));

// The block-image product: its options are its own (--db and --store from [image] of blaine.toml), none of the archive's disks.
define("image", () => cli
  .command("image <action> [...args]", "Block images: image backup|ls|restore|scrub|rm|protect|unprotect|cleanup|export|import")
  .option("--config <file>", "Settings file (default: ./blaine.toml; its [image] table)")
  .option("--db <catalog>", "The image catalog: an SQLite file (backup and import create it) or postgres://…; without it ls and restore read the store alone")
  .option("--keyfile <file>", "An encrypted store's key file (its first line is the password)")
  .option("--json", "Machine-readable output on stdout")
  .option("--store <store>", "Chunk store: a directory, s3://bucket/prefix (credentials from the environment or blaine.toml) or ssh://user@host[:port]/path")
  .option("--snapshot <name>", "backup: the snapshot's name, recorded with the version")
  .option("--label <label>", "backup: a KEY=VALUE label recorded with the version (repeatable)")
  .option("--hints <file>", "backup: change hints, rbd diff --format=json")
  .option("--from <version>", "backup: the base version (only changed blocks are stored)")
  .option("--block-size <size>", "backup: block size (default 4M)")
  .option("--compress <method>", "backup: zstd:LEVEL (default zstd:3) or none")
  .option("--sparse", "restore: write only blocks holding data")
  .option("--force", "restore: overwrite TARGET; rm: remove a version younger than --keep-days")
  .option("-p, --percent <percent>", "scrub: check a random PERCENT of the chunks")
  .option("--source <image>", "scrub: also compare the version with this image")
  .option("--keep-days <days>", "rm: versions younger than this need --force (default 6)")
  .option("--grace <duration>", "cleanup: how long removed versions' chunks are kept (default 1h)")
  .option("--full", "cleanup: also delete chunks no version references (from killed backups)")
  .action(async (action: string, args: string[], flags: Flags) => (await command.image()).runImageCommand(action, args, flags)));

// par2cmdline's short options (-r10, -s 4096) are parsed by the command itself, from the raw arguments.
define("par2", () => cli
  .command("par2 [action] [...args]", "PAR2 recovery sets: par2 create|verify|repair SET.par2 [FILE…] (par2cmdline's options)")
  .allowUnknownOptions()
  .action(async (action: string | undefined) => {
    const raw = process.argv.slice(2);
    return (await command.par2()).par2Command(action, raw.slice(raw.indexOf("par2") + 2), createOutput);
  }));

define("doctor", () => common(cli.command("doctor", "Check this machine: external tools, FUSE, device-mapper, the catalog and disks")).action(async (flags: Flags) => {
  const settings = (await command.archiveSettings()).loadSettings(flags);
  return (await (await command.doctor()).runDoctor(settings, createOutput(settings.json))).exitCode;
}));

define("mount", () => common(cli.command("mount <label> <mountpoint>", "Mount an encrypted disk read-only to browse it (LABEL or the disk's DIR)")).action(
  async (label: string, mountpoint: string, flags: Flags) => {
    const settings = (await command.archiveSettings()).loadSettings(flags);
    await (await command.mount()).mountDiskForBrowsing(settings, label, mountpoint, createOutput(settings.json));
    return ExitCode.ok;
  },
));

define("unmount", () => common(cli.command("unmount <mountpoint>", "Unmount a disk mounted with blaine mount")).action(
  async (mountpoint: string, flags: Flags) => {
    await (await command.mount()).unmountBrowsing(mountpoint, createOutput(Boolean(flags.json)));
    return ExitCode.ok;
  },
));

define("init", () => common(cli.command("init", "Set up an archive: questions on a terminal, or --yes with flags; writes blaine.toml"))
  .option("--yes", "Ask nothing: every answer from flags")
  .option("--source <dir>", "A directory to archive (repeatable)")
  .option("--exclude <glob>", "Exclude pattern (repeatable)")
  .option("--snapraid-conf <file>", "Also exclude what this SnapRAID config excludes")
  .option("--disk <dir>", "The first archive disk's directory")
  .option("--label <name>", "The first disk's label")
  .option("--capacity <size>", "The most data the first disk may hold (default: the whole disk)")
  .option("--encrypt <cipher>", "gocryptfs or securefs (with --keyfile FILE, created when missing)")
  .option("--parity <percent>", "PAR2 parity as a share of the data: PERCENT (10 or 10%; default 10%) or off")
  .option("--parity-engine <name>", "builtin (default), parpar or par2")
  .option("--copier <name>", "builtin (default) or dc3dd")
  .option("--force", "Replace an existing blaine.toml (--yes)")
  .action(async (flags: Flags) => (await (await command.init()).runInit(flags, createOutput(Boolean(flags.json)))).exitCode));

// The volume product: its archive's settings live in its catalog (--db) and on its destination.
define("volume", () => cli
  .command("volume [...args]", "Volume archives with sessions (sparsebak's verbs): volume arch-init|add|delete|list|send|receive|verify|prune|monitor|diff|arch-deduplicate|arch-delete")
  .option("--config <file>", "Settings file (default: ./blaine.toml; its [volume] table)")
  .option("--db <catalog>", "The archive's catalog: an SQLite file or postgres://… (the same catalog blaine image reads)")
  .option("--json", "Machine-readable output on stdout")
  .option("--source <source>", "arch-init: vg/pool (LVM thin) or a directory of image files (btrfs, XFS)")
  .option("--dest <dest>", "arch-init: internal:/path, s3://bucket/prefix or ssh://user@host[:port]/path")
  .option("--subdir <dir>", "arch-init: a directory below the destination")
  .option("--compression <method>", "arch-init: zstd:LEVEL (default zstd:3) or none")
  .option("--chunk-factor <n>", "arch-init: chunks of 64 KiB × 2^N (default 1: 128 KiB)")
  .option("--encrypt", "arch-init: encrypt the destination (AES-256-GCM, keyed chunk names) with --keyfile")
  .option("--keyfile <file>", "arch-init --encrypt: the key file (its first line); later verbs: where it is now, if it moved")
  .option("--session <session>", "receive, verify: YYYYMMDD-HHMMSS; prune: one session or a range DT,DT")
  .option("--all-before", "prune: every session before --session")
  .option("--save-to <path>", "receive: the file or device the volume is written to")
  .option("--force", "receive: write over an existing file or a block device")
  .option("--remap", "diff: add the differing chunks to the change map")
  .option("-u, --unattended", "delete, arch-delete: ask nothing")
  .action(async (args: string[], flags: Flags) => (await command.volume()).runVolume(args, flags, createOutput(Boolean(flags.json)))));

// The mirror product has its own configuration (mnemosyne's JSON), so none of the archive's common flags.
define("mirror", () => cli
  .command("mirror [...args]", "Encrypted mirrors with rotated snapshots: mirror init-key|init-store|backup|mount DIR|unmount|list|restore PATH --to DIR|verify-environment -c FILE.json")
  .option("-c, --config <file>", "The mirror's configuration (mnemosyne's JSON)")
  .option("--from <snapshot>", "restore: the snapshot KEY-YYYYMMDD-HHMMSS (default: the newest holding PATH)")
  .option("--to <dir>", "restore: where the file or directory is copied")
  .option("--json", "Machine-readable output on stdout")
  .option("--init-key", "mnemosyne's spelling of init-key")
  .option("--init-store", "mnemosyne's spelling of init-store")
  .option("--backup", "mnemosyne's spelling of backup")
  .option("--mount", "mnemosyne's spelling of mount")
  .option("--verify-environment", "mnemosyne's spelling of verify-environment")
  .action(async (args: string[], flags: Flags) => (await command.mirror()).runMirror(args, flags, createOutput(Boolean(flags.json)))));

const asked = definitions.get(process.argv[2] ?? "");
for (const definition of asked ? [asked] : definitions.values()) definition();
cli.help();
cli.version("0.1.0");

/**
 * cac camelCases option names before its parser sees them, so a dashed
 * boolean flag (`--dry-run`) would swallow the next argument as its value.
 * Writing such flags as `--flag=true` keeps positional arguments intact.
 */
function normaliseBooleanFlags(argv: readonly string[]): string[] {
  const dashedBooleans = new Set<string>();
  for (const command of [cli.globalCommand, ...cli.commands]) {
    for (const option of command.options) {
      const flag = option.rawName.split(/[ ,]/)[0];
      if (option.isBoolean && /^--\w+-/.test(flag)) dashedBooleans.add(flag);
    }
  }
  return argv.map((arg) => (dashedBooleans.has(arg) ? `${arg}=true` : arg));
}

/**
 * Unmounts what this process mounted. Only a command that mounts has loaded
 * unlock.ts (it does the mounting): any other (image, volume, mirror) would
 * load it and its system modules just to find nothing, 2 ms of every run.
 */
async function releaseDiskMounts(): Promise<void> {
  if (!(Bun.resolveSync("../lib/archive/disk/unlock.ts", import.meta.dir) in require.cache)) return;
  await (await import("../lib/archive/disk/unlock.ts")).releaseDiskMounts();
}

/**
 * par2cmdline reads its action from its own name (`par2create FILE…`), and
 * `par2 c FILE…` takes it first: under those names (bin/par2create.ts and
 * its siblings, or a compiled binary so named) this is `blaine par2`.
 */
async function runAsPar2(): Promise<number | undefined> {
  const name = (process.argv[1] ?? "").split("/").pop()!.replace(/\.(ts|js|exe)$/i, "");
  const match = /^par2(create|verify|repair)?$/i.exec(name);
  // par2cmdline's -V, -VV and -h come first, before any action (`par2 -V` probes for it): cac would take them as its own.
  const asked = /^(-V|-VV|--version|-h|--help)$/;
  if (!match && process.argv[2] === "par2" && asked.test(process.argv[3] ?? "")) return (await command.par2()).par2Command(process.argv[3], [], createOutput);
  if (!match) return undefined;
  const { par2Command } = await command.par2();
  const args = process.argv.slice(2);
  if (asked.test(args[0] ?? "")) return par2Command(args[0], [], createOutput);
  return match[1] ? par2Command(match[1], args, createOutput) : par2Command(args[0], args.slice(1), createOutput);
}

/**
 * cac's message with an option named as it was typed: cac camelCases names
 * before it checks them, so `--save-too` was reported as `--saveToo`.
 */
function asTyped(message: string): string {
  return message.replace(/`(--[^`=]+)`/, (quoted, name: string) => {
    // cac's own rule: a dash between two lower-case letters goes, the second letter up.
    const camel = (flag: string) => flag.replace(/([a-z])-([a-z])/g, (_, before: string, after: string) => before + after.toUpperCase());
    const typed = process.argv.map((arg) => arg.split("=")[0]).find((arg) => arg.startsWith("--") && camel(arg) === name);
    return typed ? `\`${typed}\`` : quoted;
  });
}

async function main(): Promise<number> {
  try {
    const asPar2 = await runAsPar2();
    if (asPar2 !== undefined) return asPar2;
    cli.parse(normaliseBooleanFlags(process.argv), { run: false });
    if (!cli.matchedCommand) {
      if (cli.options.help || cli.options.version) return ExitCode.ok;
      const name = cli.args[0];
      process.stderr.write(name ? `blaine: unknown command "${name}"\n` : "blaine: no command given\n");
      cli.outputHelp();
      return ExitCode.usage;
    }
    const code = await cli.runMatchedCommand();
    // Encrypted disks are unmounted here, after the command has closed its catalogs.
    await releaseDiskMounts();
    return typeof code === "number" ? code : ExitCode.ok;
  } catch (error) {
    await releaseDiskMounts().catch((unmountError) => process.stderr.write(`blaine: ${errorMessage(unmountError)}\n`));
    // SQLite's words name no file: said again naming the catalog and what to do.
    const explained = error instanceof Error && error.name === "SQLiteError" ? (await import("../lib/archive/catalog/catalog-errors.ts")).explainCatalogError(error) : undefined;
    if (explained) {
      process.stderr.write(`blaine: ${explained.message}\n${process.env.BLAINE_DEBUG && error instanceof Error ? `${error.stack}\n` : ""}`);
      return explained.exitCode;
    }
    if (error instanceof BlaineError) {
      process.stderr.write(`blaine: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof Error && error.name === "CACError") {
      process.stderr.write(`blaine: ${asTyped(error.message)}\n`);
      return ExitCode.usage;
    }
    process.stderr.write(`blaine: ${errorMessage(error)}\n${error instanceof Error && process.env.BLAINE_DEBUG ? error.stack : ""}`);
    return ExitCode.failure;
  }
}

process.exitCode = await main();
