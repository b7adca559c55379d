-- Agent rollup: the agents report's agent time per UTC hour and agent, kept in the
-- same transactions as `agent_segment` (a closed stretch adds its time to each hour it
-- covers, cut at the hour's edges). Derived, rebuilt by `switchboard reports rebuild`,
-- filled from `agent_segment` at the first start after this migration. REPORTS.md
-- ("How the facts are kept") says when it is read.
--
-- `hour` is ms since the epoch, a multiple of 3,600,000. Only closed stretches are
-- here: an agent's current stretch (`agent_state`) is added by the report up to its now.
CREATE TABLE agent_rollup (
    hour        BIGINT NOT NULL,
    agent_id    TEXT NOT NULL,
    staffed_ms  BIGINT NOT NULL DEFAULT 0,
    busy_ms     BIGINT NOT NULL DEFAULT 0,
    task_ms     BIGINT NOT NULL DEFAULT 0,
    load_ms     BIGINT NOT NULL DEFAULT 0,
    capacity_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, agent_id)
);
