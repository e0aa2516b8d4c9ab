-- Roles sharing one database claim only their own effect kinds (the agent `agent.effect`,
-- the merchant `settlement.effect`), so the index of unfinished effects now leads with the
-- kind. It holds the same rows as the index it replaces (the counting of unfinished
-- effects reads it whole); no data changes, so databases made by 0001 keep working.
DROP INDEX outbox_unfinished;
CREATE INDEX outbox_unfinished_by_kind ON outbox (effect_kind, state, available_at, id)
    WHERE state IN ('ready', 'claimed');
