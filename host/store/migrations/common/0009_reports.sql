-- Reports: the history the other tables do not keep, and facts kept up to date in the
-- transactions that change what they describe. Definitions are in REPORTS.md; every
-- table below except routing_log is derived and rebuilt by `switchboard reports rebuild`.

-- What routing did and when: each engine output of a routing step and each presence or
-- capacity change, at the instant the engine applied it. Append-only. `detail` is the
-- entry as JSON (its `kind` and fields); task and agent are columns for reading by them.
CREATE TABLE routing_log (
    id       TEXT PRIMARY KEY,
    at       BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    task_id  TEXT,
    agent_id TEXT,
    detail   TEXT NOT NULL
);
CREATE INDEX routing_log_at ON routing_log (at, id);

-- One row per routing task (one arrival of work: a conversation or a call that needs
-- a person). Times are ms since the epoch; durations are ms.
CREATE TABLE task_fact (
    task_id           TEXT PRIMARY KEY,
    conversation_id   TEXT,
    contact_id        TEXT,
    channel           TEXT NOT NULL,
    queue_id          TEXT NOT NULL,
    arrived_at        BIGINT NOT NULL,
    first_offered_at  BIGINT,
    answered_at       BIGINT,
    agent_id          TEXT,
    first_response_at BIGINT,
    ended_at          BIGINT,
    outcome           TEXT,
    connected_ms      BIGINT NOT NULL DEFAULT 0,
    wrap_ms           BIGINT NOT NULL DEFAULT 0,
    hold_ms           BIGINT NOT NULL DEFAULT 0,
    hold_since        BIGINT,
    offers            BIGINT NOT NULL DEFAULT 0,
    missed_offers     BIGINT NOT NULL DEFAULT 0,
    transfers         BIGINT NOT NULL DEFAULT 0,
    overflows         BIGINT NOT NULL DEFAULT 0,
    handoffs          BIGINT NOT NULL DEFAULT 0,
    handoffs_context  BIGINT NOT NULL DEFAULT 0,
    holder_id         TEXT,
    holder_since      BIGINT,
    holder_phase      TEXT
);
CREATE INDEX task_fact_arrived ON task_fact (arrived_at);
CREATE INDEX task_fact_conversation ON task_fact (conversation_id, arrived_at);

-- One row per agent who held a task (a transfer starts a new leg), for per-agent
-- handle time and utilization by channel.
CREATE TABLE task_leg (
    id              TEXT PRIMARY KEY,
    task_id         TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    conversation_id TEXT,
    channel         TEXT NOT NULL,
    queue_id        TEXT NOT NULL,
    assigned_at     BIGINT NOT NULL,
    wrap_at         BIGINT,
    ended_at        BIGINT,
    outcome         TEXT,
    connected_ms    BIGINT NOT NULL DEFAULT 0,
    wrap_ms         BIGINT NOT NULL DEFAULT 0,
    cost            BIGINT NOT NULL,
    capacity        BIGINT NOT NULL
);
CREATE INDEX task_leg_assigned ON task_leg (assigned_at);
CREATE INDEX task_leg_task ON task_leg (task_id, ended_at);

-- Each agent's state now: presence, tasks held (assigned or wrapping up), the capacity
-- they use and have, since when. A change closes an agent_segment.
CREATE TABLE agent_state (
    agent_id TEXT PRIMARY KEY,
    since    BIGINT NOT NULL,
    presence TEXT NOT NULL,
    tasks    BIGINT NOT NULL,
    load     BIGINT NOT NULL,
    capacity BIGINT NOT NULL
);

-- Closed stretches of one agent state: [start_at, end_at). Only stretches that count
-- (available, or holding work) are kept.
CREATE TABLE agent_segment (
    agent_id TEXT NOT NULL,
    start_at BIGINT NOT NULL,
    end_at   BIGINT NOT NULL,
    presence TEXT NOT NULL,
    tasks    BIGINT NOT NULL,
    load     BIGINT NOT NULL,
    capacity BIGINT NOT NULL,
    PRIMARY KEY (agent_id, start_at)
);
CREATE INDEX agent_segment_start ON agent_segment (start_at);

-- One row per conversation: the customer's journey across channels. `channels` lists
-- the channels used in order of first use, each between commas (`,webchat,voice,`);
-- `agents` likewise. Survey columns stay empty until surveys are sent.
CREATE TABLE conversation_fact (
    conversation_id     TEXT PRIMARY KEY,
    contact_id          TEXT NOT NULL,
    opened_at           BIGINT NOT NULL,
    automatic           BIGINT NOT NULL DEFAULT 0,
    first_channel       TEXT,
    channels            TEXT NOT NULL DEFAULT ',',
    channel_count       BIGINT NOT NULL DEFAULT 0,
    channel_switches    BIGINT NOT NULL DEFAULT 0,
    inbound             BIGINT NOT NULL DEFAULT 0,
    first_queue         TEXT,
    agents              TEXT NOT NULL DEFAULT ',',
    last_agent_id       TEXT,
    first_resolved_at   BIGINT,
    last_resolved_at    BIGINT,
    resolved_at         BIGINT,
    reopens             BIGINT NOT NULL DEFAULT 0,
    next_contact_at     BIGINT,
    disposition         TEXT,
    resolved_by         TEXT,
    handoffs            BIGINT NOT NULL DEFAULT 0,
    handoffs_context    BIGINT NOT NULL DEFAULT 0,
    survey_channel      TEXT,
    csat_sent_at        BIGINT,
    csat                BIGINT,
    ces_sent_at         BIGINT,
    ces                 BIGINT,
    nps_sent_at         BIGINT,
    nps                 BIGINT
);
CREATE INDEX conversation_fact_opened ON conversation_fact (opened_at);
CREATE INDEX conversation_fact_contact ON conversation_fact (contact_id, first_resolved_at);

-- A customer starting or restarting a journey: a conversation opened by their
-- message or call, or a resolved one reopened by it. `prev_resolved_at` is the latest
-- resolution of any of their conversations before it (for repeat contacts).
CREATE TABLE journey_arrival (
    conversation_id  TEXT NOT NULL,
    at               BIGINT NOT NULL,
    contact_id       TEXT NOT NULL,
    kind             TEXT NOT NULL,
    channel          TEXT,
    prev_resolved_at BIGINT,
    PRIMARY KEY (conversation_id, at)
);
CREATE INDEX journey_arrival_at ON journey_arrival (at);
