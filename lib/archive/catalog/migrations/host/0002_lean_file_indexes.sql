DROP INDEX `files_size_idx`;--> statement-breakpoint
DROP INDEX `files_disk_idx`;--> statement-breakpoint
CREATE INDEX `files_large_size_idx` ON `files` (`size`) WHERE "files"."size" >= 1048576;