-- Report rollups: task figures and journey figures per UTC hour, channel and queue,
-- kept in the same transactions as `task_fact` and `conversation_fact` (each change to
-- a fact takes its old contribution out and puts the new one in). Derived, rebuilt by
-- `switchboard reports rebuild`. REPORTS.md ("How the facts are kept") says which
-- reports read them and when.
--
-- `hour` is the UTC hour of the tasks' arrival (ms since the epoch, a multiple of
-- 3,600,000). The counts that depend on a threshold are for the default thresholds
-- (short abandon 5 s, service level 20 s); other thresholds read `task_fact`.
CREATE TABLE task_rollup (
    hour                  BIGINT NOT NULL,
    channel               TEXT NOT NULL,
    queue_id              TEXT NOT NULL,
    arrived               BIGINT NOT NULL DEFAULT 0,
    handled               BIGINT NOT NULL DEFAULT 0,
    abandoned             BIGINT NOT NULL DEFAULT 0,
    short_abandoned       BIGINT NOT NULL DEFAULT 0,
    replaced              BIGINT NOT NULL DEFAULT 0,
    waiting               BIGINT NOT NULL DEFAULT 0,
    answered_in_sl        BIGINT NOT NULL DEFAULT 0,
    queue_ms_sum          BIGINT NOT NULL DEFAULT 0,
    queue_ms_max          BIGINT,
    abandon_ms_sum        BIGINT NOT NULL DEFAULT 0,
    responded             BIGINT NOT NULL DEFAULT 0,
    first_response_ms_sum BIGINT NOT NULL DEFAULT 0,
    handled_ended         BIGINT NOT NULL DEFAULT 0,
    connected_ms_sum      BIGINT NOT NULL DEFAULT 0,
    wrap_ms_sum           BIGINT NOT NULL DEFAULT 0,
    hold_ms_sum           BIGINT NOT NULL DEFAULT 0,
    transferred           BIGINT NOT NULL DEFAULT 0,
    transfers             BIGINT NOT NULL DEFAULT 0,
    handoffs              BIGINT NOT NULL DEFAULT 0,
    handoffs_context      BIGINT NOT NULL DEFAULT 0,
    missed_offers         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, channel, queue_id)
);

-- Journeys (conversations that are not machine mail) per UTC hour of their opening,
-- first channel and first queue (`''` for none). First contact resolution is counted
-- for the default window (7 days) as `no` and as not settled `no` (`fcr_unsettled`),
-- which a report splits into `yes` and `pending` by its now.
CREATE TABLE journey_rollup (
    hour              BIGINT NOT NULL,
    channel           TEXT NOT NULL,
    queue_id          TEXT NOT NULL,
    journeys          BIGINT NOT NULL DEFAULT 0,
    resolved          BIGINT NOT NULL DEFAULT 0,
    fcr_no            BIGINT NOT NULL DEFAULT 0,
    fcr_unsettled     BIGINT NOT NULL DEFAULT 0,
    multi_channel     BIGINT NOT NULL DEFAULT 0,
    switches          BIGINT NOT NULL DEFAULT 0,
    reopened          BIGINT NOT NULL DEFAULT 0,
    resolution_ms_sum BIGINT NOT NULL DEFAULT 0,
    handoffs          BIGINT NOT NULL DEFAULT 0,
    handoffs_context  BIGINT NOT NULL DEFAULT 0,
    csat_sent         BIGINT NOT NULL DEFAULT 0,
    csat_responses    BIGINT NOT NULL DEFAULT 0,
    csat_satisfied    BIGINT NOT NULL DEFAULT 0,
    csat_sum          BIGINT NOT NULL DEFAULT 0,
    ces_sent          BIGINT NOT NULL DEFAULT 0,
    ces_responses     BIGINT NOT NULL DEFAULT 0,
    ces_easy          BIGINT NOT NULL DEFAULT 0,
    ces_sum           BIGINT NOT NULL DEFAULT 0,
    nps_sent          BIGINT NOT NULL DEFAULT 0,
    nps_responses     BIGINT NOT NULL DEFAULT 0,
    nps_promoters     BIGINT NOT NULL DEFAULT 0,
    nps_detractors    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, channel, queue_id)
);

-- Journeys whose first contact resolution is still pending are the ones resolved
-- within the window before now: found through this index, not the whole range.
CREATE INDEX conversation_fact_first_resolved ON conversation_fact (first_resolved_at);

-- The percentile passes read task_fact by arrival: this index holds every column they
-- read, so they scan the index alone. It replaces the plain index on arrival.
CREATE INDEX task_fact_arrived_times
    ON task_fact (arrived_at, channel, queue_id, answered_at, first_response_at);
DROP INDEX task_fact_arrived;
