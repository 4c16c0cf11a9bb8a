-- The cutover journal on PostgreSQL: the same table as migrations/sqlite, so records and
-- hashes are identical on both backends. `ts` stays RFC 3339 text because it is hashed.
CREATE TABLE IF NOT EXISTS events (
    seq       BIGINT PRIMARY KEY,
    run_id    TEXT NOT NULL,
    ts        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, seq);

-- Append-only: the database itself refuses edits, not just this program.
CREATE OR REPLACE FUNCTION cutover_journal_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the cutover journal is append-only';
END;
$$;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION cutover_journal_append_only();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION cutover_journal_append_only();
-- TRUNCATE fires no row triggers, so it needs its own statement-level one.
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION cutover_journal_append_only();
