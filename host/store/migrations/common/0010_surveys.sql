-- Surveys: what each queue asks when a conversation is resolved, and each question
-- asked (one row per survey kind per conversation). Definitions are in REPORTS.md
-- ("Surveys"); the answers themselves are `survey` timeline events, which the report
-- facts read.

-- A queue's survey settings. `kinds` lists what is asked, in order, between commas
-- (`,csat,ces,`; `,` asks nothing). `template_*` name the approved template sent
-- instead of the question when a channel's messaging window is closed.
CREATE TABLE survey_setting (
    queue_id          TEXT PRIMARY KEY,
    kinds             TEXT NOT NULL DEFAULT ',',
    reminder_secs     BIGINT,
    expire_secs       BIGINT NOT NULL,
    template_name     TEXT,
    template_language TEXT,
    updated_at        BIGINT NOT NULL
);

-- One question to one customer. `mode`: `text` (a question and a typed answer),
-- `card` (webchat's rating card), `link` (an e-mail link to the public page), `dtmf`
-- (the post-call IVR). `status`: `waiting` (asked after the one before it),
-- `sent`, `answered`, `not_sent` (with `reason`), `dropped` (the customer wrote
-- something else), `expired`.
CREATE TABLE survey (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    mode            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    plugin_id       TEXT NOT NULL,
    identity_kind   TEXT,
    identity_value  TEXT,
    agent_id        TEXT,
    queue_id        TEXT,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    reminded_at     BIGINT,
    answered_at     BIGINT,
    expires_at      BIGINT NOT NULL,
    score           BIGINT,
    comment         TEXT,
    reason          TEXT
);
CREATE INDEX survey_conversation ON survey (conversation_id, seq);
CREATE INDEX survey_awaiting ON survey (identity_kind, identity_value, plugin_id, status);
CREATE INDEX survey_due ON survey (status, sent_at);
