CREATE TABLE "channel_grants" (
	"channel_id" uuid NOT NULL,
	"user_id" text NOT NULL,
	"granted_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "channel_grants_channel_id_user_id_pk" PRIMARY KEY("channel_id","user_id")
);
--> statement-breakpoint
ALTER TABLE "channel_grants" ADD CONSTRAINT "channel_grants_channel_id_websocket_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."websocket_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "channel_grants_user_idx" ON "channel_grants" USING btree ("user_id");