import { ArchiveCatalog } from "../catalog/archive-catalog.ts";
import { requireDb, type Settings } from "../settings.ts";
import { listDeferred } from "../catalog/deferred-actions-table.ts";
import { ExitCode, UsageError, type ExitCode as ExitCodeValue } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import { quotedPath } from "../../fs/byte-names.ts";

/**
 * `blaine pending [--disk LABEL]`: the deferred actions waiting for disks
 * and copies that are not mounted, oldest first, with the last error of any
 * that could not be applied. Reads the host catalog only.
 */
export function listPending(settings: Settings, options: { readonly disk?: string }, output?: Output): { exitCode: ExitCodeValue; actions: unknown[] } {
  const catalog = ArchiveCatalog.open(requireDb(settings), { readonly: true });
  try {
    if (options.disk && !catalog.disks.byLabel(options.disk)) {
      throw new UsageError(`--disk ${options.disk}: the archive has no disk with that label`);
    }
    const actions = listDeferred(catalog, options.disk).map((action) => ({
      id: action.id,
      disk: action.disk,
      copy: action.copyId,
      op: action.op,
      path: action.path,
      ...(action.fromPath ? { from: action.fromPath } : {}),
      ...(action.record ? { hash: action.record.hash, size: action.record.size } : {}),
      queued: new Date(action.createdAt).toISOString(),
      lastError: action.lastError,
    }));
    if (output) {
      for (const action of actions) {
        const what = action.op === "rename" ? `${quotedPath(action.from ?? "")} -> ${quotedPath(action.path)}` : quotedPath(action.path);
        output.say(`${action.disk} (copy ${action.copy.slice(0, 8)}): ${action.op} ${what}${action.lastError ? `  [failed: ${action.lastError}]` : ""}`);
      }
      output.say(`${actions.length} pending action(s)${options.disk ? ` for disk "${options.disk}"` : ""}.`);
      output.result({ pending: actions.length, actions });
    }
    return { exitCode: ExitCode.ok, actions };
  } finally {
    catalog.close();
  }
}
