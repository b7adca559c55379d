-- The post-call IVR survey: a queue that sets `voice` (1) offers its questions to
-- callers by DTMF when the agent hangs up first (REPORTS.md, "Surveys"). 0 keeps
-- calls as they were.
ALTER TABLE survey_setting ADD COLUMN voice BIGINT NOT NULL DEFAULT 0;
