CREATE TABLE "channel_message_removals" (
	"channel_id" uuid PRIMARY KEY NOT NULL,
	"removed" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
ALTER TABLE "channel_message_removals" ADD CONSTRAINT "channel_message_removals_channel_id_websocket_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."websocket_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- What cleanup removed before this table existed: every message a channel ever stored moved its head.
INSERT INTO "channel_message_removals" ("channel_id", "removed")
SELECT c."id", c."last_seq" - count(m."seq")
FROM "websocket_channels" c LEFT JOIN "channel_message_queue" m ON m."channel_id" = c."id"
GROUP BY c."id", c."last_seq"
HAVING c."last_seq" - count(m."seq") > 0;
--> statement-breakpoint
-- Only the server's own jobs read or write it (cleanup, the queue-depth gauge); see 0003 for the roles.
GRANT SELECT, INSERT, UPDATE ON "channel_message_removals" TO wedsync_app;
--> statement-breakpoint
ALTER TABLE "channel_message_removals" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY removals_service ON "channel_message_removals" FOR ALL TO wedsync_app
USING (wedsync_actor_role() = 'service') WITH CHECK (wedsync_actor_role() = 'service');
