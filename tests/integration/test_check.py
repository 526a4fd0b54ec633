"""`blast check`: every bad input refused with its place; the summary of a good campaign."""

import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration import harness

INVALID = os.path.join(harness.ROOT, "tests", "fixtures", "invalid")
CHECK = os.path.join(harness.ROOT, "tests", "fixtures", "check")

GOOD = """name: generated
from: "Acme <news@acme.example>"
subject: "Hi {{first_name}}"
recipients:
  path: recipients.csv
body:
  text: body.txt
relays:
  - host: 127.0.0.1
    port: 2525
    tls: none
"""


def cases(root):
    return sorted(d for d in os.listdir(root)
                  if os.path.isdir(os.path.join(root, d)) and not d.startswith("_"))


class Golden(unittest.TestCase):
    """The golden bad inputs, each refused with its exact message and exit code 2.

    tests/fixtures/invalid/<case>/: campaign files the loader refuses; `error` is the
    message without the "blast: " prefix (test_campaign.c compares it too).
    tests/fixtures/check/<case>/: inputs that get past the loader (lists, templates,
    suppression files); `error` is the exact standard error of `blast check`.
    """

    def assert_refused(self, d, expected):
        p = harness.run_blast("check", "campaign.yml", cwd=d)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stderr, expected)
        # send refuses the same input the same way, before connecting anywhere
        p = harness.run_blast("send", "campaign.yml", "--report", os.devnull, cwd=d)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stderr.splitlines()[0], expected.splitlines()[0])

    def test_invalid_campaigns(self):
        names = cases(INVALID)
        self.assertGreaterEqual(len(names), 30)
        for case in names:
            with self.subTest(case=case):
                d = os.path.join(INVALID, case)
                with open(os.path.join(d, "error"), encoding="utf-8") as f:
                    text = f.read()
                self.assertNotIn("\n", text.rstrip("\n"), "one message, one line")
                self.assertFalse(text.startswith("blast: "))
                self.assertTrue(text.startswith("campaign.yml:"), text)
                self.assert_refused(d, "blast: " + text.rstrip("\n") + "\n")

    def test_check_cases(self):
        names = cases(CHECK)
        self.assertGreaterEqual(len(names), 12)
        for case in names:
            with self.subTest(case=case):
                d = os.path.join(CHECK, case)
                with open(os.path.join(d, "error"), encoding="utf-8") as f:
                    expected = f.read()
                self.assertTrue(expected.startswith("blast: "), expected)
                self.assert_refused(d, expected)


