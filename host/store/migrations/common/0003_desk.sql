-- The agent desk and the native webchat channel.

-- Structured detail of a timeline event (a transfer's context summary, a
-- disposition's code, an automatic greeting's flag), a JSON object.
ALTER TABLE timeline_event ADD COLUMN data TEXT NOT NULL DEFAULT '{}';

-- How far each agent has read each conversation (unread counts).
CREATE TABLE conversation_read (
    agent_id        TEXT NOT NULL REFERENCES agent(id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL REFERENCES conversation(id),
    read_at         BIGINT NOT NULL,
    PRIMARY KEY (agent_id, conversation_id)
);

-- Webchat visitors: the identity `webchat:<id>`, reached through a bearer token
-- stored as its SHA-256.
CREATE TABLE webchat_visitor (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    contact_id  TEXT NOT NULL REFERENCES contact(id),
    name        TEXT NOT NULL,
    email       TEXT,
    created_at  BIGINT NOT NULL
);
