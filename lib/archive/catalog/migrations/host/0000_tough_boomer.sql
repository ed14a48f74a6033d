CREATE TABLE `archive` (
	`id` text PRIMARY KEY NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `disk_copies` (
	`id` text PRIMARY KEY NOT NULL,
	`disk_id` text NOT NULL,
	`created_at` integer NOT NULL,
	`last_seen_at` integer,
	`last_mount_path` text,
	FOREIGN KEY (`disk_id`) REFERENCES `disks`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `disk_copies_disk_idx` ON `disk_copies` (`disk_id`);--> statement-breakpoint
CREATE TABLE `disks` (
	`id` text PRIMARY KEY NOT NULL,
	`label` text NOT NULL,
	`capacity` integer,
	`state` text DEFAULT 'open' NOT NULL,
	`created_at` integer NOT NULL,
	`last_seen_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `disks_label_idx` ON `disks` (`label`);--> statement-breakpoint
CREATE TABLE `files` (
	`path` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`size` integer NOT NULL,
	`mtime_ms` real NOT NULL,
	`mode` integer NOT NULL,
	`dev` integer NOT NULL,
	`ino` integer NOT NULL,
	`hash` text NOT NULL,
	`link_target` text,
	`disk_id` text NOT NULL,
	`archived_at` integer NOT NULL,
	FOREIGN KEY (`disk_id`) REFERENCES `disks`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `files_inode_idx` ON `files` (`dev`,`ino`);--> statement-breakpoint
CREATE INDEX `files_hash_idx` ON `files` (`hash`,`size`);--> statement-breakpoint
CREATE INDEX `files_size_idx` ON `files` (`size`);--> statement-breakpoint
CREATE INDEX `files_disk_idx` ON `files` (`disk_id`);--> statement-breakpoint
CREATE TABLE `runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer,
	`exit_code` integer,
	`summary` text
);
