/**
 * Example pipeline: a hash-only inventory of the sources, no copy. Writes
 * `inventory.<hash>` (in `sha1sum -c` format, so stock tools can check it)
 * into the first --dest directory, or the working directory.
 *
 *   blaine run pipelines/inventory.ts /data/photos --dest /tmp/inv
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { BlaineError, bytesOfText, ExitCode, hashEach, walk, writeFileAtomic, type PipelineContext } from "../lib/index.ts";

const NEWLINE = Buffer.from("\n");

export default async function inventory(context: PipelineContext): Promise<number> {
  const { settings, report, output } = context;
  const outDir = settings.dest[0] ?? process.cwd();
  // An archive disk holds only what its catalog lists: a stray file there would fail the next verify.
  if (existsSync(join(outDir, ".blaine", "disk.json"))) {
    throw new BlaineError(`${outDir} is an archive disk: give the inventory another directory (--dest DIR)`, ExitCode.usage);
  }
  const algorithm = settings.hash;
  const lines: Buffer[] = [];
  const onError = (path: string, message: string) => report.error(path, message);
  const files = walk(settings.sources, { signal: context.signal, onError });
  for await (const file of hashEach(files, { algorithm, signal: context.signal, onError })) {
    if (file.kind !== "file") continue;
    // sha1sum escapes names with a backslash or newline, and marks the line with a leading "\".
    const escaped = /[\\\n]/.test(file.path);
    const name = escaped ? file.path.replaceAll("\\", "\\\\").replaceAll("\n", "\\n") : file.path;
    // A name that is not UTF-8 is written as its real bytes (paths escape it: see bytesOfText).
    lines.push(Buffer.concat([Buffer.from(`${escaped ? "\\" : ""}${file.hash.slice(algorithm.length + 1)}  `), bytesOfText(name), NEWLINE]));
    report.done(file.size);
  }
  mkdirSync(outDir, { recursive: true });
  const target = join(outDir, `inventory.${algorithm}`);
  writeFileAtomic(target, Buffer.concat(lines));
  output.say(`Inventory of ${lines.length} files written to ${target}; ${report.errors.length} errors.`);
  output.result({ files: lines.length, inventory: target, errors: report.errors });
  return report.errors.length > 0 ? 1 : 0;
}
