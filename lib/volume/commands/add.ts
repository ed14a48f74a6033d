import type { Output } from "../../cli/output.ts";
import { BlaineError, ExitCode } from "../../errors.ts";
import { withArchive } from "../open-archive.ts";
import { checkVolumeName, openChangeSource } from "../sources/change-source.ts";
import type { VolumeSettings } from "../settings.ts";

/** `blaine volume add NAME`: the source must have the volume; its first send reads it whole. */
export async function addVolume(settings: VolumeSettings, name: string, output: Output): Promise<ExitCode> {
  checkVolumeName(name);
  return withArchive(settings, { store: false, write: true }, async ({ archive, volumes }) => {
    if (await volumes.volume(name)) throw new BlaineError(`the archive already has volume ${name}`, ExitCode.usage);
    await (await openChangeSource(archive.source)).check(name);
    await volumes.addVolume(name);
    output.say(`added volume ${name} of ${archive.source}`);
    output.result({ added: name });
    return ExitCode.ok;
  });
}
