import type { Output } from "../cli/output.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { loadMirrorConfig } from "./config.ts";

/**
 * `blaine mirror VERB -c FILE.json …`: the verb as a word, or as
 * mnemosyne's flag (`--backup`, `--init-key`, …), so its cron lines work.
 */
export const MIRROR_VERBS = ["init-key", "init-store", "backup", "mount", "unmount", "verify-environment", "list", "restore"] as const;
type MirrorVerb = (typeof MIRROR_VERBS)[number];

/** How many arguments each verb takes after it (mount DIR, unmount [DIR], restore PATH). */
const ARGUMENTS: Record<MirrorVerb, number> = { "init-key": 0, "init-store": 0, backup: 0, mount: 1, unmount: 1, "verify-environment": 0, list: 0, restore: 1 };

/** mnemosyne's flags, as cac hands them over (camelCased). */
const FLAG_VERBS: Record<string, MirrorVerb> = { initKey: "init-key", initStore: "init-store", backup: "backup", mount: "mount", verifyEnvironment: "verify-environment" };

function single(value: unknown, option: string): string | undefined {
  if (value === undefined || value === false) return undefined;
  if (Array.isArray(value)) throw new UsageError(`${option} given more than once`);
  return String(value);
}

export async function runMirror(args: readonly string[], flags: Readonly<Record<string, unknown>>, output: Output): Promise<number> {
  const fromFlags = Object.entries(FLAG_VERBS).filter(([flag]) => flags[flag] === true || flags[flag] === "true").map(([, verb]) => verb);
  const word = args[0] !== undefined && (MIRROR_VERBS as readonly string[]).includes(args[0]) ? (args[0] as MirrorVerb) : undefined;
  const verbs = [...(word ? [word] : []), ...fromFlags];
  if (verbs.length !== 1) {
    throw new UsageError(
      verbs.length === 0
        ? `blaine mirror needs one of: ${MIRROR_VERBS.join(", ")}${args[0] ? ` ("${args[0]}" is none)` : ""}`
        : `blaine mirror: one verb at a time (given ${verbs.join(", ")})`,
    );
  }
  const verb = verbs[0];
  const rest = word ? args.slice(1) : args;
  if (rest.length > ARGUMENTS[verb]) throw new UsageError(`blaine mirror ${verb}: unexpected argument "${rest[ARGUMENTS[verb]]}"`);
  const configFile = single(flags.config ?? flags.c, "--config");
  // verify-environment reports an invalid configuration among its checks (exit 1), with the rest.
  if (verb === "verify-environment") return (await import("./commands/verify-environment.ts")).verifyEnvironment(configFile, output);
  const config = loadMirrorConfig(configFile);
  switch (verb) {
    case "init-key":
      return (await import("./commands/init-key.ts")).initKey(config, output);
    case "init-store":
      return (await import("./commands/init-store.ts")).initStore(config, output);
    case "backup":
      return (await import("./commands/backup.ts")).backupMirror(config, output);
    case "mount":
      return (await import("./commands/browse.ts")).mountMirror(config, rest[0], output);
    case "unmount":
      return (await import("./commands/browse.ts")).unmountMirror(config, rest[0], output);
    case "list":
      return (await import("./commands/list.ts")).listMirror(config, output);
    case "restore":
      if (rest.length !== 1) throw new UsageError("usage: blaine mirror restore -c FILE.json PATH [--from KEY-YYYYMMDD-HHMMSS] --to DIR");
      return (await import("./commands/restore.ts")).restoreFromMirror(config, { path: rest[0], from: single(flags.from, "--from"), to: single(flags.to, "--to") }, output);
  }
  return ExitCode.usage;
}
