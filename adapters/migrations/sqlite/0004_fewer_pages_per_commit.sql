-- Fewer database pages written per commit. A commit writes every page it touched to the
-- log, and most commits insert into the outbox and the message log and record an inbound
-- message id:
--
-- - `outbox` and `messages` lose AUTOINCREMENT. It only kept SQLite from reusing the id of
--   a deleted last row, at the price of rewriting the `sqlite_sequence` page in every
--   commit that inserted into either table. Outbox rows are never deleted, so their ids
--   keep growing as before; a message's id still orders its conversation's log.
-- - `processed_inbound` becomes WITHOUT ROWID: the id is the table's key, so recording one
--   writes one b-tree instead of the table and its primary-key index.
--
-- The tables are rebuilt with their rows, ids and indexes; nothing reads differently.

CREATE TABLE outbox_rebuilt (
    id               INTEGER PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    ordering_key     TEXT NOT NULL,
    effect_kind      TEXT NOT NULL,
    effect_version   BIGINT NOT NULL,
    effect           TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('ready', 'claimed', 'done', 'dead')),
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
CREATE INDEX outbox_unfinished_by_kind ON outbox (effect_kind, state, available_at, id)
    WHERE state IN ('ready', 'claimed');
CREATE INDEX outbox_by_ordering_key ON outbox (ordering_key, id)
    WHERE state IN ('ready', 'claimed');

CREATE TABLE messages_rebuilt (
    id               INTEGER PRIMARY KEY,
    conversation_id  TEXT NOT NULL,
    direction        TEXT NOT NULL,
    at               BIGINT NOT NULL,
    sealed           BLOB NOT NULL
);
INSERT INTO messages_rebuilt (id, conversation_id, direction, at, sealed)
SELECT id, conversation_id, direction, at, sealed FROM messages;
DROP TABLE messages;
ALTER TABLE messages_rebuilt RENAME TO messages;
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

CREATE TABLE processed_inbound_rebuilt (
    id            TEXT PRIMARY KEY,
    processed_at  BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO processed_inbound_rebuilt (id, processed_at)
SELECT id, processed_at FROM processed_inbound;
DROP TABLE processed_inbound;
ALTER TABLE processed_inbound_rebuilt RENAME TO processed_inbound;
