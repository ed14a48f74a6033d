DROP INDEX `files_hash_idx`;--> statement-breakpoint
CREATE INDEX `files_hash_tail_idx` ON `files` (substr("hash", -16));