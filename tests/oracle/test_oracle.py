"""Hand-checked tests for tms_oracle.py: tiny extracts whose expected counts were worked
out by hand, line by line (see the comments). Run: python3 -m unittest tests/oracle/test_oracle.py
"""

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tms_oracle  # noqa: E402

CUSTOMERS = [
    "legacy_id,name,email,phone,city,created,credit_limit,status",  # 1
    "C1,Alpha,ALPHA@Example.com,,Berlin,2020-01-31,100.50,A",  # 2 valid (upper-case email)
    'C2,"Beta, Inc",beta@example.com,,,15/03/2021,0, a ',  # 3 valid (status " a ")
    "",  # 4 blank physical line (customers' values hold no line breaks: no multiline)
    "C3,Gamma,gamma@example,,,2020-01-01,10,A",  # 5 email.format
    "C3,Gamma2,g2@example.com,,,2020-01-01,10,A",  # 6 duplicate of a rejected first
    "C4,Delta,d@example.com,,,2020-01-01,10,I",  # 7 out of scope
    "C4,Delta2,d2@example.com,,,2020-01-01,10,A",  # 8 valid: first in-scope C4
    ",NoId,n@example.com,,,2020-01-01,10,A",  # 9 required
    " ,NoId2,n2@example.com,,,2020-01-01,10,A",  # 10 required (empty keys never duplicate)
    "C5,,søren.2@example.com,,,31/02/2024,12.345,A",  # 11 name, date, scale (email ok)
    "C6,Eps,e@example.com,,,2024-1-5,-1,A",  # 12 date, min
    "C7,Zeta,z@example.com,,,,1.234,56,A",  # 13 nine fields: field_count
    'C8,Theta,"a b@example.com",,,2020-01-01,abc,X',  # 14 out of scope (dirty, not rejected)
    "C9,Iota,t@example.com,,,29/02/2024,,A",  # 15 credit_limit.missing
    "C10,Shifted,s@example.com,,2020-01-01,10,A,Berlin",  # 16 shifted: status Berlin, scope
]

VEHICLES = [
    "legacy_id,plate,vin,make,model,year,capacity_kg",  # 1
    'V1,P,1HGCM82633A004352,Volvo,"FH ""16"", long\nline",2020,100',  # 2-3 valid
    "V2,P,1HGCM82633A00435I,,,1900,1",  # 4 vin.format
    "V2,P,1hgcm82633a004352,,,2101,0",  # 5 duplicate, vin.format, year.range, capacity range
    "V3,P,,,,20x1,1.5",  # 6 vin.missing, year.integer, capacity.integer
    ",P,1HGCM82633A004352,,,2100,5",  # 7 required
    "V4,P, 1HGCM82633A004352 ,,,2000,7",  # 8 valid (trimmed)
]

DRIVERS = [
    "legacy_id,name,license_no,license_expiry,status",  # 1
    "D1,A,L1,2030-01-01,active",  # 2 valid
    "",  # 3 blank physical line: not a record
    "D2,B,,2030-01-01,ACTIVE ",  # 4 license_no.required
    "D3,C,L3,31/04/2025,inactive",  # 5 out of scope
    "D3,C,L3,31/04/2025, Active",  # 6 date
    "D3,C,L3,01/05/2025,active",  # 7 duplicate
    "D4,D,L4,,active",  # 8 missing expiry
    "D5,E,L5,29/02/2028,Active",  # 9 valid
    "D6,F,L6,2030-01-01,retired",  # 10 status outside the declared domain: scope
]

