-- Switchboard initial schema (PostgreSQL). Ids are TEXT (UUID v7), times are BIGINT
-- milliseconds since the Unix epoch, booleans are BIGINT 0/1, JSON is TEXT.
-- Keep in step with ../sqlite/0001_initial.sql: only column types may differ.

CREATE TABLE contact (
    id           TEXT PRIMARY KEY,
    display_name TEXT,
    attributes   TEXT NOT NULL DEFAULT '{}',
    merged_into  TEXT REFERENCES contact(id),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE identity (
    id         TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES contact(id),
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX identity_contact ON identity (contact_id);

CREATE TABLE consent (
    identity_kind  TEXT NOT NULL,
    identity_value TEXT NOT NULL,
    channel        TEXT NOT NULL,
    state          TEXT NOT NULL,
    keyword        TEXT,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (identity_kind, identity_value, channel)
);

CREATE TABLE merge_ledger (
    id                TEXT PRIMARY KEY,
    keep_contact_id   TEXT NOT NULL REFERENCES contact(id),
    merged_contact_id TEXT NOT NULL REFERENCES contact(id),
    actor             TEXT NOT NULL,
    moved             TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    undone_at         BIGINT,
    undone_by         TEXT
);
CREATE INDEX merge_ledger_keep ON merge_ledger (keep_contact_id);
CREATE INDEX merge_ledger_merged ON merge_ledger (merged_contact_id);

CREATE TABLE counter (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counter (name, value) VALUES ('conversation_display_id', 1000);

CREATE TABLE conversation (
    id             TEXT PRIMARY KEY,
    display_id     BIGINT NOT NULL UNIQUE,
    contact_id     TEXT NOT NULL REFERENCES contact(id),
    status         TEXT NOT NULL,
    priority       BIGINT NOT NULL DEFAULT 0,
    last_channel   TEXT,
    last_plugin_id TEXT,
    opened_at      BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    resolved_at    BIGINT
);
CREATE INDEX conversation_contact ON conversation (contact_id, status, updated_at);
CREATE INDEX conversation_status ON conversation (status, updated_at);

CREATE TABLE timeline_event (
    id              TEXT PRIMARY KEY,
    contact_id      TEXT NOT NULL REFERENCES contact(id),
    conversation_id TEXT REFERENCES conversation(id),
    channel         TEXT,
    plugin_id       TEXT,
    direction       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL DEFAULT '',
    attachments     TEXT NOT NULL DEFAULT '[]',
    identity_kind   TEXT,
    identity_value  TEXT,
    provider_id     TEXT,
    author_agent_id TEXT,
    delivery_status TEXT,
    error           TEXT,
    sent_at         BIGINT,
    occurred_at     BIGINT NOT NULL,
    UNIQUE (plugin_id, provider_id)
);
CREATE INDEX timeline_contact ON timeline_event (contact_id, occurred_at, id);
CREATE INDEX timeline_conversation ON timeline_event (conversation_id, occurred_at, id);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL UNIQUE REFERENCES timeline_event(id),
    conversation_id TEXT NOT NULL REFERENCES conversation(id),
    plugin_id       TEXT NOT NULL,
    channel         TEXT NOT NULL,
    to_kind         TEXT NOT NULL,
    to_value        TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    provider_id     TEXT,
    delivery_status TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_provider ON outbox (plugin_id, provider_id);

-- Receipts that arrived before the send was recorded (fast providers call back before
-- the worker stores the provider id); applied when it is.
CREATE TABLE early_receipt (
    plugin_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, provider_id)
);

CREATE TABLE agent (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE agent_skill (
    agent_id    TEXT NOT NULL REFERENCES agent(id) ON DELETE CASCADE,
    skill       TEXT NOT NULL,
    proficiency BIGINT NOT NULL,
    PRIMARY KEY (agent_id, skill)
);

CREATE TABLE agent_session (
    token_hash TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agent(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX agent_session_agent ON agent_session (agent_id);

CREATE TABLE plugin (
    id                TEXT PRIMARY KEY,
    version           TEXT NOT NULL,
    kind              TEXT NOT NULL,
    world             TEXT NOT NULL,
    manifest          TEXT NOT NULL,
    path              TEXT NOT NULL,
    enabled           BIGINT NOT NULL DEFAULT 1,
    quarantined       BIGINT NOT NULL DEFAULT 0,
    quarantine_reason TEXT,
    failure_count     BIGINT NOT NULL DEFAULT 0,
    allowed_hosts     TEXT NOT NULL DEFAULT '[]',
    installed_at      BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE plugin_config (
    plugin_id  TEXT NOT NULL REFERENCES plugin(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    secret     BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, key)
);

CREATE TABLE plugin_kv (
    plugin_id  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BYTEA NOT NULL,
    size       BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, key)
);

CREATE TABLE audit_log (
    id     TEXT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at, id);
