import { camel, singleFlag, type Flags } from "../config.ts";
import type { Output } from "../cli/output.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { loadVolumeSettings } from "./settings.ts";

/**
 * `blaine volume VERB …` (sparsebak's verbs): options may come before or
 * after the verb; every verb takes --config, --db and --json. Each verb's
 * module is loaded when it runs.
 */
export const VOLUME_USAGE: Record<string, string> = {
  "arch-init": "arch-init --source vg/pool|DIR --dest internal:/path|s3://bucket/prefix|ssh://user@host[:port]/path [--subdir DIR] [--compression zstd:N|none] [--chunk-factor N] [--encrypt --keyfile FILE]",
  add: "add NAME",
  delete: "delete NAME [-u]",
  list: "list [NAME]",
  send: "send [NAME…]",
  receive: "receive NAME --save-to PATH [--session YYYYMMDD-HHMMSS] [--force]",
  verify: "verify NAME [--session YYYYMMDD-HHMMSS]",
  prune: "prune [NAME…] --session DT[,DT] | --all-before --session DT",
  monitor: "monitor",
  diff: "diff NAME [--remap]",
  "arch-deduplicate": "arch-deduplicate",
  "arch-delete": "arch-delete [-u]",
};

/**
 * The options each verb takes besides --config, --db, --json and --keyfile
 * (where the key file is now, for any verb that reads the destination). An
 * option the verb does not take is refused, never ignored: `delete vm1
 * --session DT` deleted the whole volume when --session was passed over.
 */
const VERB_OPTIONS: Record<string, readonly string[]> = {
  "arch-init": ["source", "dest", "subdir", "compression", "chunk-factor", "encrypt"],
  add: [],
  delete: ["unattended"],
  list: [],
  send: [],
  receive: ["save-to", "session", "force"],
  verify: ["session"],
  prune: ["session", "all-before"],
  monitor: [],
  diff: ["remap"],
  "arch-deduplicate": [],
  "arch-delete": ["unattended"],
};
const COMMON_OPTIONS = ["config", "db", "json", "keyfile"];
/** Short forms cac also reports under their own key. */
const SHORT_OPTIONS: Record<string, string> = { u: "unattended" };

function checkOptions(verb: string, flags: Flags): void {
  const allowed = new Set([...COMMON_OPTIONS, ...VERB_OPTIONS[verb]!].map(camel));
  for (const key of Object.keys(flags)) {
    if (key === "--" || flags[key] === undefined || allowed.has(camel(SHORT_OPTIONS[key] ?? key))) continue;
    const name = key.length === 1 ? `-${key}` : `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
    throw new UsageError(`blaine volume ${verb} does not take ${name}: usage: blaine volume ${VOLUME_USAGE[verb]}`);
  }
}

function expect(verb: string, args: readonly string[], min: number, max = min): void {
  if (args.length < min || args.length > max) throw new UsageError(`usage: blaine volume ${VOLUME_USAGE[verb]}`);
}

export async function runVolume(args: readonly string[], flags: Flags, output: Output): Promise<ExitCode> {
  const [verb, ...rest] = args;
  if (!verb || VOLUME_USAGE[verb] === undefined) {
    throw new UsageError(`blaine volume needs one of: ${Object.keys(VOLUME_USAGE).join(", ")}${verb ? ` ("${verb}" is none)` : ""}`);
  }
  checkOptions(verb, flags);
  const settings = loadVolumeSettings(flags);
  const session = singleFlag(flags, "session");
  switch (verb) {
    case "arch-init": {
      expect(verb, rest, 0);
      const source = singleFlag(flags, "source");
      const dest = singleFlag(flags, "dest");
      if (!source || !dest) throw new UsageError(`usage: blaine volume ${VOLUME_USAGE[verb]}`);
      const { resolve } = await import("node:path");
      const { existsSync } = await import("node:fs");
      // A directory may be given relative to here; vg/pool is a name.
      const request = { source: existsSync(source) ? resolve(source) : source, dest, subdir: singleFlag(flags, "subdir"), compression: singleFlag(flags, "compression"), chunkFactor: singleFlag(flags, "chunk-factor"), encrypt: Boolean(flags.encrypt) };
      return (await import("./commands/arch-init.ts")).archInit(settings, request, output);
    }
    case "add":
      expect(verb, rest, 1);
      return (await import("./commands/add.ts")).addVolume(settings, rest[0]!, output);
    case "delete":
      expect(verb, rest, 1);
      return (await import("./commands/delete.ts")).deleteVolume(settings, rest[0]!, output);
    case "list":
      expect(verb, rest, 0, 1);
      return (await import("./commands/list.ts")).listVolumes(settings, rest[0], output);
    case "send":
      return (await import("./commands/send.ts")).sendVolumes(settings, rest, output);
    case "receive":
      expect(verb, rest, 1);
      return (await import("./commands/receive.ts")).receiveVolume(settings, { name: rest[0]!, saveTo: singleFlag(flags, "save-to"), session, force: Boolean(flags.force) }, output);
    case "verify":
      expect(verb, rest, 1);
      return (await import("./commands/verify.ts")).verifyVolume(settings, { name: rest[0]!, session }, output);
    case "prune":
      return (await import("./commands/prune.ts")).pruneVolumes(settings, { names: rest, session, allBefore: Boolean(flags.allBefore) }, output);
    case "monitor":
      expect(verb, rest, 0);
      return (await import("./commands/monitor.ts")).monitorVolumes(settings, output);
    case "diff":
      expect(verb, rest, 1);
      return (await import("./commands/diff.ts")).diffVolume(settings, { name: rest[0]!, remap: Boolean(flags.remap) }, output);
    case "arch-deduplicate":
      expect(verb, rest, 0);
      return (await import("./commands/archive-maintenance.ts")).deduplicateArchive(settings, output);
    case "arch-delete":
      expect(verb, rest, 0);
      return (await import("./commands/archive-maintenance.ts")).deleteArchive(settings, output);
  }
  return ExitCode.usage;
}
