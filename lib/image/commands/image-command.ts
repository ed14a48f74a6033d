import { list, singleFlag, type Flags } from "../../config.ts";
import { createOutput } from "../../cli/output.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import { loadImageSettings } from "../settings.ts";

/** What each `blaine image` action takes, for usage errors. */
const USAGE: Record<string, string> = {
  backup: "backup SOURCE NAME [--snapshot NAME] [--label KEY=VALUE…] [--hints FILE] [--from VERSION] [--block-size SIZE] [--compress zstd:N|none]",
  ls: "ls [NAME]",
  restore: "restore VERSION TARGET [--sparse] [--force]",
  scrub: "scrub VERSION… [-p PERCENT] [--source IMAGE]",
  rm: "rm VERSION [--force] [--keep-days N]",
  protect: "protect VERSION",
  unprotect: "unprotect VERSION",
  cleanup: "cleanup [--full] [--grace DURATION]",
  export: "export VERSION FILE",
  import: "import FILE|UID",
};

function expect(action: string, args: readonly string[], min: number, max = min): void {
  if (args.length < min || args.length > max) throw new UsageError(`usage: blaine image ${USAGE[action]}`);
}

/** `blaine image ACTION …`: parses the action's arguments and runs it (each action's module loaded on use). */
export async function runImageCommand(action: string, args: string[], flags: Flags): Promise<ExitCode> {
  try {
    return await runAction(action, args, flags);
  } finally {
    // Loaded only now: an action that opened a store has loaded it already.
    await (await import("./open-image.ts")).closeImageStores();
  }
}

async function runAction(action: string, args: string[], flags: Flags): Promise<ExitCode> {
  const settings = loadImageSettings(flags);
  const output = createOutput(settings.json);
  switch (action) {
    case "backup": {
      expect(action, args, 2);
      const labels: Record<string, string> = {};
      for (const label of list(flags.label)) {
        const at = label.indexOf("=");
        if (at < 1) throw new UsageError(`--label: "${label}" is not KEY=VALUE`);
        labels[label.slice(0, at)] = label.slice(at + 1);
      }
      // The block workers first: their threads boot while the backup's modules load and its catalog opens. None
      // for hints over a base: that may be a small change, whose pool openImageBackup makes to fit once it knows.
      const from = singleFlag(flags, "from");
      const hints = singleFlag(flags, "hints");
      const { BACKUP_SLOT_BYTES, BlockWorkers } = await import("../workers/block-workers.ts");
      const workers = from && hints ? undefined : new BlockWorkers(settings.blockSize, { slots: BlockWorkers.slotsWithin(BACKUP_SLOT_BYTES, settings.blockSize) });
      const request = { source: args[0], name: args[1], snapshot: singleFlag(flags, "snapshot"), hints, from, labels, workers };
      try {
        const { backupImage } = await import("./backup.ts");
        return (await backupImage(settings, request, output)).exitCode;
      } finally {
        workers?.close();
      }
    }
    case "ls":
      expect(action, args, 0, 1);
      return (await import("./ls.ts")).listImageVersions(settings, args[0], output);
    case "restore": {
      expect(action, args, 2);
      // The block workers first (for the usual block size): their threads boot while the restore's modules load,
      // its catalog opens and the version is looked up.
      const { BlockWorkers, RESTORE_POOL } = await import("../workers/block-workers.ts");
      const workers = new BlockWorkers(settings.blockSize, RESTORE_POOL);
      const request = { version: args[0], target: args[1], sparse: Boolean(flags.sparse), force: Boolean(flags.force), workers };
      try {
        return (await (await import("./restore.ts")).restoreImage(settings, request, output)).exitCode;
      } finally {
        workers.close();
      }
    }
    case "scrub": {
      expect(action, args, 1, Number.MAX_SAFE_INTEGER);
      const percentText = singleFlag(flags, "percent");
      const percent = percentText === undefined ? undefined : Number(percentText.replace(/%$/, ""));
      if (percent !== undefined && !Number.isFinite(percent)) throw new UsageError(`-p: "${percentText}" is not a percentage`);
      return (await (await import("./scrub.ts")).scrubImages(settings, { versions: args, percent, source: singleFlag(flags, "source") }, output)).exitCode;
    }
    case "rm":
      expect(action, args, 1);
      return (await import("./versions.ts")).removeImageVersion(settings, args[0], Boolean(flags.force), output);
    case "protect":
    case "unprotect":
      expect(action, args, 1);
      return (await import("./versions.ts")).protectImageVersion(settings, args[0], action === "protect", output);
    case "cleanup":
      expect(action, args, 0);
      await (await import("./cleanup.ts")).cleanupImages(settings, Boolean(flags.full), output);
      return ExitCode.ok;
    case "export":
      expect(action, args, 2);
      return (await import("./export-import.ts")).exportImageVersion(settings, args[0], args[1], output);
    case "import":
      expect(action, args, 1);
      return (await import("./export-import.ts")).importImageVersion(settings, args[0], output);
    default:
      throw new UsageError(`unknown image action "${action}" (known: ${Object.keys(USAGE).join(", ")})`);
  }
}
