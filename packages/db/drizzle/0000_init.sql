CREATE TYPE "public"."audit_outcome" AS ENUM('ok', 'denied', 'error');--> statement-breakpoint
CREATE TYPE "public"."channel_type" AS ENUM('private', 'shared', 'broadcast');--> statement-breakpoint
CREATE TABLE "channel_audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor_id" text,
	"action" text NOT NULL,
	"channel_name" text,
	"outcome" "audit_outcome" NOT NULL,
	"reason" text,
	"instance_id" text NOT NULL,
	"detail" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "websocket_channels" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"channel_name" text NOT NULL,
	"channel_type" "channel_type" NOT NULL,
	"scope" text NOT NULL,
	"entity" text NOT NULL,
	"entity_id" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_activity" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "channel_message_queue" (
	"channel_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"event" text NOT NULL,
	"payload" jsonb NOT NULL,
	"sender_id" text NOT NULL,
	"idempotency_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "channel_message_queue_channel_id_seq_pk" PRIMARY KEY("channel_id","seq")
);
--> statement-breakpoint
CREATE TABLE "channel_subscriptions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"channel_id" uuid NOT NULL,
	"user_id" text NOT NULL,
	"cursor_seq" bigint DEFAULT 0 NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"subscribed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "channel_message_queue" ADD CONSTRAINT "channel_message_queue_channel_id_websocket_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."websocket_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "channel_subscriptions" ADD CONSTRAINT "channel_subscriptions_channel_id_websocket_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."websocket_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "channel_audit_log_at_idx" ON "channel_audit_log" USING btree ("at");--> statement-breakpoint
CREATE INDEX "channel_audit_log_channel_idx" ON "channel_audit_log" USING btree ("channel_name");--> statement-breakpoint
CREATE UNIQUE INDEX "websocket_channels_name_key" ON "websocket_channels" USING btree ("channel_name");--> statement-breakpoint
CREATE INDEX "websocket_channels_activity_idx" ON "websocket_channels" USING btree ("last_activity");--> statement-breakpoint
CREATE UNIQUE INDEX "channel_message_queue_idempotency_key" ON "channel_message_queue" USING btree ("channel_id","idempotency_key");--> statement-breakpoint
CREATE INDEX "channel_message_queue_expires_idx" ON "channel_message_queue" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "channel_subscriptions_channel_user_key" ON "channel_subscriptions" USING btree ("channel_id","user_id");--> statement-breakpoint
CREATE INDEX "channel_subscriptions_user_active_idx" ON "channel_subscriptions" USING btree ("user_id") WHERE "channel_subscriptions"."active";