#!/usr/bin/env python3
"""Independent oracle for the reference TMS cutover scenario.

Reads the four CSV extracts (customers, vehicles, drivers, open_invoices) from a
directory and applies the scope / cleanse / validate rules of
docs/reference-scenario.md (in this repository), with the interpretation decisions listed in
tests/oracle/README.md. Standard library only; shares no code with the Rust engine.

Usage: tms_oracle.py EXTRACT_DIR [--explain]
Prints JSON to stdout. --explain adds "rules" (rule name -> rejected rows failing it)
to the JSON and prints the same table to stderr.
"""

import csv
import datetime
import decimal
import json
import re
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

COLUMNS = {
    "customers": ["legacy_id", "name", "email", "phone", "city", "created", "credit_limit", "status"],
    "vehicles": ["legacy_id", "plate", "vin", "make", "model", "year", "capacity_kg"],
    "drivers": ["legacy_id", "name", "license_no", "license_expiry", "status"],
    "open_invoices": [
        "invoice_no", "customer_id", "invoice_date", "currency", "amount_untaxed",
        "amount_tax", "amount_total", "amount_residual", "state",
    ],
}
ORDER = ["customers", "vehicles", "drivers", "open_invoices"]
AMOUNTS = ["amount_untaxed", "amount_tax", "amount_total", "amount_residual"]
CURRENCIES = {"EUR", "USD", "GBP"}

# ASCII digits only: Python's \d would also accept other scripts' digits.
DECIMAL_RE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
INTEGER_RE = re.compile(r"^-?[0-9]+$")
EMAIL_RE = re.compile(r"^[^\s@]+@([^\s@.]+\.)+[^\s@.]+$")
VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
ISO_DATE_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
EU_DATE_RE = re.compile(r"^([0-9]{2})/([0-9]{2})/([0-9]{4})$")

decimal.getcontext().prec = 80
decimal.getcontext().traps[decimal.Inexact] = True


# Scope domains as the shipped runbooks declare them: (in scope, declared out of scope,
# case-insensitive). A value in neither is rejected for its scope, and the row's other
# rules are not looked at (nor is it a first occurrence for uniqueness).
SCOPE = {
    "customers": ("status", {"a"}, {"i", "x", ""}, True),
    "drivers": ("status", {"active"}, {"inactive", "suspended", ""}, True),
    "open_invoices": ("state", {"open", "partial"}, {"paid", "draft", "cancel", "Open"}, False),
}


def scope_of(entity, f):
    field, inside, outside, ci = SCOPE[entity]
    v = f[field].lower() if ci else f[field]
    if v in inside:
        return "in"
    if v in outside:
        return "out"
    return "reject"


class OracleError(Exception):
    pass


# Entities whose quoted values may hold line breaks (`multiline = true` in the runbook).
MULTILINE = {"vehicles"}


def physical_lines(text):
    """Split text into physical lines: \n, \r\n and a lone \r each end one."""
    return re.split(r"\r\n|\r|\n", text)


def split_line(line):
    """One physical line as strict CSV fields, or None when it is malformed: a quote left
    open at the end of the line, text after a closing quote, a quote inside an unquoted
    value, or a backslash right before a quote inside a quoted value."""
    fields, i, n = [], 0, len(line)
    while True:
        if i < n and line[i] == '"':
            i += 1
            start = i
            parts = []
            while True:
                j = line.find('"', i)
                if j < 0:
                    return None
                parts.append(line[i:j])
                if line[j + 1:j + 2] == '"':
                    parts.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            value = "".join(parts)
            # a backslash right before a quote (the closing one or a doubled one)
            if '\\"' in line[start:i]:
                return None
            if i < n and line[i] != ",":
                return None
        else:
            j = line.find(",", i)
            j = n if j < 0 else j
            value = line[i:j]
            if '"' in value:
                return None
            i = j
        fields.append(value)
        if i >= n:
            return fields
        i += 1  # the comma


