CREATE TABLE "channel_webhook_outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"webhook_id" uuid NOT NULL,
	"channel_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now(),
	"last_error" text,
	"delivered_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "channel_webhooks" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"channel_id" uuid NOT NULL,
	"url" text NOT NULL,
	"secret" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "websocket_channels" ADD COLUMN "webhook_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "channel_webhook_outbox" ADD CONSTRAINT "channel_webhook_outbox_webhook_id_channel_webhooks_id_fk" FOREIGN KEY ("webhook_id") REFERENCES "public"."channel_webhooks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "channel_webhook_outbox" ADD CONSTRAINT "channel_webhook_outbox_message_fk" FOREIGN KEY ("channel_id","seq") REFERENCES "public"."channel_message_queue"("channel_id","seq") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "channel_webhooks" ADD CONSTRAINT "channel_webhooks_channel_id_websocket_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."websocket_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "channel_webhook_outbox_due_idx" ON "channel_webhook_outbox" USING btree ("next_attempt_at") WHERE "channel_webhook_outbox"."next_attempt_at" is not null;--> statement-breakpoint
CREATE INDEX "channel_webhook_outbox_message_idx" ON "channel_webhook_outbox" USING btree ("channel_id","seq");--> statement-breakpoint
CREATE INDEX "channel_webhook_outbox_webhook_idx" ON "channel_webhook_outbox" USING btree ("webhook_id");--> statement-breakpoint
CREATE INDEX "channel_webhooks_channel_idx" ON "channel_webhooks" USING btree ("channel_id");