CREATE TABLE "image_blocks" (
	"version_uid" text NOT NULL,
	"idx" integer NOT NULL,
	"hash" text,
	"size" bigint NOT NULL,
	"valid" integer DEFAULT 1 NOT NULL,
	CONSTRAINT "image_blocks_version_uid_idx_pk" PRIMARY KEY("version_uid","idx")
);
--> statement-breakpoint
CREATE TABLE "image_deleted_chunks" (
	"hash" text PRIMARY KEY NOT NULL,
	"since" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "image_deleting_chunks" (
	"hash" text PRIMARY KEY NOT NULL,
	"since" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "image_pending_chunks" (
	"hash" text NOT NULL,
	"version_uid" text NOT NULL,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"since" bigint NOT NULL,
	CONSTRAINT "image_pending_chunks_hash_version_uid_pk" PRIMARY KEY("hash","version_uid")
);
--> statement-breakpoint
CREATE TABLE "image_versions" (
	"uid" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"snapshot" text DEFAULT '' NOT NULL,
	"date" bigint NOT NULL,
	"size" bigint NOT NULL,
	"block_size" bigint NOT NULL,
	"status" text NOT NULL,
	"protected" integer DEFAULT 0 NOT NULL,
	"labels" text DEFAULT '{}' NOT NULL,
	"base_uid" text,
	"bytes_read" bigint DEFAULT 0 NOT NULL,
	"bytes_written" bigint DEFAULT 0 NOT NULL,
	"bytes_deduplicated" bigint DEFAULT 0 NOT NULL,
	"bytes_sparse" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX "image_blocks_hash_idx" ON "image_blocks" USING btree ("hash");--> statement-breakpoint
CREATE INDEX "image_pending_chunks_version_idx" ON "image_pending_chunks" USING btree ("version_uid");--> statement-breakpoint
CREATE INDEX "image_versions_name_idx" ON "image_versions" USING btree ("name","date");