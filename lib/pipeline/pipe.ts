/** Pulls a pipeline to its end; the sink that makes every stage run. */
export async function drain<T>(source: AsyncIterable<T>): Promise<number> {
  let count = 0;
  for await (const _ of source) count++;
  return count;
}