INVOICES = [
    "invoice_no,customer_id,invoice_date,currency,amount_untaxed,amount_tax,amount_total,amount_residual,state",
    "I1,C1,2025-01-01,EUR,100.00,19.00,119.00,119.00,open",  # 2 valid
    "I2,C2,x,USD,10,0,10.00,5.5,partial",  # 3 valid
    "I3,C3,,EUR,1,0,1,1,open",  # 4 unknown customer (C3 rejected) -> rejected sums 1 / 1
    "I4,C4,,GBP,1,0,1,1, open",  # 5 valid (state trimmed)
    "I5,C1,,EUR,1,0,1,1,paid",  # 6 out of scope
    "I5,C1,,EUR,2,0,2,2,open",  # 7 valid: first in-scope I5
    "I1,C1,,EUR,3,0,3,3,open",  # 8 duplicate -> 3 / 3
    'I6,C1,,eur,"1.234,56",0,1234.56,1234.56,open',  # 9 currency, decimal -> 1234.56 / 1234.56
    "I7,C1,,EUR,100.00,19.00,120.00,130.00,open",  # 10 sum, exceeds -> 120.00 / 130.00
    "I8,C1,,EUR,1.005,0,1.005,-1,partial",  # 11 scale x2, negative -> 1.005 / -1
    "I9,C9,,EUR,1,0,1,1,Open",  # 12 out of scope (case-sensitive state)
    ",C1,,EUR,1,0,1,1,open",  # 13 required -> 1 / 1
    "I10,C1,,EUR,abc,,,,open",  # 14 decimal, 3 missing, no sums
    "I11,C1,,EUR,1,0,1",  # 15 field_count, no sums
    "I12,C1,,EUR,5,0,5,5,closed",  # 16 state outside the declared domain: scope -> 5 / 5
]


def write(dir_, name, lines, bom=False, eol="\n"):
    text = eol.join(lines) + eol
    data = text.encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    (Path(dir_) / name).write_bytes(data)


class OracleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = self.tmp.name
        write(d, "customers.csv", CUSTOMERS, bom=True, eol="\r\n")
        write(d, "vehicles.csv", VEHICLES)
        write(d, "drivers.csv", DRIVERS)
        write(d, "open_invoices.csv", INVOICES)
        self.report, self.rules = tms_oracle.run(d)

    def tearDown(self):
        self.tmp.cleanup()

    def test_entity_counts(self):
        self.assertEqual(
            self.report["entities"],
            {
                "customers": {"in_file": 14, "in_scope": 12, "valid": 3, "rejected": 9},
                "vehicles": {"in_file": 6, "in_scope": 6, "valid": 2, "rejected": 4},
                "drivers": {"in_file": 8, "in_scope": 7, "valid": 2, "rejected": 5},
                "open_invoices": {"in_file": 15, "in_scope": 13, "valid": 4, "rejected": 9},
            },
        )

    def test_rejected_lines(self):
        self.assertEqual(
            self.report["rejected_lines"],
            {
                "customers": [5, 6, 9, 10, 11, 12, 13, 15, 16],
                "vehicles": [4, 5, 6, 7],
                "drivers": [4, 6, 7, 8, 10],
                "open_invoices": [4, 8, 9, 10, 11, 13, 14, 15, 16],
            },
        )

    def test_sums_and_partners(self):
        self.assertEqual(
            self.report["open_invoices_sums"],
            {
                "valid_total": "132.00",
                "valid_residual": "127.50",
                "rejected_total": "1365.565",
                "rejected_residual": "1373.56",
            },
        )
        self.assertEqual(
            self.report["invoice_partner"], {"I1": "C1", "I2": "C2", "I4": "C4", "I5": "C1"}
        )

    def test_a_quote_open_at_the_end_of_its_line_costs_only_that_line(self):
        # Without multiline: line 2 is malformed, line 3 (the rest of the value) too,
        # line 4 is a record of its own; CR-only line ends count as lines.
        lines = tms_oracle.physical_lines('h\r2,"a\rb",x\r\n4,y')
        self.assertEqual(lines, ["h", '2,"a', 'b",x', "4,y"])
        self.assertEqual(
            [tms_oracle.split_line(x) for x in lines[1:]], [None, None, ["4", "y"]]
        )
        for bad in ['"a"b', '12" pipe', '"a \\"b\\""', '"C:\\dir\\"']:
            self.assertIsNone(tms_oracle.split_line(bad), bad)
        self.assertEqual(tms_oracle.split_line('"a,""b""",,""'), ['a,"b"', "", ""])

    def test_rule_counts(self):
        r = self.rules
        self.assertEqual(r["customers.legacy_id.duplicate"], 1)
        self.assertEqual(r["customers.legacy_id.required"], 2)
        self.assertEqual(r["customers.email.format"], 1)
        self.assertEqual(r["customers.created.date"], 2)
        self.assertEqual(r["customers.record.field_count"], 1)
        self.assertEqual(r["vehicles.vin.format"], 2)
        self.assertEqual(r["vehicles.capacity_kg.range"], 1)
        self.assertEqual(r["drivers.license_expiry.missing"], 1)
        self.assertEqual(r["open_invoices.customer_id.unknown_customer"], 1)
        self.assertEqual(r["open_invoices.amount_total.sum"], 1)
        self.assertEqual(r["open_invoices.amount_residual.exceeds_total"], 1)
        self.assertEqual(r["open_invoices.amount_residual.negative"], 1)
        self.assertEqual(r["open_invoices.amount_untaxed.scale"], 1)
        self.assertEqual(r["open_invoices.amount_untaxed.decimal"], 2)
        self.assertEqual(r["open_invoices.amount_tax.missing"], 1)
        self.assertEqual(r["customers.status.scope"], 1)
        self.assertEqual(r["drivers.status.scope"], 1)
        self.assertEqual(r["open_invoices.state.scope"], 1)

    def test_cli_explain(self):
        out = subprocess.run(
            [sys.executable, str(HERE / "tms_oracle.py"), self.tmp.name, "--explain"],
            capture_output=True, text=True, check=True,
        )
        report = json.loads(out.stdout)
        self.assertEqual(report["rules"], self.rules)
        self.assertIn("customers.email.format", out.stderr)

    def test_missing_file_is_an_error(self):
        (Path(self.tmp.name) / "drivers.csv").unlink()
        out = subprocess.run(
            [sys.executable, str(HERE / "tms_oracle.py"), self.tmp.name],
            capture_output=True, text=True,
        )
        self.assertEqual(out.returncode, 1)


class PrimitiveTest(unittest.TestCase):
    def test_dates(self):
        for ok in ["2024-02-29", "29/02/2024", "01/01/1900", "2100-12-31"]:
            self.assertTrue(tms_oracle.is_date(ok), ok)
        for bad in ["2023-02-29", "31/02/2024", "2023-13-01", "2024-1-5", "5/1/2024",
                    "2024/01/05", "", "٢٠٢٤-01-01", "20240105"]:
            self.assertFalse(tms_oracle.is_date(bad), bad)

    def test_decimals(self):
        for value, expected in [("12.50", []), ("12.500", ["x.scale"]), ("-1", ["x.min"]),
                                ("1.234,56", ["x.decimal"]), ("", ["x.missing"]),
                                ("+1", ["x.decimal"]), (".5", ["x.decimal"]), ("1.", ["x.decimal"])]:
            reasons = []
            tms_oracle.check_decimal(reasons, "x", value, minimum=tms_oracle.Decimal(0))
            self.assertEqual(reasons, expected, value)

    def test_emails(self):
        ok = ["a@b.co", "søren.2@example.com", "x.y+z@mail.example.net"]
        bad = ["a b@c.com", "a@b", "a@b@c.com", "@b.com", "a@.com", "a@b.com.", "a@b..com"]
        for e in ok:
            self.assertTrue(tms_oracle.EMAIL_RE.fullmatch(e), e)
        for e in bad:
            self.assertFalse(tms_oracle.EMAIL_RE.fullmatch(e), e)


if __name__ == "__main__":
    unittest.main()
