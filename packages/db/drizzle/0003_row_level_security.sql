-- Row level security: the database itself refuses what the channel rules (packages/channels/src/policy.ts)
-- refuse, so a bug above it cannot hand one wedding's rows to another. Every query of the server runs
-- in a transaction that switches to the non-owner role wedsync_app and states whom it acts for
-- (packages/db/src/store-actor.ts):
--   app.role                             supplier | couple | coordinator | admin (a user), webhook (a
--                                        signed inbound webhook), service (the server's own jobs)
--   app.user_id                          the user's id (token sub), or the webhook's sender id
--   app.suppliers, app.couples, app.venues  the user's memberships as ",id1,id2," (ids never hold commas)
-- Nothing set means nobody: every policy below is false.
--
-- Policies are evaluated per row, so the helpers are plain SQL expressions Postgres inlines (no JSON to
-- parse, no security definer on the hot paths); a message is visible when its channel is, through the
-- channel's own policy. The one security-definer function, wedsync_owns_channel, breaks the cycle
-- channels -> grants -> channels that policies referring to each other's tables would otherwise form.
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
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('app.role', true), '') $$;
--> statement-breakpoint
-- A user (not a webhook, not the service, not an admin: admins never get payloads).
CREATE OR REPLACE FUNCTION wedsync_is_member_role() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT wedsync_actor_role() IN ('supplier', 'couple', 'coordinator') AND wedsync_actor() IS NOT NULL
$$;
--> statement-breakpoint
-- The row belongs to the caller, or the caller is the server itself.
CREATE OR REPLACE FUNCTION wedsync_is(user_id text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT wedsync_actor_role() = 'service' OR coalesce(user_id = wedsync_actor(), false)
$$;
--> statement-breakpoint
-- list: 'app.suppliers' | 'app.couples' | 'app.venues'
CREATE OR REPLACE FUNCTION wedsync_member(list text, id text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT strpos(coalesce(current_setting(list, true), ''), ',' || id || ',') > 0
$$;
--> statement-breakpoint
-- The audience a channel's name gives it (policy.ts nameAudience); entity_id of a milestone is
-- "{coupleId}:{milestoneId}".
CREATE OR REPLACE FUNCTION wedsync_name_audience(scope text, entity text, entity_id text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN scope = 'supplier' AND entity = 'dashboard' THEN wedsync_member('app.suppliers', entity_id)
    WHEN scope = 'couple' AND entity = 'dashboard' THEN wedsync_member('app.couples', entity_id)
    WHEN scope = 'collaboration' THEN
      wedsync_member('app.suppliers', entity) OR wedsync_member('app.couples', entity_id)
    WHEN scope = 'journey' AND entity = 'milestone' THEN
      wedsync_member('app.couples', split_part(entity_id, ':', 1))
    WHEN scope = 'venue' AND entity = 'broadcast' THEN wedsync_member('app.venues', entity_id)
    ELSE false
  END
$$;
--> statement-breakpoint
-- policy.ts mayGrant: the name's members or a form's creator own a channel (grant, revoke, webhooks).
-- PL/pgSQL on purpose: Postgres does not inline it, so the policies stay small to plan (inlined, this
-- expression made planning an append cost milliseconds, which PGlite pays on every statement); its own
-- expression is planned once per session and a call costs microseconds.
CREATE OR REPLACE FUNCTION wedsync_owns(scope text, entity text, entity_id text, created_by text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN wedsync_actor_role() = 'service' OR (
    wedsync_is_member_role()
    AND (wedsync_name_audience(scope, entity, entity_id) OR (scope = 'form' AND created_by = wedsync_actor()))
  );
END
$$;
--> statement-breakpoint
-- policy.ts webhookMayPublish: what a signed inbound webhook may read and publish to.
CREATE OR REPLACE FUNCTION wedsync_webhook_target(scope text, entity text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT wedsync_actor_role() = 'webhook'
    AND ((scope = 'form' AND entity = 'response') OR (scope = 'journey' AND entity = 'milestone'))
$$;
--> statement-breakpoint
-- The caller holds a grant on the channel (its own grant rows are visible to it).
CREATE OR REPLACE FUNCTION wedsync_granted(channel uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT wedsync_is_member_role()
    AND EXISTS (SELECT 1 FROM channel_grants g WHERE g.channel_id = channel AND g.user_id = wedsync_actor())
$$;
--> statement-breakpoint
-- wedsync_owns for a channel id, past the channel's own policy (see the header).
CREATE OR REPLACE FUNCTION wedsync_owns_channel(channel uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT coalesce(
    (SELECT wedsync_owns(c.scope, c.entity, c.entity_id, c.created_by) FROM websocket_channels c WHERE c.id = channel),
    false
  )
$$;
--> statement-breakpoint
-- Queues one delivery per webhook of the channel for a stored message (the append's transactional
-- outbox), once. Security definer: publishers who are not owners must not read the webhooks (their
-- secrets), yet their messages are delivered to them. Only for a message the caller itself sent (which
-- messages_insert let it send), or for the service.
CREATE OR REPLACE FUNCTION wedsync_queue_webhook_deliveries(channel uuid, message_seq bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  INSERT INTO channel_webhook_outbox (webhook_id, channel_id, seq)
  SELECT w.id, w.channel_id, message_seq FROM channel_webhooks w
  WHERE w.channel_id = channel
    AND EXISTS (
      SELECT 1 FROM channel_message_queue m
      WHERE m.channel_id = channel AND m.seq = message_seq AND wedsync_is(m.sender_id)
    )
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
-- Admins see channel metadata (never messages: see messages_select).
CREATE POLICY channels_select ON websocket_channels FOR SELECT TO wedsync_app USING (
  wedsync_actor_role() IN ('service', 'admin')
  OR wedsync_webhook_target(scope, entity)
  OR wedsync_owns(scope, entity, entity_id, created_by)
  OR wedsync_granted(id)
);
--> statement-breakpoint
CREATE POLICY channels_insert ON websocket_channels FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(created_by) AND wedsync_owns(scope, entity, entity_id, created_by)
);
--> statement-breakpoint
-- Appends move the head (publishers: owners, webhooks on their channels, grantees except on venue
-- broadcasts); webhook changes move webhook_count (owners). The column grants keep the rest out of reach.
-- (Without WITH CHECK, an UPDATE policy checks the new row with its USING expression too.)
CREATE POLICY channels_update ON websocket_channels FOR UPDATE TO wedsync_app
USING (
  wedsync_owns(scope, entity, entity_id, created_by)
  OR wedsync_webhook_target(scope, entity)
  OR (scope <> 'venue' AND wedsync_granted(id))
);
--> statement-breakpoint
CREATE POLICY channels_delete ON websocket_channels FOR DELETE TO wedsync_app
USING (wedsync_actor_role() = 'service');
--> statement-breakpoint
-- A user's own subscriptions, and the subscribers of channels the caller may read.
CREATE POLICY subscriptions_select ON channel_subscriptions FOR SELECT TO wedsync_app USING (
  wedsync_is(user_id)
  OR wedsync_actor_role() = 'admin'
  OR EXISTS (SELECT 1 FROM websocket_channels c WHERE c.id = channel_id)
);
--> statement-breakpoint
CREATE POLICY subscriptions_insert ON channel_subscriptions FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(user_id)
  AND wedsync_actor_role() <> 'admin'
  AND EXISTS (SELECT 1 FROM websocket_channels c WHERE c.id = channel_id)
);
--> statement-breakpoint
-- Users move their own cursor and (un)subscribe themselves; owners end a revoked user's subscription.
CREATE POLICY subscriptions_update ON channel_subscriptions FOR UPDATE TO wedsync_app
USING (wedsync_is(user_id) OR wedsync_owns_channel(channel_id));
--> statement-breakpoint
-- A message is visible when its channel is, except to admins (metadata only, never payloads).
CREATE POLICY messages_select ON channel_message_queue FOR SELECT TO wedsync_app USING (
  wedsync_actor_role() = 'service'
  OR (wedsync_actor_role() <> 'admin' AND EXISTS (SELECT 1 FROM websocket_channels c WHERE c.id = channel_id))
);
--> statement-breakpoint
-- Sent as oneself to a channel one may publish to (the same test as channels_update).
CREATE POLICY messages_insert ON channel_message_queue FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(sender_id)
  AND EXISTS (
    SELECT 1 FROM websocket_channels c
    WHERE c.id = channel_id
      AND (
        wedsync_owns(c.scope, c.entity, c.entity_id, c.created_by)
        OR wedsync_webhook_target(c.scope, c.entity)
        OR (c.scope <> 'venue' AND wedsync_granted(c.id))
      )
  )
);
--> statement-breakpoint
CREATE POLICY messages_delete ON channel_message_queue FOR DELETE TO wedsync_app
USING (wedsync_actor_role() = 'service');
--> statement-breakpoint
CREATE POLICY grants_select ON channel_grants FOR SELECT TO wedsync_app USING (
  wedsync_is(user_id) OR wedsync_owns_channel(channel_id)
);
--> statement-breakpoint
CREATE POLICY grants_insert ON channel_grants FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(granted_by) AND wedsync_owns_channel(channel_id)
);
--> statement-breakpoint
CREATE POLICY grants_delete ON channel_grants FOR DELETE TO wedsync_app
USING (wedsync_owns_channel(channel_id));
--> statement-breakpoint
CREATE POLICY webhooks_select ON channel_webhooks FOR SELECT TO wedsync_app
USING (wedsync_owns_channel(channel_id));
--> statement-breakpoint
CREATE POLICY webhooks_insert ON channel_webhooks FOR INSERT TO wedsync_app WITH CHECK (
  wedsync_is(created_by) AND wedsync_owns_channel(channel_id)
);
--> statement-breakpoint
CREATE POLICY webhooks_delete ON channel_webhooks FOR DELETE TO wedsync_app
USING (wedsync_owns_channel(channel_id));
--> statement-breakpoint
-- Outbox rows are written by wedsync_queue_webhook_deliveries only; only the delivery worker updates them.
CREATE POLICY outbox_select ON channel_webhook_outbox FOR SELECT TO wedsync_app
USING (wedsync_owns_channel(channel_id));
--> statement-breakpoint
CREATE POLICY outbox_update ON channel_webhook_outbox FOR UPDATE TO wedsync_app
USING (wedsync_actor_role() = 'service');
--> statement-breakpoint
CREATE POLICY audit_select ON channel_audit_log FOR SELECT TO wedsync_app
USING (wedsync_actor_role() IN ('service', 'admin'));
--> statement-breakpoint
CREATE POLICY audit_insert ON channel_audit_log FOR INSERT TO wedsync_app
WITH CHECK (wedsync_actor_role() = 'service');
