-- Row level security: the database itself refuses what the channel rules (packages/channels/src/policy.ts)
-- refuse, so a bug above it cannot hand one wedding's rows to another. Every query of the server runs
-- in a transaction that switches to the non-owner role wedsync_app and states whom it acts for
-- (packages/db/src/store-actor.ts):
--   app.role     supplier | couple | coordinator | admin (a user), webhook (a signed inbound webhook),
--                service (the server's own jobs: audit writer, cleanup, webhook delivery, head checks)
--   app.user_id  the user's id (token sub), or the webhook's sender id
--   app.claims   the user's memberships: {"suppliers": [...], "couples": [...], "venues": [...]}
-- Nothing set means nobody: every policy below is false.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'wedsync_app') THEN
    CREATE ROLE wedsync_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END
$$;
--> statement-breakpoint
-- A migrator that is not a superuser needs membership to SET ROLE to it.
GRANT wedsync_app TO CURRENT_USER;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION wedsync_actor() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('app.user_id', true), '') $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION wedsync_actor_role() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('app.role', true), '') $$;
--> statement-breakpoint
-- The row belongs to the caller, or the caller is the server itself.
CREATE OR REPLACE FUNCTION wedsync_is(user_id text) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT user_id = wedsync_actor() OR wedsync_actor_role() = 'service' $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION wedsync_member(kind text, id text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce((nullif(current_setting('app.claims', true), '')::jsonb -> kind) ? id, false)
$$;
--> statement-breakpoint
-- The audience a channel's name gives it (policy.ts nameAudience); entity_id of a milestone is
-- "{coupleId}:{milestoneId}".
CREATE OR REPLACE FUNCTION wedsync_name_audience(scope text, entity text, entity_id text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN scope = 'supplier' AND entity = 'dashboard' THEN wedsync_member('suppliers', entity_id)
    WHEN scope = 'couple' AND entity = 'dashboard' THEN wedsync_member('couples', entity_id)
    WHEN scope = 'collaboration' THEN wedsync_member('suppliers', entity) OR wedsync_member('couples', entity_id)
    WHEN scope = 'journey' AND entity = 'milestone' THEN wedsync_member('couples', split_part(entity_id, ':', 1))
    WHEN scope = 'venue' AND entity = 'broadcast' THEN wedsync_member('venues', entity_id)
    ELSE false
  END
$$;
--> statement-breakpoint
-- policy.ts isAllowed / mayGrant / webhookMayPublish for one channel row. access: read | publish |
-- create | own (may grant, revoke and manage webhooks). Security definer: it reads channel_grants past
-- that table's own policies (which call back into this function).
CREATE OR REPLACE FUNCTION wedsync_may(
  access text, channel_id uuid, scope text, entity text, entity_id text, created_by text
) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT CASE
    WHEN wedsync_actor_role() = 'service' THEN true
    WHEN wedsync_actor_role() = 'webhook' THEN
      access IN ('read', 'publish')
      AND ((scope = 'form' AND entity = 'response') OR (scope = 'journey' AND entity = 'milestone'))
    WHEN wedsync_actor_role() IN ('supplier', 'couple', 'coordinator') AND wedsync_actor() IS NOT NULL THEN
      wedsync_name_audience(scope, entity, entity_id)
      OR (scope = 'form' AND created_by = wedsync_actor())
      OR (
        access IN ('read', 'publish')
        AND NOT (access = 'publish' AND scope = 'venue')
        AND EXISTS (
          SELECT 1 FROM channel_grants g
          WHERE g.channel_id = wedsync_may.channel_id AND g.user_id = wedsync_actor()
        )
      )
    ELSE false
  END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION wedsync_channel_may(access text, channel uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT coalesce(
    (SELECT wedsync_may(access, c.id, c.scope, c.entity, c.entity_id, c.created_by)
     FROM websocket_channels c WHERE c.id = channel),
    false
  )
$$;
--> statement-breakpoint
-- Queues one delivery per webhook of the channel for a stored message (the append's transactional
-- outbox). Security definer: publishers who are not owners must not read the webhooks (their secrets),
-- yet their messages are delivered to them. Only a publisher of the channel can queue, and only once.
CREATE OR REPLACE FUNCTION wedsync_queue_webhook_deliveries(channel uuid, message_seq bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  INSERT INTO channel_webhook_outbox (webhook_id, channel_id, seq)
  SELECT w.id, w.channel_id, message_seq FROM channel_webhooks w
  WHERE w.channel_id = channel
    AND wedsync_channel_may('publish', channel)
    AND NOT EXISTS (
      SELECT 1 FROM channel_webhook_outbox o
      WHERE o.channel_id = channel AND o.seq = message_seq AND o.webhook_id = w.id
    )
$$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA public TO wedsync_app;
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON websocket_channels TO wedsync_app;
--> statement-breakpoint
GRANT UPDATE (last_seq, last_activity, webhook_count) ON websocket_channels TO wedsync_app;
--> statement-breakpoint
GRANT SELECT, INSERT ON channel_subscriptions TO wedsync_app;
--> statement-breakpoint
GRANT UPDATE (cursor_seq, active, updated_at) ON channel_subscriptions TO wedsync_app;
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON channel_message_queue TO wedsync_app;
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON channel_grants TO wedsync_app;
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON channel_webhooks TO wedsync_app;
--> statement-breakpoint
GRANT SELECT ON channel_webhook_outbox TO wedsync_app;
--> statement-breakpoint
GRANT UPDATE (attempts, next_attempt_at, last_error, delivered_at) ON channel_webhook_outbox TO wedsync_app;
--> statement-breakpoint
-- The audit log is append-only for the server: no UPDATE or DELETE is granted.
GRANT SELECT, INSERT ON channel_audit_log TO wedsync_app;
--> statement-breakpoint
GRANT USAGE ON SEQUENCE channel_audit_log_id_seq TO wedsync_app;
--> statement-breakpoint
ALTER TABLE websocket_channels ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE channel_subscriptions ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE channel_message_queue ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE channel_grants ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE channel_webhooks ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE channel_webhook_outbox ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE channel_audit_log ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
-- Admins see channel metadata (never messages: channel_message_queue has no admin policy).
CREATE POLICY channels_select ON websocket_channels FOR SELECT TO wedsync_app USING (
  wedsync_actor_role() = 'admin' OR wedsync_may('read', id, scope, entity, entity_id, created_by)
);
--> statement-breakpoint
CREATE POLICY channels_insert ON websocket_channels FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(created_by) AND wedsync_may('create', id, scope, entity, entity_id, created_by)
);
--> statement-breakpoint
-- Appends move the head (publish); webhook changes move webhook_count (own). The column grants above
-- keep everything else of the row out of reach.
CREATE POLICY channels_update ON websocket_channels FOR UPDATE TO wedsync_app
USING (
  wedsync_may('publish', id, scope, entity, entity_id, created_by)
  OR wedsync_may('own', id, scope, entity, entity_id, created_by)
)
WITH CHECK (
  wedsync_may('publish', id, scope, entity, entity_id, created_by)
  OR wedsync_may('own', id, scope, entity, entity_id, created_by)
);
--> statement-breakpoint
CREATE POLICY channels_delete ON websocket_channels FOR DELETE TO wedsync_app
USING (wedsync_actor_role() = 'service');
--> statement-breakpoint
-- A user's own subscriptions, and the subscribers of channels the caller may read.
CREATE POLICY subscriptions_select ON channel_subscriptions FOR SELECT TO wedsync_app USING (
  wedsync_is(user_id)
  OR wedsync_actor_role() = 'admin'
  OR wedsync_channel_may('read', channel_id)
);
--> statement-breakpoint
CREATE POLICY subscriptions_insert ON channel_subscriptions FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(user_id) AND wedsync_channel_may('read', channel_id)
);
--> statement-breakpoint
-- Users move their own cursor and (un)subscribe themselves; owners end a revoked user's subscription.
CREATE POLICY subscriptions_update ON channel_subscriptions FOR UPDATE TO wedsync_app
USING (wedsync_is(user_id) OR wedsync_channel_may('own', channel_id))
WITH CHECK (wedsync_is(user_id) OR wedsync_channel_may('own', channel_id));
--> statement-breakpoint
CREATE POLICY messages_select ON channel_message_queue FOR SELECT TO wedsync_app USING (
  wedsync_channel_may('read', channel_id)
);
--> statement-breakpoint
CREATE POLICY messages_insert ON channel_message_queue FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(sender_id) AND wedsync_channel_may('publish', channel_id)
);
--> statement-breakpoint
CREATE POLICY messages_delete ON channel_message_queue FOR DELETE TO wedsync_app
USING (wedsync_actor_role() = 'service');
--> statement-breakpoint
CREATE POLICY grants_select ON channel_grants FOR SELECT TO wedsync_app USING (
  wedsync_is(user_id) OR wedsync_channel_may('own', channel_id)
);
--> statement-breakpoint
CREATE POLICY grants_insert ON channel_grants FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(granted_by) AND wedsync_channel_may('own', channel_id)
);
--> statement-breakpoint
CREATE POLICY grants_delete ON channel_grants FOR DELETE TO wedsync_app
USING (wedsync_channel_may('own', channel_id));
--> statement-breakpoint
CREATE POLICY webhooks_select ON channel_webhooks FOR SELECT TO wedsync_app
USING (wedsync_channel_may('own', channel_id));
--> statement-breakpoint
CREATE POLICY webhooks_insert ON channel_webhooks FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(created_by) AND wedsync_channel_may('own', channel_id)
);
--> statement-breakpoint
CREATE POLICY webhooks_delete ON channel_webhooks FOR DELETE TO wedsync_app
USING (wedsync_channel_may('own', channel_id));
--> statement-breakpoint
-- Outbox rows are written by wedsync_queue_webhook_deliveries only; only the delivery worker updates them.
CREATE POLICY outbox_select ON channel_webhook_outbox FOR SELECT TO wedsync_app
USING (wedsync_channel_may('own', channel_id));
--> statement-breakpoint
CREATE POLICY outbox_update ON channel_webhook_outbox FOR UPDATE TO wedsync_app
USING (wedsync_actor_role() = 'service') WITH CHECK (wedsync_actor_role() = 'service');
--> statement-breakpoint
CREATE POLICY audit_select ON channel_audit_log FOR SELECT TO wedsync_app
USING (wedsync_actor_role() IN ('service', 'admin'));
--> statement-breakpoint
CREATE POLICY audit_insert ON channel_audit_log FOR INSERT TO wedsync_app
WITH CHECK (wedsync_actor_role() = 'service');
