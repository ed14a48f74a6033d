/**
 * Blaine's public surface: what pipeline scripts and other programs import.
 * Everything not exported here is internal and may change.
 */

// Stages, in pipeline order, with every type their options name.
export { walk, type WalkOptions } from "./archive/stages/walker.ts";
export type { ExcludeRule } from "./glob.ts";
export { diff, MATCH_MODES, type DiffOptions, type MatchMode } from "./archive/stages/differ.ts";
export type { SeenPaths } from "./archive/catalog/seen-paths.ts";
export type { UnseenFile } from "./archive/catalog/files-table.ts";
export type { InodeRefresh } from "./archive/catalog/inode-refresh.ts";
export { hashEach, hashWhereDuplicatePossible, type HashOptions, type HashEachOptions } from "./archive/stages/hasher.ts";
export { plan, type PlanOptions } from "./archive/stages/plan.ts";
export type { Planner, PlannerView, Placement, FileChange, StoredAs, UnneededTemp, ArchiveHolder } from "./archive/run/planner.ts";
export { copier, type CopierOptions, type CopyFunction, type CopyManyFunction } from "./archive/stages/copier.ts";
export type { CopyRequest, CopyResult, CopySettled } from "./copy/builtin-copy.ts";
export type { ChecksumRequest, FileChecksums } from "./copy/digest-ring.ts";
export type { SpaceBudget, Reservation } from "./archive/disk/space-budget.ts";
export { parity, type ParityOptions } from "./archive/stages/parity.ts";
export type { ParityPolicy, StoredSet } from "./archive/disk/parity-store.ts";
export { writeManifest, type ManifestWriterOptions } from "./archive/stages/manifest-writer.ts";
export type { ArchiveWriter, ChangeWriter, PlacementOutcome } from "./archive/run/archive-writer.ts";
export type { RunLinks } from "./archive/catalog/run-links.ts";
export type { DiskChange, LinkSource, ChangeOutcome } from "./archive/disk/disk-writer.ts";
export type { DeferredChange } from "./archive/catalog/host-files.ts";
export type { Content, Held } from "./archive/catalog/content-holders.ts";

// Composing them.
export { mapBounded, batches, type MapBoundedOptions } from "./pipeline/bounded.ts";
export { drain } from "./pipeline/pipe.ts";
export type { FileEntry, PlannedFile, StoredFile, Change } from "./archive/stages/types.ts";
export type { Pipeline, PipelineContext } from "./archive/run/pipeline-context.ts";

// A run of the archive pipeline: its stages' options, and its end (ArchiveRun.finish, the sink).
export { openArchiveRun, type ArchiveRun, type OpenRunOptions } from "./archive/run/run-context.ts";
export type { RunResult } from "./archive/run/finish-run.ts";
export { RunReport, type RunCounts, type RunError } from "./archive/run/report.ts";

// Catalogs and disks.
export { ArchiveCatalog } from "./archive/catalog/archive-catalog.ts";
export type { FileRecord, HostFileRow } from "./archive/catalog/records.ts";
export { MountedDisk } from "./archive/disk/mounted-disk.ts";
export { readDiskLabel, type DiskLabel } from "./archive/disk/disk-label.ts";
// Encrypted disks: scripts that open disks outside `blaine run` release the mounts when done.
export { releaseDiskMounts } from "./archive/disk/unlock.ts";
export { KeySource } from "./secrets/key-source.ts";
export { diskLayout, BLAINE_DIR } from "./archive/disk/layout.ts";

// Commands as functions.
export { initDisk } from "./archive/commands/disk-init.ts";
export { restoreFiles, type RestoreResult } from "./archive/commands/restore.ts";
export { verifyDisks, type VerifyResult } from "./archive/commands/verify.ts";
export { cloneDisk, type CloneResult } from "./archive/commands/disk-clone.ts";
export { listDisks, type DiskListing } from "./archive/commands/disk-list.ts";
export { retireDisk, type RetireResult } from "./archive/commands/disk-retire.ts";
export { listPending } from "./archive/commands/pending.ts";
export { whereIs, type WhereIs } from "./archive/commands/whereis.ts";
export { rebuildCatalog, type RebuildResult } from "./archive/commands/catalog-rebuild.ts";
export { applyDeferred, type ApplyDeferredResult } from "./archive/disk/apply-deferred.ts";

// PAR2 recovery sets (the built-in engine).
export { createRecoverySet, type CreatedSet, type CreateOptions } from "./par2/create.ts";
export { verifyRecoverySet, type SetCheck } from "./par2/verify.ts";
export { repairRecoverySet, type RepairResult } from "./par2/repair.ts";

// Block images (blaine image): the backup's stages in pipeline order, its run, catalog and stores.
export { allocatedBlocks, everyBlock, hintedBlockRefs } from "./image/stages/block-ranges.ts";
export { readBlocks, type ReadBlocksOptions } from "./image/stages/read-blocks.ts";
export { dedupBlocks, type DedupBlocksOptions } from "./image/stages/dedup-blocks.ts";
export { encodeChunks, type EncodeChunksOptions } from "./image/stages/encode-chunks.ts";
export { storeChunks, type StoreChunksOptions } from "./image/stages/store-chunks.ts";
export { writeVersionBlocks, type VersionWriterOptions } from "./image/stages/version-writer.ts";
export type { BlockRef, ReadBlock, PlannedBlock, EncodedBlock } from "./image/stages/types.ts";
export { openImageBackup, finishImageBackup, abandonImageBackup, type ImageBackupRun, type ImageBackupRequest, type ImageBackupResult } from "./image/backup-run.ts";
export { readHints, hintedBlocks, type Hint } from "./image/hints.ts";
export { ImageCatalog, type VersionRow, type BlockRow } from "./image/catalog/image-catalog.ts";
export { openImageSql, type ImageSql } from "./image/catalog/sql.ts";
export { openStore, type ChunkStore, type OpenStoreOptions, type S3Settings } from "./image/store/chunk-store.ts";
export { openEncryptedStore, type StoreKey } from "./image/store/encrypted-store.ts";
export { encodeChunk, decodeChunk, parseCompression, type Compression } from "./image/store/chunk-format.ts";
export { versionDocText, parseVersionDoc } from "./image/version-doc.ts";
export { removeVersionAndDoc, settleVersionDocs } from "./image/version-removal.ts";
export { loadImageSettings, type ImageSettings } from "./image/settings.ts";
export { restoreImage, type RestoreImageResult } from "./image/commands/restore.ts";
export { scrubImages, type ScrubResult } from "./image/commands/scrub.ts";
export { cleanupImages, type CleanupResult } from "./image/commands/cleanup.ts";

// Settings and helpers.
export { loadSettings, type Settings } from "./archive/settings.ts";
export { BlaineError, ExitCode } from "./errors.ts";
export { hashFile, type HashAlgorithm } from "./hashing.ts";
export { copyWithHash } from "./copy/builtin-copy.ts";
export { parseSize, formatBytes } from "./size.ts";
export { globToRegExp } from "./glob.ts";
export { writeFileAtomic } from "./fs/atomic.ts";
// Paths are strings; a name that is not UTF-8 is escaped in them (see byte-names.ts): open it through fsPath.
export { fsPath, bytesOfText, textFromBytes, quotedPath } from "./fs/byte-names.ts";
