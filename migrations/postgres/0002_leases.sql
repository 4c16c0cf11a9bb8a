-- Who drives a run: one row per runbook (scope), held by one process at a time. The holder
-- renews `heartbeat` every few seconds; times are milliseconds since 1970 by the journal
-- database's clock. Rows are replaced on take-over and deleted when the run ends.
CREATE TABLE IF NOT EXISTS leases (
    scope      TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    proc_start TEXT NOT NULL,
    token      TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat  BIGINT NOT NULL
);
