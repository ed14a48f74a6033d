CREATE TABLE `image_doc_updates` (
	`uid` text PRIMARY KEY NOT NULL,
	`action` text NOT NULL,
	`seq` integer DEFAULT 1 NOT NULL
);
--> statement-breakpoint
ALTER TABLE `image_versions` ADD `inherits_uid` text;