def read_records(path, entity):
    """Yield (start_line, fields_by_name or None when the record is malformed).

    start_line is the physical line where the record starts: header is line 1. For an
    entity without multi-line values every physical line is one record (blank lines are
    skipped), so a stray quote costs only its own line. For the others, Python's csv
    module reads records, and a quoted line break moves the next record's start down.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        if entity not in MULTILINE:
            lines = physical_lines(f.read())
            header = split_line(lines[0]) if lines and lines[0] else None
            if header is None:
                return
            header = [h.strip() for h in header]
            missing = [c for c in COLUMNS[entity] if c not in header]
            if missing:
                raise OracleError(f"{path}: header lacks {missing}")
            index = {c: header.index(c) for c in COLUMNS[entity]}
            for no, line in enumerate(lines[1:], start=2):
                if not line:
                    continue
                rec = split_line(line)
                if rec is None or len(rec) != len(header):
                    yield no, None
                    continue
                yield no, {c: rec[i].strip() for c, i in index.items()}
            return
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        missing = [c for c in COLUMNS[entity] if c not in header]
        if missing:
            raise OracleError(f"{path}: header lacks {missing}")
        index = {c: header.index(c) for c in COLUMNS[entity]}
        prev_end = reader.line_num
        for rec in reader:
            start = prev_end + 1
            prev_end = reader.line_num
            if not rec:  # a completely empty physical line is not a record
                continue
            if len(rec) != len(header):
                yield start, None
                continue
            yield start, {c: rec[i].strip() for c, i in index.items()}


def is_date(value):
    m = ISO_DATE_RE.fullmatch(value)
    if m:
        y, mo, d = m.groups()
    else:
        m = EU_DATE_RE.fullmatch(value)
        if not m:
            return False
        d, mo, y = m.groups()
    try:
        datetime.date(int(y), int(mo), int(d))
    except ValueError:
        return False
    return True


def check_decimal(reasons, field, value, minimum=None):
    """Append failures; return the Decimal when the value parses (regex), else None."""
    if value == "":
        reasons.append(f"{field}.missing")
        return None
    if not DECIMAL_RE.fullmatch(value):
        reasons.append(f"{field}.decimal")
        return None
    parsed = Decimal(value)
    if "." in value and len(value.split(".", 1)[1]) > 2:
        reasons.append(f"{field}.scale")
    if minimum is not None and parsed < minimum:
        reasons.append(f"{field}.min")
    return parsed


def check_integer(reasons, field, value, lo=None, hi=None):
    if value == "":
        reasons.append(f"{field}.missing")
        return
    if not INTEGER_RE.fullmatch(value):
        reasons.append(f"{field}.integer")
        return
    n = int(value)
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        reasons.append(f"{field}.range")


def check_date(reasons, field, value):
    if value == "":
        reasons.append(f"{field}.missing")
    elif not is_date(value):
        reasons.append(f"{field}.date")


def check_key(reasons, field, value, seen):
    if value == "":
        reasons.append(f"{field}.required")
    elif value in seen:
        reasons.append(f"{field}.duplicate")
    else:
        seen.add(value)


class Entity:
    def __init__(self, name):
        self.name = name
        self.in_file = 0
        self.in_scope = 0
        self.valid = 0
        self.rejected_lines = []
        self.rules = Counter()

    def reject(self, line, reasons):
        self.rejected_lines.append(line)
        for r in sorted(set(reasons)):
            self.rules[f"{self.name}.{r}"] += 1

    def stats(self):
        return {
            "in_file": self.in_file,
            "in_scope": self.in_scope,
            "valid": self.valid,
            "rejected": len(self.rejected_lines),
        }


def run_customers(path):
    ent, seen, valid_ids = Entity("customers"), set(), set()
    for line, f in read_records(path, "customers"):
        ent.in_file += 1
        if f is None:
            ent.in_scope += 1
            ent.reject(line, ["record.field_count"])
            continue
        scope = scope_of("customers", f)
        if scope == "out":
            continue
        ent.in_scope += 1
        if scope == "reject":
            ent.reject(line, ["status.scope"])
            continue
        reasons = []
        check_key(reasons, "legacy_id", f["legacy_id"], seen)
        if f["name"] == "":
            reasons.append("name.required")
        email = f["email"].lower()
        if email == "":
            reasons.append("email.missing")
        elif not EMAIL_RE.fullmatch(email):
            reasons.append("email.format")
        check_date(reasons, "created", f["created"])
        check_decimal(reasons, "credit_limit", f["credit_limit"], minimum=Decimal(0))
        if reasons:
            ent.reject(line, reasons)
        else:
            ent.valid += 1
            valid_ids.add(f["legacy_id"])
    return ent, valid_ids


def run_vehicles(path):
    ent, seen = Entity("vehicles"), set()
    for line, f in read_records(path, "vehicles"):
        ent.in_file += 1
        ent.in_scope += 1
        if f is None:
            ent.reject(line, ["record.field_count"])
            continue
        reasons = []
        check_key(reasons, "legacy_id", f["legacy_id"], seen)
        if f["vin"] == "":
            reasons.append("vin.missing")
        elif not VIN_RE.fullmatch(f["vin"]):
            reasons.append("vin.format")
        check_integer(reasons, "year", f["year"], 1900, 2100)
        check_integer(reasons, "capacity_kg", f["capacity_kg"], 1, None)
        if reasons:
            ent.reject(line, reasons)
        else:
            ent.valid += 1
    return ent


def run_drivers(path):
    ent, seen = Entity("drivers"), set()
    for line, f in read_records(path, "drivers"):
        ent.in_file += 1
        if f is None:
            ent.in_scope += 1
            ent.reject(line, ["record.field_count"])
            continue
        scope = scope_of("drivers", f)
        if scope == "out":
            continue
        ent.in_scope += 1
        if scope == "reject":
            ent.reject(line, ["status.scope"])
            continue
        reasons = []
        check_key(reasons, "legacy_id", f["legacy_id"], seen)
        if f["license_no"] == "":
            reasons.append("license_no.required")
        check_date(reasons, "license_expiry", f["license_expiry"])
        if reasons:
            ent.reject(line, reasons)
        else:
            ent.valid += 1
    return ent


def run_invoices(path, valid_customers):
    ent, seen, partner = Entity("open_invoices"), set(), {}
    sums = {k: Decimal(0) for k in ("valid_total", "valid_residual", "rejected_total", "rejected_residual")}
    # The same sums per currency code (as trimmed; "" when blank), since the runbook's sum
    # checks name a currency field: {"valid.amount_total": {"EUR": Decimal}, ...}.
    by_cur = {f"{side}.{a}": {} for side in ("valid", "rejected") for a in ("amount_total", "amount_residual")}

    def add(side, amount, value, cur):
        if value is not None:
            m = by_cur[f"{side}.{amount}"]
            m[cur] = m.get(cur, Decimal(0)) + value
    for line, f in read_records(path, "open_invoices"):
        ent.in_file += 1
        if f is None:
            ent.in_scope += 1
            ent.reject(line, ["record.field_count"])
            continue
        scope = scope_of("open_invoices", f)
        if scope == "out":
            continue
        ent.in_scope += 1
        if scope == "reject":
            ent.reject(line, ["state.scope"])
            add("rejected", "amount_total", decimal_or_none(f["amount_total"]), f["currency"])
            add("rejected", "amount_residual", decimal_or_none(f["amount_residual"]), f["currency"])
            for a, k in (("amount_total", "rejected_total"), ("amount_residual", "rejected_residual")):
                d = decimal_or_none(f[a])
                if d is not None:
                    sums[k] += d
            continue
        reasons = []
        check_key(reasons, "invoice_no", f["invoice_no"], seen)
        if f["customer_id"] not in valid_customers:
            reasons.append("customer_id.unknown_customer")
        if f["currency"] == "":
            reasons.append("currency.missing")
        elif f["currency"] not in CURRENCIES:
            reasons.append("currency.allowed")
        amt = {a: check_decimal(reasons, a, f[a]) for a in AMOUNTS}
        untaxed, tax, total, residual = (amt[a] for a in AMOUNTS)
        if untaxed is not None and tax is not None and total is not None and untaxed + tax != total:
            reasons.append("amount_total.sum")
        if residual is not None and residual < 0:
            reasons.append("amount_residual.negative")
        if residual is not None and total is not None and residual > total:
            reasons.append("amount_residual.exceeds_total")
        if reasons:
            ent.reject(line, reasons)
            if total is not None:
                sums["rejected_total"] += total
            if residual is not None:
                sums["rejected_residual"] += residual
            add("rejected", "amount_total", total, f["currency"])
            add("rejected", "amount_residual", residual, f["currency"])
        else:
            ent.valid += 1
            sums["valid_total"] += total
            sums["valid_residual"] += residual
            add("valid", "amount_total", total, f["currency"])
            add("valid", "amount_residual", residual, f["currency"])
            partner[f["invoice_no"]] = f["customer_id"]
    return ent, sums, by_cur, partner


def decimal_or_none(value):
    """A rejected row's amount as the sums count it: any strict decimal, whatever its scale."""
    return Decimal(value) if DECIMAL_RE.fullmatch(value) else None


