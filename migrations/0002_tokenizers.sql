CREATE TABLE `tokenizers` (
	`id` text PRIMARY KEY NOT NULL,
	`owner` text NOT NULL,
	`manifest_hash` text NOT NULL,
	`name` text NOT NULL,
	`manifest` text NOT NULL,
	`status` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`ready_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tokenizers_owner_hash` ON `tokenizers` (`owner`,`manifest_hash`);