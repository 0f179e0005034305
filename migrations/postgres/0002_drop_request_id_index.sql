-- Request ids are random (UUIDv4), so every insert into their index lands on
-- a random page: at tens of thousands of exchanges per second that index
-- alone cost more than the rest of the row. Looking an exchange up by
-- request id (`tracer show <request-id>`) scans instead; ids and uuids
-- (time-ordered UUIDv7) keep their indexes.
DROP INDEX IF EXISTS exchanges_request_id;
