-- No temporary b-trees in the statements every turn runs. SQLite opens and closes a
-- throwaway b-tree whenever a statement needs one, and three of ours did on every call:
--
-- - Every insert into and update of the outbox checked `state IN ('ready', 'claimed',
--   'done', 'dead')`. An IN list of more than two constants is coded as a lookup in a
--   temporary table, built anew on each execution. The same check written as comparisons
--   costs none. SQLite cannot change a CHECK constraint in place, so the outbox is rebuilt
--   with its rows and ids, as in 0004.
-- - The claim's search sorted the ready effects of a kind by id in a temporary b-tree: its
--   index led with the kind and the state, so two states meant two runs to merge. Indexed by
--   kind then id, the unfinished effects of a kind come out in id order and the search
--   stops at its limit.
-- - Reading machines by status or by user sorted the rows with equal times by id. With the
--   id in those indexes, they come out in order.

CREATE TABLE outbox_rebuilt (
    id               INTEGER PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    ordering_key     TEXT NOT NULL,
    effect_kind      TEXT NOT NULL,
    effect_version   BIGINT NOT NULL,
    effect           TEXT NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state = 'ready' OR state = 'claimed' OR state = 'done' OR state = 'dead'),
    attempts         BIGINT NOT NULL DEFAULT 0,
    available_at     BIGINT NOT NULL,
    claimed_by       TEXT,
    lease_until      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    finished_at      BIGINT
);
INSERT INTO outbox_rebuilt (id, idempotency_key, ordering_key, effect_kind, effect_version,
    effect, state, attempts, available_at, claimed_by, lease_until, last_error, created_at,
    finished_at)
SELECT id, idempotency_key, ordering_key, effect_kind, effect_version, effect, state,
    attempts, available_at, claimed_by, lease_until, last_error, created_at, finished_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_unfinished_by_kind ON outbox (effect_kind, id)
    WHERE state IN ('ready', 'claimed');
CREATE INDEX outbox_by_ordering_key ON outbox (ordering_key, id)
    WHERE state IN ('ready', 'claimed');

DROP INDEX checkouts_by_user;
DROP INDEX checkouts_by_status;
CREATE INDEX checkouts_by_user ON checkouts (user_id, updated_at, id);
CREATE INDEX checkouts_by_status ON checkouts (status, updated_at, id);

DROP INDEX settlements_by_user;
DROP INDEX settlements_by_status;
CREATE INDEX settlements_by_user ON settlements (user_id, updated_at, id);
CREATE INDEX settlements_by_status ON settlements (status, updated_at, id);
