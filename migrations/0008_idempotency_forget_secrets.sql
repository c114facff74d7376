-- Answers kept for Idempotency-Key replays held the job's webhook signing secret in clear; a
-- replay now answers without it (routes/jobs.ts), and so do the answers kept before.
UPDATE `idempotency_keys` SET `body` = json_remove(`body`, '$.webhookSecret') WHERE json_extract(`body`, '$.webhookSecret') IS NOT NULL;
