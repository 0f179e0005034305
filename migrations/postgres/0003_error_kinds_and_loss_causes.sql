-- Errors are typed: what kind of fault (refused, reset, timeout, closed-early,
-- bad-framing, rejected, tls, io, shutdown, internal) and whose side it came
-- from (client, upstream, tracer), beside the message in `error`. Rows from
-- before have NULL here and read as kind `other`.
ALTER TABLE exchanges ADD COLUMN error_kind TEXT;
ALTER TABLE exchanges ADD COLUMN error_side TEXT;

-- Why exchanges were not stored: `queue-full`, `queue-bytes`, `write-failed`
-- (the database refused the batch: disk full, I/O error), `writer-stopped`.
-- Rows from before read as `queue-full`, the only cause there was.
ALTER TABLE capture_losses ADD COLUMN cause TEXT NOT NULL DEFAULT 'queue-full';
-- The first error message of that cause in the batch of losses.
ALTER TABLE capture_losses ADD COLUMN detail TEXT;
