import { zx } from "./exec.ts";

/**
 * Runs this same `blaine` as a child on the caller's terminal (stdio
 * inherited), for a step that must see exactly what a later command would,
 * with none of this process' open catalogs or mounts: `blaine init`'s dry run.
 */
export async function runBlaineChild(args: readonly string[]): Promise<number> {
  const $ = await zx();
  const result = await $({ stdio: "inherit" })`${process.execPath} ${Bun.main} ${args}`.nothrow();
  return result.exitCode ?? 1;
}
