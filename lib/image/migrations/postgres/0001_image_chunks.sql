CREATE TABLE "image_chunks" (
	"hash" text PRIMARY KEY NOT NULL,
	"size" bigint NOT NULL,
	"valid" integer DEFAULT 1 NOT NULL
);
--> statement-breakpoint
DROP INDEX "image_blocks_hash_idx";--> statement-breakpoint
-- Catalogs written before this table: every chunk a block references counts as stored (cleanup --full checks the store).
INSERT INTO "image_chunks" ("hash", "size", "valid") SELECT "hash", 0, MIN("valid") FROM "image_blocks" WHERE "hash" IS NOT NULL GROUP BY "hash";
