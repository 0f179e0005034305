-- tracer's SQLite schema. Times are microseconds since the Unix epoch.
-- Header lists are JSON arrays of [name, value] pairs in the order they
-- crossed the proxy; a value that is not UTF-8 is {"b64": "..."}.

CREATE TABLE exchanges (
    -- AUTOINCREMENT: ids are what users type (`tracer show 42`), never reuse one.
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
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
    request_body         BLOB    NOT NULL,
    request_body_size    INTEGER NOT NULL,
    request_body_sha256  TEXT    NOT NULL,
    status               INTEGER,
    reason               TEXT,
    response_version     TEXT,
    response_headers     TEXT    NOT NULL,
    response_body        BLOB    NOT NULL,
    response_body_size   INTEGER NOT NULL,
    response_body_sha256 TEXT    NOT NULL,
    request_seq          INTEGER NOT NULL,
    response_seq         INTEGER,
    started_at           INTEGER NOT NULL,
    response_at          INTEGER,
    finished_at          INTEGER NOT NULL,
    error                TEXT,
    ignored              INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX exchanges_request_seq ON exchanges (request_seq);
CREATE INDEX exchanges_started_at ON exchanges (started_at);
CREATE INDEX exchanges_request_id ON exchanges (request_id);

CREATE TABLE flows (
    name         TEXT    PRIMARY KEY,
    title        TEXT,
    started_at   INTEGER NOT NULL,
    stopped_at   INTEGER,
    -- JSON array of strings; NULL unless the flow was recorded with `tracer record`.
    command_argv TEXT,
    stdout       BLOB,
    stderr       BLOB,
    exit_status  INTEGER
);

CREATE TABLE capture_losses (
    at    INTEGER NOT NULL,
    count INTEGER NOT NULL
);

CREATE INDEX capture_losses_at ON capture_losses (at);

CREATE TABLE token_owners (
    token_sha256 TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL,
    user_id      TEXT,
    project_id   TEXT,
    expires_at   INTEGER
);
