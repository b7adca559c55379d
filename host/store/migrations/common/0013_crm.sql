-- CRM integrations (ARCHITECTURE.md, "CRM"): what each CRM plugin said about a
-- contact, which timeline events each CRM receives, and the durable write-back queue.

-- The CRM's answer for a contact, one row per (contact, CRM plugin). `attributes` is
-- a JSON object (also merged into contact.attributes, where routing reads them);
-- `identities` a JSON array of {kind, value} the CRM holds, offered to agents.
CREATE TABLE contact_crm (
    contact_id   TEXT NOT NULL REFERENCES contact(id),
    plugin_id    TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    url          TEXT,
    display_name TEXT,
    attributes   TEXT NOT NULL DEFAULT '{}',
    identities   TEXT NOT NULL DEFAULT '[]',
    fetched_at   BIGINT NOT NULL,
    PRIMARY KEY (contact_id, plugin_id)
);

-- What each CRM plugin receives (1 = yes). A CRM plugin without a row receives the
-- defaults: calls, summaries and notes, not messages.
CREATE TABLE crm_subscription (
    plugin_id  TEXT PRIMARY KEY,
    calls      BIGINT NOT NULL DEFAULT 1,
    summaries  BIGINT NOT NULL DEFAULT 1,
    notes      BIGINT NOT NULL DEFAULT 1,
    messages   BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

-- One activity to write to one CRM: written in the transaction of the event it
-- describes (at a call's end for calls), delivered at least once by the worker.
-- The id is `<plugin_id>:<event_id>`, so an event is queued once per CRM.
CREATE TABLE crm_activity (
    id              TEXT PRIMARY KEY,
    plugin_id       TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES timeline_event(id),
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX crm_activity_due ON crm_activity (status, next_attempt_at);
CREATE INDEX crm_activity_created ON crm_activity (created_at);
