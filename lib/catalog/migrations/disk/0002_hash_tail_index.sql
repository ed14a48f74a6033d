DROP INDEX `entries_hash_idx`;--> statement-breakpoint
CREATE INDEX `entries_hash_tail_idx` ON `entries` (substr("hash", -16));