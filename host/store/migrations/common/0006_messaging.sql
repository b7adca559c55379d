-- Messaging channels: attachments in the blob store, the outbound payload of rich
-- replies (templates, interactive choices, files), and poll cursors.

-- Every file of a timeline event. Inbound files start `pending` and a worker copies
-- them into the blob store through their connector (retried with backoff, `failed`
-- after the last attempt); uploads by agents are `stored` at once and have no event
-- until a reply takes them.
CREATE TABLE attachment (
    id              TEXT PRIMARY KEY,
    event_id        TEXT REFERENCES timeline_event(id),
    plugin_id       TEXT,
    direction       TEXT NOT NULL,
    source          TEXT NOT NULL,
    content_type    TEXT,
    filename        TEXT,
    size            BIGINT,
    content_id      TEXT,
    blob            TEXT,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    uploaded_by     TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX attachment_due ON attachment (status, next_attempt_at);
CREATE INDEX attachment_event ON attachment (event_id);

-- What a reply carries besides its text, as JSON: template, interactive choices,
-- attachment ids, the author's name and the window decision.
ALTER TABLE outbox ADD COLUMN payload TEXT NOT NULL DEFAULT '{}';

-- Where each polling connector's next poll starts.
CREATE TABLE plugin_poll (
    plugin_id  TEXT PRIMARY KEY,
    cursor     TEXT,
    polled_at  BIGINT,
    last_error TEXT
);
