CREATE TABLE `image_blocks` (
	`version_uid` text NOT NULL,
	`idx` integer NOT NULL,
	`hash` text,
	`size` integer NOT NULL,
	`valid` integer DEFAULT 1 NOT NULL,
	PRIMARY KEY(`version_uid`, `idx`)
);
--> statement-breakpoint
CREATE INDEX `image_blocks_hash_idx` ON `image_blocks` (`hash`);--> statement-breakpoint
CREATE TABLE `image_deleted_chunks` (
	`hash` text PRIMARY KEY NOT NULL,
	`since` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `image_deleting_chunks` (
	`hash` text PRIMARY KEY NOT NULL,
	`since` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `image_pending_chunks` (
	`hash` text NOT NULL,
	`version_uid` text NOT NULL,
	`host` text NOT NULL,
	`pid` integer NOT NULL,
	`since` integer NOT NULL,
	PRIMARY KEY(`hash`, `version_uid`)
);
--> statement-breakpoint
CREATE INDEX `image_pending_chunks_version_idx` ON `image_pending_chunks` (`version_uid`);--> statement-breakpoint
CREATE TABLE `image_versions` (
	`uid` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`snapshot` text DEFAULT '' NOT NULL,
	`date` integer NOT NULL,
	`size` integer NOT NULL,
	`block_size` integer NOT NULL,
	`status` text NOT NULL,
	`protected` integer DEFAULT 0 NOT NULL,
	`labels` text DEFAULT '{}' NOT NULL,
	`base_uid` text,
	`bytes_read` integer DEFAULT 0 NOT NULL,
	`bytes_written` integer DEFAULT 0 NOT NULL,
	`bytes_deduplicated` integer DEFAULT 0 NOT NULL,
	`bytes_sparse` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `image_versions_name_idx` ON `image_versions` (`name`,`date`);