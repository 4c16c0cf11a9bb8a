#!/usr/bin/env python3
"""Server time per batch of the PostgreSQL write path, statement by statement.

Usage: bench/pg_write_path.py EXTRACT_DIR   (an extract from examples/gen_reference --clean)

Loads open_invoices (a lookup on res_partner: the INSERT … SELECT path) and customers
(no column needs SQL: the COPY-straight-in path) in batches of 1k/5k/10k/50k, one
transaction per batch as the target does, and prints the mean milliseconds per batch of:
COPY into the staging table, the upsert into an empty table, the plain INSERT … SELECT,
the upsert replayed over identical rows, COPY straight into the target (text and binary).
Times are psql's \\timing on 127.0.0.1 (server work plus a local round trip).
"""
import csv, os, re, subprocess, sys, tempfile

EXT = sys.argv[1]
DB = f"cutover_c14_bench_{os.getpid()}"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
tmp = tempfile.mkdtemp()

def esc(v):
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

def rows(path, conv):
    with open(path, newline="") as f:
        r = csv.reader(f); next(r)
        return [conv(x) for x in r]

STATE = {"open": "not_paid", "partial": "partial"}
inv = rows(f"{EXT}/open_invoices.csv", lambda x: [x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], STATE.get(x[8], x[8])])
inv = [r for r in inv if r[8] in ("not_paid", "partial")][: int(os.environ.get("INVOICES", "100000"))]
def iso(d):
    return f"{d[6:10]}-{d[3:5]}-{d[0:2]}" if len(d) == 10 and d[2] == "/" else d
cus = rows(f"{EXT}/customers.csv", lambda x: [x[0], x[1], x[2].lower(), x[3], x[4], iso(x[5]), x[6]])

SCHEMA = """
CREATE TABLE res_partner (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, name text NOT NULL,
  email text, phone text, city text, create_date date, credit_limit numeric(14,2));
CREATE TABLE account_move (id serial PRIMARY KEY, name text NOT NULL UNIQUE,
  partner_id integer NOT NULL REFERENCES res_partner(id), invoice_date date, currency text NOT NULL,
  amount_untaxed numeric(14,2) NOT NULL, amount_tax numeric(14,2) NOT NULL,
  amount_total numeric(14,2) NOT NULL, amount_residual numeric(14,2) NOT NULL, payment_state text NOT NULL);
"""
INV_COLS = "name, partner_id, invoice_date, currency, amount_untaxed, amount_tax, amount_total, amount_residual, payment_state"
INV_SEL = ("s.c0::text, (SELECT l.id FROM res_partner l WHERE l.ref = s.c1::text), s.c2::date, s.c3::text, "
           "s.c4::numeric, s.c5::numeric, s.c6::numeric, s.c7::numeric, s.c8::text")
REST = ["partner_id", "invoice_date", "currency", "amount_untaxed", "amount_tax", "amount_total", "amount_residual", "payment_state"]
UPSERT = (" ON CONFLICT (name) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in REST) +
          " WHERE (" + ", ".join(f"t.{c}::text" for c in REST) + ") IS DISTINCT FROM (" +
          ", ".join(f"EXCLUDED.{c}::text" for c in REST) + ")")
CUS_COLS = "ref, name, email, phone, city, create_date, credit_limit"

def psql(script):
    p = subprocess.run(PSQL + ["-d", DB], input=script, text=True, capture_output=True)
    if p.returncode:
        sys.exit(p.stderr)
    return p.stdout

def write_batches(data, b, tag):
    files = []
    for i in range(0, len(data), b):
        fn = f"{tmp}/{tag}-{b}-{i}.txt"
        with open(fn, "w") as f:
            for r in data[i:i + b]:
                f.write("\t".join(esc(v) for v in r) + "\n")
        files.append(fn)
    return files

def timed(script_lines):
    """Run lines; returns the \\timing ms of every line marked with a trailing '-- T:label'."""
    out = psql("\\timing on\n" + "\n".join(l.split(" -- T:")[0] for l in script_lines) + "\n")
    times = [float(t) for t in re.findall(r"Time: ([0-9.]+) ms", out)]
    labels = [l.split(" -- T:")[1] if " -- T:" in l else None for l in script_lines]
    # every statement (including BEGIN/COMMIT/\copy) prints one Time line
    res = {}
    for lab, t in zip(labels, times):
        if lab:
            res.setdefault(lab, []).append(t)
    return res