class Generated(unittest.TestCase):
    """Bad (and big) lists made on the fly."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="blast-check-")
        with open(os.path.join(self.dir, "campaign.yml"), "w", encoding="utf-8") as f:
            f.write(GOOD)
        with open(os.path.join(self.dir, "body.txt"), "w", encoding="utf-8") as f:
            f.write("Hello {{first_name}}\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_csv(self, data):
        with open(os.path.join(self.dir, "recipients.csv"), "wb") as f:
            f.write(data)

    def check(self, *args):
        return harness.run_blast("check", "campaign.yml", *args, cwd=self.dir)

    def test_invalid_utf8_in_row_5000(self):
        rows = [b"email,first_name\n"]
        for i in range(1, 6001):
            name = b"Bj\xf6rn" if i == 5000 else b"Name%d" % i
            rows.append(b"u%d@example.com,%s\n" % (i, name))
        self.write_csv(b"".join(rows))
        p = self.check()
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "blast: recipients.csv:5001: row 5000, column 'first_name': "
                                   "invalid UTF-8 (save the file as UTF-8)\n")
        self.assertIn("4999 valid", p.stdout)

    def test_one_megabyte_field(self):
        self.write_csv(b"email,first_name\na@example.com,Ada\nb@example.com," +
                       b"x" * (1024 * 1024) + b"\n")
        p = self.check()
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "blast: recipients.csv:3: row 2 is larger than 1048576 bytes "
                                   "(an unclosed quote?)\n")

    def test_field_over_64k(self):
        self.write_csv(b"email,first_name\na@example.com," + b"y" * 70000 + b"\n")
        p = self.check()
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "blast: recipients.csv:2: row 1, column 'first_name': the "
                                   "field is 70000 bytes long, more than the 65536 allowed\n")

    def test_hundred_columns(self):
        header = ["email", "first_name"] + ["c%d" % i for i in range(98)]
        lines = [",".join(header)]
        for i in range(50):
            lines.append(",".join([f"u{i}@example.com", f"N{i}"] + [f"v{i}_{k}" for k in range(98)]))
        self.write_csv(("\n".join(lines) + "\n").encode())
        with open(os.path.join(self.dir, "body.txt"), "w", encoding="utf-8") as f:
            f.write("Hello {{first_name}} {{c97}} {{c0}}\n")
        p = self.check()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("50 rows, 50 valid", p.stdout)
        out = os.path.join(self.dir, "out")
        p = harness.run_blast("send", "campaign.yml", "--dry-run", out, "--report", "r.json",
                              cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "50.eml"), "rb") as f:
            msg = harness.email.message_from_binary_file(f, policy=harness.email.policy.default)
        self.assertEqual(msg.get_content(), "Hello N49 v49_97 v49_0\n")

    def test_quoting_bom_crlf_and_semicolons(self):
        with open(os.path.join(self.dir, "campaign.yml"), "a", encoding="utf-8") as f:
            pass
        text = GOOD.replace("  path: recipients.csv\n", "  path: recipients.csv\n  delimiter: \";\"\n")
        with open(os.path.join(self.dir, "campaign.yml"), "w", encoding="utf-8") as f:
            f.write(text)
        self.write_csv("\ufeffemail;first_name\r\n"
                       "a@example.com;\"Ann; \"\"the first\"\"\r\nof her name\"\r\n"
                       "b@example.com;Bob\r\n".encode())
        p = self.check()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2 rows, 2 valid", p.stdout)
        out = os.path.join(self.dir, "out")
        p = harness.run_blast("send", "campaign.yml", "--dry-run", out, "--report", "r.json",
                              cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "1.eml"), "rb") as f:
            msg = harness.email.message_from_binary_file(f, policy=harness.email.policy.default)
        self.assertEqual(msg.get_content(), 'Hello Ann; "the first"\nof her name\n')
        self.assertEqual(msg["Subject"], 'Hi Ann; "the first" of her name')

    def test_invalid_rows_listed_and_counted(self):
        self.write_csv(b"email,first_name\n"
                       b"good@example.com,A\n"
                       b"no-at-sign,B\n"
                       b"x@nodot,C\n"
                       b",D\n"
                       b"\"a\r\nb@example.com\",E\n")
        p = self.check()
        self.assertEqual(p.returncode, 2)
        lines = p.stderr.splitlines()
        self.assertEqual(lines[0], "blast: recipients.csv:3: row 2, column 'email': invalid "
                                   "address 'no-at-sign': no '@'")
        self.assertTrue(lines[1].startswith("blast: recipients.csv:4: row 3, column 'email': "
                                            "invalid address 'x@nodot'"), lines[1])
        self.assertEqual(lines[2], "blast: recipients.csv:5: row 4, column 'email': no address "
                                   "in column 'email'")
        self.assertEqual(lines[3], "blast: recipients.csv:6: row 5, column 'email': invalid "
                                   "address 'a\\r\\nb@example.com': contains a line break or "
                                   "an angle bracket")
        self.assertEqual(len(lines), 4)
        self.assertIn("5 rows, 1 valid, 4 invalid", p.stdout)
        self.assertIn("4 problems", p.stdout)


class Rules(unittest.TestCase):
    """Suppression files of both kinds, dedupe, and secrets from files and commands."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="blast-rules-")
        with open(os.path.join(self.dir, "body.txt"), "w", encoding="utf-8") as f:
            f.write("Hello {{first_name}}\n")
        with open(os.path.join(self.dir, "recipients.csv"), "w", encoding="utf-8") as f:
            f.write("email,first_name\n"
                    "a@example.com,A\n"      # sent
                    "b@example.com,B\n"      # suppressed by the text file
                    "C@Example.com,C\n"      # suppressed by the CSV (any case)
                    "a@EXAMPLE.COM,A2\n"     # duplicate of row 1
                    "A@example.com,A3\n"     # a different local part: sent
                    "d@пример.рф,D\n"        # sent, IDN
                    "d@xn--e1afmkfd.xn--p1ai,D2\n")  # duplicate of row 6 (same A-label)
        with open(os.path.join(self.dir, "stop.txt"), "w", encoding="utf-8") as f:
            f.write("# unsubscribed\n\n  b@example.com  \n")
        with open(os.path.join(self.dir, "bounces.csv"), "w", encoding="utf-8") as f:
            f.write("when,email\n2026-01-01,c@example.com\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def campaign(self, extra_relay="", extra=""):
        text = GOOD.replace("    tls: none\n", "    tls: none\n" + extra_relay) + extra
        with open(os.path.join(self.dir, "campaign.yml"), "w", encoding="utf-8") as f:
            f.write(text)

    def test_suppression_and_dedupe(self):
        self.campaign(extra="suppression: [stop.txt, bounces.csv]\n")
        p = harness.run_blast("check", "campaign.yml", "-v", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("7 rows, 3 valid, 0 invalid, 2 duplicates, 2 suppressed", p.stdout)
        self.assertIn("suppression 2 lists, 2 addresses", p.stdout)
        self.assertIn("row 4: duplicate: a@EXAMPLE.COM", p.stderr)
        out = os.path.join(self.dir, "out")
        p = harness.run_blast("send", "campaign.yml", "--dry-run", out, "--report", "r.json",
                              cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(os.listdir(out)), [".blast-dry-run", "1.eml", "5.eml", "6.eml"])
        statuses = [e["status"] for e in
                    harness.load_report(os.path.join(self.dir, "r.json"))["recipients"]]
        self.assertEqual(statuses, ["rendered", "suppressed", "suppressed", "duplicate",
                                    "rendered", "rendered", "duplicate"])

    def test_bad_suppression_entry(self):
        with open(os.path.join(self.dir, "stop.txt"), "a", encoding="utf-8") as f:
            f.write("not an address\n")
        self.campaign(extra="suppression: stop.txt\n")
        p = harness.run_blast("check", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertIn("blast: stop.txt:4: suppression list: invalid address 'not an address'",
                      p.stderr)

    def test_missing_suppression_file(self):
        self.campaign(extra="suppression: [nope.txt]\n")
        p = harness.run_blast("check", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertIn("blast: campaign.yml:12:15: suppression: nope.txt: cannot open suppression "
                      "list: No such file or directory", p.stderr)

    def test_password_file_readable_by_others_warns(self):
        secret = os.path.join(self.dir, "secret.txt")
        with open(secret, "w") as f:
            f.write("s3cret-value\n")
        os.chmod(secret, 0o644)
        self.campaign("    username: u\n    password_file: secret.txt\n")
        p = harness.run_blast("check", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("password_file secret.txt can be read by others (chmod 600", p.stderr)
        self.assertNotIn("s3cret", p.stderr + p.stdout)
        os.chmod(secret, 0o600)
        p = harness.run_blast("check", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.stderr, "")

    def test_password_file_missing(self):
        self.campaign("    username: u\n    password_file: nope.txt\n")
        p = harness.run_blast("check", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertIn("blast: campaign.yml:13:20: relay '127.0.0.1': cannot read password_file "
                      "nope.txt: No such file or directory", p.stderr)

    def test_two_secrets_refused(self):
        self.campaign("    username: u\n    password_env: X\n    password_cmd: echo x\n")
        p = harness.run_blast("check", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertIn("use one of password_env, password_file and password_cmd", p.stderr)


class Summary(unittest.TestCase):
    def test_example_campaign(self):
        campaign = os.path.join(harness.ROOT, "campaigns", "example.yml")
        p = harness.run_blast("check", campaign, env={"BLAST_DEMO_PASSWORD": "x"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertIn("recipients", p.stdout)
        self.assertIn("result      ok", p.stdout)
        p = harness.run_blast("check", campaign, env={"BLAST_DEMO_PASSWORD": ""})
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, r"example\.yml:\d+:\d+: relay 'demo-relay': environment "
                                   r"variable BLAST_DEMO_PASSWORD is empty")


if __name__ == "__main__":
    unittest.main()