def fmt_money(d):
    """At least two places; more only when an operand had more (kept exact)."""
    if d.as_tuple().exponent > -2:
        d = d.quantize(Decimal("0.01"))
    return str(d)


def run(directory):
    directory = Path(directory)
    path = {e: directory / f"{e}.csv" for e in ORDER}
    for p in path.values():
        if not p.is_file():
            raise OracleError(f"missing extract {p}")
    customers, valid_customers = run_customers(path["customers"])
    vehicles = run_vehicles(path["vehicles"])
    drivers = run_drivers(path["drivers"])
    invoices, sums, by_cur, partner = run_invoices(path["open_invoices"], valid_customers)
    ents = [customers, vehicles, drivers, invoices]
    rules = Counter()
    for e in ents:
        rules.update(e.rules)
    return {
        "entities": {e.name: e.stats() for e in ents},
        "open_invoices_sums": {k: fmt_money(v) for k, v in sums.items()},
        "open_invoices_sums_by_currency": {
            k: {c: fmt_money(v) for c, v in m.items()} for k, m in by_cur.items()
        },
        "rejected_lines": {e.name: e.rejected_lines for e in ents},
        "invoice_partner": partner,
    }, dict(sorted(rules.items()))


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = {a for a in argv[1:] if a.startswith("--")}
    if len(args) != 1 or not flags <= {"--explain"}:
        print(__doc__.strip().splitlines()[-4], file=sys.stderr)
        return 2
    try:
        report, rules = run(args[0])
    except (OracleError, OSError, UnicodeDecodeError, csv.Error) as e:
        print(f"tms_oracle: {e}", file=sys.stderr)
        return 1
    if "--explain" in flags:
        report["rules"] = rules
        width = max((len(r) for r in rules), default=0)
        for r, n in rules.items():
            print(f"{r:<{width}}  {n}", file=sys.stderr)
    json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
