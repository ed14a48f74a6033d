import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/**
 * The test S3 server's process (started by s3rver.ts): s3rver on 127.0.0.1,
 * its objects in DIRECTORY, one BUCKET; prints its address as JSON.
 *
 * s3rver 3.7.1's filesystem store answers a PUT (and an upload's part) once
 * the body has passed its MD5 transform, not once its write stream has
 * written it, and writes the object's file in place (truncated, then
 * filled): a GET right after the answer read an empty object in a fifth of
 * PUT-then-GET rounds, and a GET during a PUT a short one. S3 reads what a
 * PUT wrote once it answered, and the old object whole meanwhile; Blaine
 * relies on that. So both writes here go to a temp file, awaited to the end,
 * renamed over the object, and only then answered.
 */
const [directory, bucket] = process.argv.slice(2);
const S3RVER = join(import.meta.dir, "..", "..", "node_modules", "s3rver");
const require = createRequire(import.meta.url);
const S3rver = require(S3RVER);
const FilesystemStore = require(join(S3RVER, "lib", "stores", "filesystem.js"));

let temps = 0;

/** The body written whole to `path` (through a temp renamed over it); its size and MD5. An aborted body leaves `path` as it was. */
async function writeWhole(content: Readable | Buffer, path: string): Promise<{ size: number; md5: string }> {
  await mkdir(dirname(path), { recursive: true });
  // Not ending in s3rver's "._S3rver_object": its listings never show a temp.
  const temp = `${path}.${++temps}.writing`;
  const md5 = createHash("md5");
  let size = 0;
  try {
    if (Buffer.isBuffer(content)) {
      await writeFile(temp, content);
      md5.update(content);
      size = content.length;
    } else {
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          md5.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      await pipeline(content, counted, createWriteStream(temp));
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  return { size, md5: md5.digest("hex") };
}

FilesystemStore.prototype.putObject = async function (object: { bucket: string; key: string; content: Readable | Buffer; metadata: Record<string, string> }) {
  const { size, md5 } = await writeWhole(object.content, this.getResourcePath(object.bucket, object.key, "object"));
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size, md5 };
};

FilesystemStore.prototype.putPart = async function (bucketName: string, uploadId: string, partNumber: number, content: Readable | Buffer) {
  const partPath = join(this.getResourcePath(bucketName, undefined, "uploads"), uploadId, String(partNumber));
  const { size, md5 } = await writeWhole(content, partPath);
  await writeFile(`${partPath}.md5`, md5);
  return { size, md5 };
};

const address = await new S3rver({ port: 0, address: "127.0.0.1", directory, silent: true, configureBuckets: [{ name: bucket }] }).run();
console.log(JSON.stringify(address));
