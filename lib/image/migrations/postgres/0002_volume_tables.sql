CREATE TABLE "volume_settings" (
	"key" text PRIMARY KEY NOT NULL,
	"value" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "volume_volumes" (
	"name" text PRIMARY KEY NOT NULL,
	"added" bigint NOT NULL,
	"tracked_since" text,
	"change_map" text
);
