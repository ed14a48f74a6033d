import { ImageCatalog } from "../catalog/image-catalog.ts";
import { openImageSql } from "../catalog/sql.ts";
import { requireImageDb, requireStore, type ImageSettings } from "../settings.ts";
import { openStore, type ChunkStore } from "../store/chunk-store.ts";

/** The image catalog of --db (created on first use by the commands that write). */
export async function openImageCatalog(settings: ImageSettings, options: { create: boolean }): Promise<ImageCatalog> {
  return new ImageCatalog(await openImageSql(requireImageDb(settings), options));
}

/** Stores this command opened: closed when it ends (the ssh store holds a connection). */
const openedStores: ChunkStore[] = [];

/** The chunk store of --store (a directory is made an empty store on first backup), closed by `closeImageStores`. */
export async function openImageStore(settings: ImageSettings, options: { create: boolean }): Promise<ChunkStore> {
  const store = await openStore(requireStore(settings), { create: options.create, s3: settings.s3, keyfile: settings.keyfile });
  openedStores.push(store);
  return store;
}

/** Closes every store `openImageStore` opened (at the end of a command, whatever its outcome). */
export async function closeImageStores(): Promise<void> {
  for (const store of openedStores.splice(0)) await store.close().catch(() => {});
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
