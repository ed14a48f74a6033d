import { ImageCatalog } from "../catalog/image-catalog.ts";
import { openImageSql } from "../catalog/sql.ts";
import { requireImageDb, requireStore, type ImageSettings } from "../settings.ts";
import { openStore, type ChunkStore } from "../store/chunk-store.ts";

/** The image catalog of --db (created on first use by the commands that write). */
export async function openImageCatalog(settings: ImageSettings, options: { create: boolean }): Promise<ImageCatalog> {
  return new ImageCatalog(await openImageSql(requireImageDb(settings), options));
}

/** The chunk store of --store (a directory is made an empty store on first backup). */
export async function openImageStore(settings: ImageSettings, options: { create: boolean }): Promise<ChunkStore> {
  return openStore(requireStore(settings), { create: options.create, s3: settings.s3 });
}

/** Runs `fn` with the catalog open, closing it after. */
export async function withCatalog<T>(settings: ImageSettings, create: boolean, fn: (catalog: ImageCatalog) => Promise<T>): Promise<T> {
  const catalog = await openImageCatalog(settings, { create });
  try {
    return await fn(catalog);
  } finally {
    await catalog.close();
  }
}
