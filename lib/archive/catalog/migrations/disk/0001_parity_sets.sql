CREATE TABLE `parity_sets` (
	`hash` text PRIMARY KEY NOT NULL,
	`size` integer NOT NULL,
	`slice_size` integer NOT NULL,
	`recovery_slices` integer NOT NULL,
	`files` integer NOT NULL,
	`bytes` integer NOT NULL,
	`created_at` integer NOT NULL
);
