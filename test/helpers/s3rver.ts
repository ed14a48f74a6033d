import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";

/**
 * A real S3 server for tests: the s3rver package (a devDependency) run by
 * Bun in a child process (s3rver-child.ts: its PUTs answered once written,
 * as S3's are) on 127.0.0.1, its objects in a temp directory, one bucket.
 * Credentials S3RVER/S3RVER, handed to children in the environment.
 */
export interface TestS3 {
  readonly endpoint: string;
  readonly bucket: string;
  /** The environment `blaine image` needs to reach it. */
  readonly env: Record<string, string>;
  readonly client: Bun.S3Client;
  stop(): void;
}

const S3RVER = join(import.meta.dir, "..", "..", "node_modules", "s3rver");

export function s3Missing(): string | undefined {
  try {
    require.resolve(S3RVER);
    return undefined;
  } catch {
    return "the s3rver package is not installed (bun install)";
  }
}

export async function startS3(bucket = "images"): Promise<TestS3> {
  const directory = mkdtempSync("/tmp/blaine-s3-");
  const child = Bun.spawn(["bun", join(import.meta.dir, "s3rver-child.ts"), directory, bucket], { stdout: "pipe", stderr: "inherit", stdin: "ignore" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("s3rver exited before it listened");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const { port } = JSON.parse(text.split("\n")[0]) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const env = { S3_ENDPOINT: endpoint, S3_ACCESS_KEY_ID: "S3RVER", S3_SECRET_ACCESS_KEY: "S3RVER" };
  return {
    endpoint,
    bucket,
    env,
    client: new Bun.S3Client({ endpoint, bucket, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }),
    stop() {
      child.kill();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
