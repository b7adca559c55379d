-- Each agent's e-mail signature: plain text the host appends to the agent's e-mail
-- replies. NULL when the agent has none.
ALTER TABLE agent ADD COLUMN signature TEXT;
