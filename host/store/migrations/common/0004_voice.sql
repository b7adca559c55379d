-- Voice: SIP trunks, desk-phone accounts and call records.

-- A SIP trunk: where outbound calls go and whose INVITEs are trusted. The
-- password is encrypted like a plugin secret.
CREATE TABLE sip_trunk (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    address     TEXT NOT NULL,
    username    TEXT,
    password    TEXT,
    created_at  BIGINT NOT NULL
);

-- A desk phone's SIP account. Only the digest HA1 (MD5 of user:realm:password)
-- is kept, never the password.
CREATE TABLE sip_account (
    username    TEXT PRIMARY KEY,
    realm       TEXT NOT NULL,
    ha1         TEXT NOT NULL,
    agent_id    TEXT REFERENCES agent(id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL
);

-- One row a call, inbound or outbound; the timeline event carries the same
-- record for display.
CREATE TABLE call_record (
    id              TEXT PRIMARY KEY,
    direction       TEXT NOT NULL,
    state           TEXT NOT NULL,
    remote_number   TEXT NOT NULL,
    dialed_number   TEXT NOT NULL,
    contact_id      TEXT REFERENCES contact(id),
    conversation_id TEXT REFERENCES conversation(id),
    event_id        TEXT,
    agent_id        TEXT,
    recording_path  TEXT,
    detail          TEXT NOT NULL DEFAULT '{}',
    started_at      BIGINT NOT NULL,
    answered_at     BIGINT,
    ended_at        BIGINT
);
CREATE INDEX call_record_contact ON call_record (contact_id, started_at);
