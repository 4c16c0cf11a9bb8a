#!/usr/bin/env bash
# Benchmark: a clean reference extract at scale, loaded by `cutover rehearse` and by
# `psql \copy` in the same invocation. Prints both times, their ratio and peak RSS.
#
#   bench/load.sh [INVOICES]          (default 1000000; needs PostgreSQL on 127.0.0.1:5432)
#
# This build's staging target is SQLite, so the cutover figure is the full pipeline
# (parse, scope, cleanse, validate, transform, rejects, batched upserts, reconciliation)
# into a SQLite file; psql \copy is the floor: a raw COPY into one keyed table.
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

DB=cutover_bench_$$
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -h 127.0.0.1 -U postgres -d "$DB" -qc "CREATE TABLE open_invoices (invoice_no text PRIMARY KEY, customer_id text, invoice_date text, currency text, amount_untaxed numeric(14,2), amount_tax numeric(14,2), amount_total numeric(14,2), amount_residual numeric(14,2), state text)"
read -r _ PSQL_S PSQL_RSS < <(time_it psql psql -h 127.0.0.1 -U postgres -d "$DB" -qc "\\copy open_invoices FROM '$OUT/extract/open_invoices.csv' CSV HEADER")
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE $DB"

read -r _ CUT_S CUT_RSS < <(time_it cutover target/release/cutover rehearse runbooks/tms.toml --headless --json \
  --var extract_dir="$OUT/extract" --var staging_url="sqlite://$PWD/$OUT/staging.db" --journal "$OUT/journal.db")

python3 - "$OUT/cutover.out" <<PY
import json, sys
s = json.load(open(sys.argv[1]))
rows = sum(e["in_file"] for e in s["entities"].values())
print(f"rows through the pipeline (all four entities): {rows}")
print(f"psql \\\\copy (open_invoices only, PostgreSQL): {float('$PSQL_S'):.2f} s, peak RSS {int('$PSQL_RSS')//1024} MB")
print(f"cutover rehearse (extract+dry_run+validate, SQLite staging): {float('$CUT_S'):.2f} s, peak RSS {int('$CUT_RSS')//1024} MB")
print(f"ratio cutover / psql: {float('$CUT_S')/float('$PSQL_S'):.1f}x")
PY
