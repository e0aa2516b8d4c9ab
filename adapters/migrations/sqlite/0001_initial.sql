-- Worldstore schema, SQLite. Times are unix seconds; money is TEXT of atomic units.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

-- Personal data, sealed with the configured data key (see adapters/src/store/crypto.rs).
CREATE TABLE profiles (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    sealed      BLOB NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE conversations (
    id             TEXT PRIMARY KEY,
    user_id        TEXT,
    order_id       TEXT UNIQUE,
    status         TEXT NOT NULL,
    state_kind     TEXT NOT NULL,
    state_version  BIGINT NOT NULL,
    state          TEXT NOT NULL,
    revision       BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX conversations_by_user ON conversations (user_id, updated_at);
CREATE INDEX conversations_by_status ON conversations (status, updated_at);

CREATE TABLE checkouts (
    id             TEXT PRIMARY KEY,
    user_id        TEXT,
    order_id       TEXT UNIQUE,
    status         TEXT NOT NULL,
    state_kind     TEXT NOT NULL,
    state_version  BIGINT NOT NULL,
    state          TEXT NOT NULL,
    revision       BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX checkouts_by_user ON checkouts (user_id, updated_at);
CREATE INDEX checkouts_by_status ON checkouts (status, updated_at);

CREATE TABLE settlements (
    id             TEXT PRIMARY KEY,
    user_id        TEXT,
    order_id       TEXT UNIQUE,
    status         TEXT NOT NULL,
    state_kind     TEXT NOT NULL,
    state_version  BIGINT NOT NULL,
    state          TEXT NOT NULL,
    revision       BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX settlements_by_user ON settlements (user_id, updated_at);
CREATE INDEX settlements_by_status ON settlements (status, updated_at);

CREATE TABLE processed_inbound (
    id            TEXT PRIMARY KEY,
    processed_at  BIGINT NOT NULL
);

-- EIP-3009: a nonce is used once per (token, authorizer); a token lives on one chain.
CREATE TABLE nonce_reservations (
    chain_id     TEXT NOT NULL,
    token        TEXT NOT NULL,
    payer        TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    reserved_at  BIGINT NOT NULL,
    PRIMARY KEY (chain_id, token, payer, nonce)
);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE INDEX outbox_unfinished ON outbox (state, available_at, id) WHERE state IN ('ready', 'claimed');
CREATE INDEX outbox_by_ordering_key ON outbox (ordering_key, id) WHERE state IN ('ready', 'claimed');

-- Append-only: the triggers refuse updates and deletes.
CREATE TABLE money_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL,
    order_id  TEXT NOT NULL,
    amount    TEXT NOT NULL,
    tx_hash   TEXT,
    at        BIGINT NOT NULL
);
CREATE INDEX money_events_by_order ON money_events (order_id, id);
CREATE TRIGGER money_events_no_update BEFORE UPDATE ON money_events
BEGIN
    SELECT RAISE(ABORT, 'money_events is append-only');
END;
CREATE TRIGGER money_events_no_delete BEFORE DELETE ON money_events
BEGIN
    SELECT RAISE(ABORT, 'money_events is append-only');
END;

-- Message text is personal data: sealed like profiles.
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL,
    direction        TEXT NOT NULL,
    at               BIGINT NOT NULL,
    sealed           BLOB NOT NULL
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
