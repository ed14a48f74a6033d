import type { Planner } from "../run/planner.ts";
import type { PlannedFile } from "./types.ts";

export interface PlanOptions {
  /** The run's planner (ArchiveRun.planner): the one owner of how and where each file is stored. */
  readonly planner: Pick<Planner, "plan">;
}

/**
 * Says how each file's data reaches the disk before any of it moves (see
 * Planner.plan): a hardlink to content the archive holds (nothing copied),
 * a symlink made again, a rename, or a copy.
 */
export async function* plan(items: AsyncIterable<PlannedFile>, options: PlanOptions): AsyncGenerator<PlannedFile> {
  for await (const item of items) yield options.planner.plan(item);
}
