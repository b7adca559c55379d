-- Routing leadership across nodes (issue 15). One row: the epoch of the node that
-- leads routing now. A node that wins the PostgreSQL advisory lock bumps the epoch;
-- every routing write checks it first, so a deposed leader cannot write. On SQLite
-- (one node) the row stays at epoch 0 and nothing checks it.
CREATE TABLE routing_leader (
    id INTEGER PRIMARY KEY,
    epoch BIGINT NOT NULL,
    node TEXT NOT NULL,
    since BIGINT NOT NULL
);
INSERT INTO routing_leader (id, epoch, node, since) VALUES (1, 0, '', 0);

-- New conversations a follower took in, for the leader to route (a follower has
-- no engine). The leader takes them in order; a crash between taking and routing
-- is covered by the new leader's search for conversations without a task.
CREATE TABLE routing_inbox (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every node's last sign of life (written by its leadership loop each poll), so
-- the leader can tell a node that died and end the calls it carried.
CREATE TABLE cluster_node (
    id TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
