#!/usr/bin/env bash
# Benchmark: a clean reference extract at scale (the project's own generator), loaded in
# the same invocation by `psql \copy` into identically keyed PostgreSQL tables and by
# `cutover rehearse` into PostgreSQL staging (and, for comparison, into a SQLite file).
# Prints the times, the ratio to psql \copy and the peak RSS of each (/usr/bin/time -v).
# Then the same SQLite rehearsal headless and with the console open (in a tmux pane,
# 160×48), alternated PAIRS times: the median ratio of their run times, both read from the
# journal, is the console's cost (the target is at most 1.05).
#
#   [PAIRS=3] bench/load.sh [INVOICES]     (default 1000000; needs PostgreSQL on 127.0.0.1:5432)
#
# psql \copy is the floor: a raw COPY of the four CSV files into keyed tables, no rules.
# cutover does the whole pipeline: parse, scope, cleanse, validate, transform, rejects,
# COPY into a staging table + upsert with references resolved in the database, batch
# checkpoints in the journal, then reconciliation.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
OUT=bench/out
rm -rf "$OUT" && mkdir -p "$OUT"
cargo build --release --quiet --bins --examples
echo "generating a clean extract with $N invoices…"
target/release/examples/gen_reference "$OUT/extract" --clean "$N" >/dev/null
ls -la "$OUT/extract"

