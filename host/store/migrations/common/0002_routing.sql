-- Routing: queues, per-agent routing state, tasks and reservations.
-- JSON columns hold the parts the routing engine owns (skills, steps, attributes).

CREATE TABLE queue (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    definition      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE agent_routing (
    agent_id        TEXT PRIMARY KEY REFERENCES agent(id) ON DELETE CASCADE,
    presence        TEXT NOT NULL,
    presence_reason TEXT,
    capacity        TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE task (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT,
    contact_id      TEXT,
    channel         TEXT NOT NULL,
    queue_id        TEXT NOT NULL,
    state           TEXT NOT NULL,
    agent_id        TEXT,
    definition      TEXT NOT NULL,
    arrived_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- One live task per conversation.
CREATE UNIQUE INDEX task_live_conversation ON task (conversation_id)
    WHERE state NOT IN ('completed', 'canceled');
CREATE INDEX task_state ON task (state);
CREATE INDEX task_contact ON task (contact_id, updated_at);

CREATE TABLE reservation (
    id              TEXT PRIMARY KEY,
    task_id         TEXT NOT NULL REFERENCES task(id) ON DELETE CASCADE,
    agent_id        TEXT NOT NULL,
    state           TEXT NOT NULL,
    offered_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    decided_at      BIGINT
);
-- Never two pending offers of one task: a second one is a double assignment.
CREATE UNIQUE INDEX reservation_live_task ON reservation (task_id) WHERE state = 'pending';
CREATE INDEX reservation_agent ON reservation (agent_id, state);
