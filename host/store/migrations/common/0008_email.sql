-- E-mail threading looks a message up by the Message-ID it answers, whichever
-- mailbox (plugin) sent or received it.
CREATE INDEX timeline_provider ON timeline_event (provider_id, channel);