subprocess.run(PSQL + ["-c", f"CREATE DATABASE {DB}"], check=True)
try:
    psql(SCHEMA)
    n9 = ", ".join(f"c{i} text" for i in range(9))
    n7 = ", ".join(f"c{i} text" for i in range(7))
    print(f"rows: {len(inv)} invoices, {len(cus)} customers")
    print("invoices: COPY into the staging table, then (statement + COMMIT) the upsert into an empty table, the plain INSERT … SELECT, the upsert replayed over the same rows")
    print("customers: the whole transaction: COPY→stage + upsert + COMMIT, COPY straight in (text) + COMMIT, the same in binary")
    print("batch | COPY→stage | upsert (empty) | INSERT…SELECT (empty) | upsert replay | cust: COPY→stage+upsert | cust: COPY direct text | cust: COPY direct binary   (ms per batch)")
    for b in (1000, 5000, 10000, 50000):
        ifiles = write_batches(inv, b, "inv")
        cfiles = write_batches(cus, min(b, len(cus)), "cus")
        res = {}
        for mode in ("upsert", "plain", "replay"):
            lines = ["TRUNCATE account_move, res_partner RESTART IDENTITY CASCADE;",
                     f"\\copy res_partner ({CUS_COLS}) FROM '{cfiles[0]}'" if False else "",
                     f"CREATE TEMP TABLE st9 ({n9}) ON COMMIT DELETE ROWS;"]
            for fn in cfiles:
                lines.append(f"\\copy res_partner ({CUS_COLS}) FROM '{fn}'")
            lines.append("ANALYZE res_partner;")
            passes = 2 if mode == "replay" else 1
            for p in range(passes):
                for fn in ifiles:
                    lines.append("BEGIN;")
                    lines.append(f"\\copy st9 FROM '{fn}' -- T:copy_stage" if p == passes - 1 else f"\\copy st9 FROM '{fn}'")
                    ins = f"INSERT INTO account_move AS t ({INV_COLS}) SELECT {INV_SEL} FROM st9 s"
                    if mode in ("upsert", "replay"):
                        ins += UPSERT
                    lines.append(ins + (f"; -- T:{mode}" if p == passes - 1 else ";"))
                    lines.append(f"COMMIT; -- T:{mode}_commit" if p == passes - 1 else "COMMIT;")
            r = timed([l for l in lines if l])
            res.update(r)
        # customers: stage + upsert into empty, vs COPY direct text, vs binary
        for mode in ("cstage", "ctext", "cbin"):
            lines = ["TRUNCATE account_move, res_partner RESTART IDENTITY CASCADE;",
                     f"CREATE TEMP TABLE st7 ({n7}) ON COMMIT DELETE ROWS;"]
            for fn in cfiles:
                if mode == "cstage":
                    rest = ["name", "email", "phone", "city", "create_date", "credit_limit"]
                    lines += ["BEGIN;", f"\\copy st7 FROM '{fn}' -- T:cstage",
                              f"INSERT INTO res_partner AS t ({CUS_COLS}) SELECT s.c0::text, s.c1::text, s.c2::text, s.c3::text, s.c4::text, s.c5::date, s.c6::numeric FROM st7 s ON CONFLICT (ref) DO UPDATE SET "
                              + ", ".join(f"{c} = EXCLUDED.{c}" for c in rest) + " WHERE (" + ", ".join(f"t.{c}::text" for c in rest)
                              + ") IS DISTINCT FROM (" + ", ".join(f"EXCLUDED.{c}::text" for c in rest) + "); -- T:cstage", "COMMIT; -- T:cstage"]
                elif mode == "ctext":
                    lines += ["BEGIN;", f"\\copy res_partner ({CUS_COLS}) FROM '{fn}' -- T:ctext", "COMMIT; -- T:ctext"]
                else:
                    binf = fn + ".bin"
                    if not os.path.exists(binf):
                        # the same rows in binary format, produced by the server itself
                        psql(f"CREATE TEMP TABLE x (LIKE res_partner INCLUDING DEFAULTS); \\copy x ({CUS_COLS}) FROM '{fn}'\n\\copy x ({CUS_COLS}) TO '{binf}' (FORMAT binary)\n")
                    lines += ["BEGIN;", f"\\copy res_partner ({CUS_COLS}) FROM '{binf}' (FORMAT binary) -- T:cbin", "COMMIT; -- T:cbin"]
            r = timed(lines)
            for k, v in r.items():
                per = 3 if k == "cstage" else 2
                v = [sum(v[i:i + per]) for i in range(0, len(v), per)]
                res[k] = v
        mean = lambda k: sum(res[k]) / len(res[k])
        for m in ("upsert", "plain", "replay"):
            res[m] = [a + c for a, c in zip(res[m], res[m + "_commit"])]
        print(f"{b:>5} | {mean('copy_stage'):8.1f} | {mean('upsert'):8.1f} | {mean('plain'):8.1f} | {mean('replay'):8.1f} | "
              f"{mean('cstage'):8.1f} | {mean('ctext'):8.1f} | {mean('cbin'):8.1f}   (cust batches of {min(b, len(cus))})")
        sys.stdout.flush()
finally:
    subprocess.run(PSQL + ["-c", f"DROP DATABASE IF EXISTS {DB}"])
