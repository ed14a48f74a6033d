import { BlaineError, ExitCode } from "../../errors.ts";
import type { Output } from "../../cli/output.ts";
import type { ImageSettings } from "../settings.ts";
import { removeVersionAndDoc } from "../version-removal.ts";
import { openImageStore, withCatalog } from "./open-image.ts";

const DAY_MS = 86_400_000;

/**
 * `blaine image rm VERSION [--force]`: a protected version is refused, and
 * so is one younger than --keep-days (default 6) without --force, invalid
 * ones too (a scrub found a bad chunk, the rest of it still restores) but
 * for an incomplete one: a backup that did not finish, never a base, whose
 * removal is the way to tidy after it.
 * Its chunks become deletion candidates; cleanup frees those no other
 * version references once their grace period is over.
 */
export async function removeImageVersion(settings: ImageSettings, given: string, force: boolean, output: Output): Promise<ExitCode> {
  const store = await openImageStore(settings, { create: false });
  return withCatalog(settings, false, async (catalog) => {
    const version = await catalog.requireVersion(given);
    if (version.protected) throw new BlaineError(`version ${version.uid} is protected; blaine image unprotect ${version.uid} first`, ExitCode.usage);
    const ageDays = (Date.now() - version.date) / DAY_MS;
    if (version.status !== "incomplete" && ageDays < settings.keepDays && !force) {
      throw new BlaineError(
        `version ${version.uid} is ${ageDays.toFixed(1)} days old, younger than --keep-days ${settings.keepDays}; give --force to remove it anyway`,
        ExitCode.usage,
      );
    }
    await removeVersionAndDoc(catalog, store, version.uid);
    output.say(`removed version ${version.uid} (${version.name}); its chunks are freed by blaine image cleanup after the grace period`);
    output.result({ removed: version.uid });
    return ExitCode.ok;
  });
}

/** `blaine image protect|unprotect VERSION`. */
export async function protectImageVersion(settings: ImageSettings, given: string, flag: boolean, output: Output): Promise<ExitCode> {
  return withCatalog(settings, false, async (catalog) => {
    const version = await catalog.requireVersion(given);
    await catalog.setProtected(version.uid, flag);
    output.say(`version ${version.uid} is ${flag ? "protected" : "no longer protected"}`);
    output.result({ uid: version.uid, protected: flag });
    return ExitCode.ok;
  });
}
