CREATE TABLE `deferred_actions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`copy_id` text NOT NULL,
	`op` text NOT NULL,
	`path` text NOT NULL,
	`from_path` text,
	`record` text,
	`created_at` integer NOT NULL,
	`last_error` text,
	FOREIGN KEY (`copy_id`) REFERENCES `disk_copies`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `deferred_actions_copy_idx` ON `deferred_actions` (`copy_id`,`id`);