CREATE TABLE `entries` (
	`path` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`size` integer NOT NULL,
	`mtime_ms` real NOT NULL,
	`mode` integer NOT NULL,
	`hash` text NOT NULL,
	`link_target` text,
	`archived_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `entries_hash_idx` ON `entries` (`hash`,`size`);--> statement-breakpoint
CREATE TABLE `intents` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`changes` text NOT NULL,
	`created_at` integer NOT NULL
);