time_it() { # label, command…
  local label=$1; shift
  /usr/bin/time -v "$@" >"$OUT/$label.out" 2>"$OUT/$label.time" || { cat "$OUT/$label.time"; exit 1; }
  local secs rss
  secs=$(grep "Elapsed (wall clock)" "$OUT/$label.time" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident set size" "$OUT/$label.time" | awk '{print $NF}')
  echo "$label $secs $rss"
}

PG="psql -h 127.0.0.1 -U postgres -X"
COPYDB=cutover_bench_copy_$$
STAGEDB=cutover_bench_stage_$$
cleanup() { $PG -qc "DROP DATABASE IF EXISTS $COPYDB" -c "DROP DATABASE IF EXISTS $STAGEDB" >/dev/null 2>&1 || true; }
trap cleanup EXIT
$PG -qc "CREATE DATABASE $COPYDB" -c "CREATE DATABASE $STAGEDB"
$PG -d "$COPYDB" -q <<'SQL'
CREATE TABLE customers (legacy_id text PRIMARY KEY, name text, email text, phone text, city text, created text, credit_limit text, status text);
CREATE TABLE vehicles (legacy_id text PRIMARY KEY, plate text, vin text, make text, model text, year text, capacity_kg text);
CREATE TABLE drivers (legacy_id text PRIMARY KEY, name text, license_no text, license_expiry text, status text);
CREATE TABLE open_invoices (invoice_no text PRIMARY KEY, customer_id text, invoice_date text, currency text, amount_untaxed numeric(14,2), amount_tax numeric(14,2), amount_total numeric(14,2), amount_residual numeric(14,2), state text);
SQL
read -r _ PSQL_S PSQL_RSS < <(time_it psql $PG -d "$COPYDB" -q \
  -c "\\copy customers FROM '$OUT/extract/customers.csv' CSV HEADER" \
  -c "\\copy vehicles FROM '$OUT/extract/vehicles.csv' CSV HEADER" \
  -c "\\copy drivers FROM '$OUT/extract/drivers.csv' CSV HEADER" \
  -c "\\copy open_invoices FROM '$OUT/extract/open_invoices.csv' CSV HEADER")

read -r _ PGC_S PGC_RSS < <(time_it cutover_pg target/release/cutover rehearse runbooks/tms-postgres.toml --headless --json \
  --var legacy_url= --var extract_dir="$OUT/extract" \
  --var staging_url="postgres://postgres@127.0.0.1:5432/$STAGEDB" --journal "$OUT/journal.db")

read -r _ SQL_S SQL_RSS < <(time_it cutover_sqlite target/release/cutover rehearse runbooks/tms.toml --headless --json \
  --var extract_dir="$OUT/extract" --var staging_url="sqlite://$PWD/$OUT/staging.db" --journal "$OUT/journal.db")

# The console open: the same rehearsal in a real terminal (tmux), left when it has finished.
run_secs() { # journal: the run's engine time, RunStarted to RunFinished
  python3 - "$1" <<'PY'
import sqlite3, sys
from datetime import datetime
db = sqlite3.connect(sys.argv[1])
run = db.execute("SELECT run_id FROM events WHERE kind='run_started' ORDER BY seq DESC LIMIT 1").fetchone()[0]
ts = [datetime.fromisoformat(t.replace("Z", "+00:00")) for (t,) in db.execute(
    "SELECT ts FROM events WHERE run_id=? AND kind IN ('run_started','run_finished') ORDER BY seq", (run,))]
print(f"{(ts[-1] - ts[0]).total_seconds():.3f}")
PY
}

# The console's cost: the same SQLite rehearsal headless and with the console open in a
# tmux pane, alternated PAIRS times (default 3) so a busy spell on a shared machine does not
# land on one side only; the median of the per-pair ratios is reported.
PAIRS=${PAIRS:-3}
RATIOS=""
for i in $(seq 1 "$PAIRS"); do
  rm -f "$OUT"/pair-*.db
  target/release/cutover rehearse runbooks/tms.toml --headless --json \
    --var extract_dir="$OUT/extract" --var staging_url="sqlite://$PWD/$OUT/pair-staging.db" \
    --journal "$OUT/pair-journal-headless.db" >/dev/null 2>"$OUT/pair-headless.err" \
    || { cat "$OUT/pair-headless.err"; exit 1; }
  TUI=cutover_bench_tui_$$_$i
  rm -f "$OUT/tui.done"
  tmux new-session -d -s "$TUI" -x 160 -y 48 \
    "env -u CI target/release/cutover rehearse runbooks/tms.toml --var extract_dir=$OUT/extract \
     --var staging_url=sqlite://$PWD/$OUT/pair-staging-tui.db --journal $OUT/pair-journal-tui.db; touch $OUT/tui.done"
  until tmux capture-pane -p -t "$TUI" | grep -q "Run finished"; do sleep 1; done
  tmux send-keys -t "$TUI" q
  until [ -e "$OUT/tui.done" ]; do sleep 0.2; done
  tmux kill-session -t "$TUI" 2>/dev/null || true
  H=$(run_secs "$OUT/pair-journal-headless.db")
  T=$(run_secs "$OUT/pair-journal-tui.db")
  echo "pair $i: headless $H s, console open $T s"
  RATIOS="$RATIOS $H:$T"
done

python3 - "$OUT/cutover_pg.out" <<PY
import json, sys
s = json.load(open(sys.argv[1]))
rows = sum(e["in_file"] for e in s["entities"].values())
loaded = sum(e["loaded"] for e in s["entities"].values())
print(f"rows: {rows} in the four files, {loaded} loaded by cutover (outcome {s['outcome']})")
psql = float('$PSQL_S')
for label, secs, rss in [("psql \\\\copy, four keyed tables (PostgreSQL)", psql, $PSQL_RSS),
                         ("cutover rehearse into PostgreSQL staging", float('$PGC_S'), $PGC_RSS),
                         ("cutover rehearse into SQLite staging", float('$SQL_S'), $SQL_RSS)]:
    print(f"{label:48} {secs:8.2f} s  {secs/psql:5.1f}x psql  peak RSS {rss//1024} MB")
pairs = [tuple(map(float, p.split(":"))) for p in "$RATIOS".split()]
ratios = sorted(t / h for h, t in pairs)
median = ratios[len(ratios) // 2]
print(f"console open vs headless (SQLite rehearsal, engine time from the journal, {len(pairs)} alternated pairs): "
      f"per pair {', '.join(f'{t:.2f}/{h:.2f} s' for h, t in pairs)}; median {median:.3f}x")
PY
