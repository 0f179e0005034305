-- tracer's PostgreSQL schema: the SQLite schema (migrations/sqlite/) in
-- PostgreSQL types, read and written by the same SQL (src/store/sql.rs).
-- Times and event numbers are microseconds since the Unix epoch (BIGINT).
-- Header lists are JSON arrays of [name, value] pairs in the order they
-- crossed the proxy; a value that is not UTF-8 is {"b64": "..."}. They are
-- kept as TEXT, not JSONB: the bytes read back are the bytes written, and
-- JSONB's refusal of "\u0000" cannot fail a batch.

CREATE TABLE exchanges (
    -- Never reused: ids are what users type (`tracer show 42`). With several
    -- daemons writing, ids follow insert order, not event order.
    id                   BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid                 TEXT    NOT NULL UNIQUE,
    request_id           TEXT    NOT NULL,
    service              TEXT    NOT NULL,
    caller               TEXT    NOT NULL,
    caller_source        TEXT    NOT NULL,
    client_addr          TEXT    NOT NULL,
    upstream_url         TEXT    NOT NULL,
    method               TEXT    NOT NULL,
    target               TEXT    NOT NULL,
    request_version      TEXT    NOT NULL,
    request_headers      TEXT    NOT NULL,
    request_body         BYTEA   NOT NULL,
    request_body_size    BIGINT  NOT NULL,
    request_body_sha256  TEXT    NOT NULL,
    status               BIGINT,
    reason               TEXT,
    response_version     TEXT,
    response_headers     TEXT    NOT NULL,
    response_body        BYTEA   NOT NULL,
    response_body_size   BIGINT  NOT NULL,
    response_body_sha256 TEXT    NOT NULL,
    request_seq          BIGINT  NOT NULL,
    response_seq         BIGINT,
    started_at           BIGINT  NOT NULL,
    response_at          BIGINT,
    finished_at          BIGINT  NOT NULL,
    error                TEXT,
    ignored              BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX exchanges_request_seq ON exchanges (request_seq);
CREATE INDEX exchanges_started_at ON exchanges (started_at);
CREATE INDEX exchanges_request_id ON exchanges (request_id);

CREATE TABLE flows (
    name         TEXT    PRIMARY KEY,
    title        TEXT,
    started_at   BIGINT  NOT NULL,
    stopped_at   BIGINT,
    -- JSON array of strings; NULL unless the flow was recorded with `tracer record`.
    command_argv TEXT,
    stdout       BYTEA,
    stderr       BYTEA,
    exit_status  BIGINT
);

CREATE TABLE capture_losses (
    at    BIGINT NOT NULL,
    count BIGINT NOT NULL
);

CREATE INDEX capture_losses_at ON capture_losses (at);

CREATE TABLE token_owners (
    token_sha256 TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL,
    user_id      TEXT,
    project_id   TEXT,
    expires_at   BIGINT
);
