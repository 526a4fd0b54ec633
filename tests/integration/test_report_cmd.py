"""`blast report` and the send options that read earlier reports, against a scripted relay.

One campaign is sent once (setUpClass) through aiosmtpd on 127.0.0.1 that accepts most
recipients and refuses some: two with 550 5.1.1 (the same reason, different addresses)
and one with a 5.7.1 reply whose text starts with '=' and holds a comma and quotes. Its
report is then printed as text, json and csv, fed back through standard input, damaged,
and given to a second campaign's `send --exclude-report` and `--suppress-from`.
"""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from tests.integration import harness, servers

CSV_COLUMNS = ["row", "email", "status", "code", "enhanced_code", "reply", "step", "detail",
               "relay", "attempts", "message_id", "queue_id", "size", "first_attempt",
               "last_attempt", "bounce_class", "bounce_rule", "bounce_status", "bounce_time"]

DELIVERED = ["user1@example.com", "user2@example.com", "User3@Example.ORG",
             "=sum@example.com", "+plus@example.net", "-minus@example.net"]
BAD = ["bad1@example.com", "bad2@example.net"]      # 550 5.1.1
BLOCKED = "blocked@example.org"                     # 550 5.7.1, not an address problem
FORMULA_REPLY = '=cmd|"/C calc",A0 blocked'

SCRIPT_RCPT = {a: f"550 5.1.1 <{a}>: Recipient address rejected: User unknown" for a in BAD}
SCRIPT_RCPT[BLOCKED] = "550 5.7.1 " + FORMULA_REPLY


def write_campaign(directory, name, port, addresses):
    with open(os.path.join(directory, "list.csv"), "w", encoding="utf-8") as f:
        f.write("email,name\n")
        for a in addresses:
            f.write(f"{a},{a.split('@')[0].strip('=+-')}\n")
    with open(os.path.join(directory, "body.txt"), "w", encoding="utf-8") as f:
        f.write("Hello {{name}}.\n")
    path = os.path.join(directory, "campaign.yml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"name: {name}\nfrom: \"Tests <tests@acme.example>\"\nsubject: \"Hi {{{{name}}}}\"\n"
                "recipients: {path: list.csv}\nbody: {text: body.txt}\n"
                "retry: {attempts: 1}\n"
                "relays:\n"
                f"  - {{name: scripted, host: 127.0.0.1, port: {port}, tls: none}}\n")
    return path


def envelope(address):
    """The address as blast sends it: the domain lower-cased."""
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def run(*args, cwd=None, stdin=None, timeout=120):
    return subprocess.run([harness.BLAST, *args], cwd=cwd, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


class ReportCommand(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = servers.Scripted(servers.Script(rcpt=dict(SCRIPT_RCPT)))
        cls.dir = tempfile.mkdtemp(prefix="blast-report-cmd-")
        cls.addresses = DELIVERED + BAD + [BLOCKED]
        first = os.path.join(cls.dir, "first")
        os.makedirs(first)
        write_campaign(first, "first", cls.server.port, cls.addresses)
        cls.report = os.path.join(cls.dir, "first.json")
        p = run("send", "campaign.yml", "--report", cls.report, cwd=first)
        if p.returncode != 1:
            cls.tearDownClass()
            raise AssertionError(f"the first send: exit {p.returncode}: {p.stderr}")
        with open(cls.report, encoding="utf-8") as f:
            cls.doc = json.load(f)
        cls.first_messages = len(cls.server.messages)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="blast-report-case-", dir=self.dir)

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def received_since(self, start):
        """Recipients of the messages the server accepted after the first start ones."""
        out = []
        for _, rcpts, _ in self.server.messages[start:]:
            out.extend(rcpts)
        return out

    # ---- the first run's report, as the other tests expect it ----------------------------

    def test_the_first_run_did_what_the_script_says(self):
        by = {e["email"]: e for e in self.doc["recipients"]}
        self.assertEqual(sorted(by), sorted(self.addresses))
        for a in DELIVERED:
            self.assertEqual(by[a]["status"], "delivered", by[a])
        for a in BAD:
            self.assertEqual((by[a]["status"], by[a]["code"], by[a]["enhanced_code"]),
                             ("failed", 550, "5.1.1"))
        self.assertEqual(by[BLOCKED]["reply"], FORMULA_REPLY)

    # ---- text ------------------------------------------------------------------------------

    def test_text_shows_totals_and_the_grouped_failure(self):
        p = run("report", self.report)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        self.assertRegex(out, r"(?m)^campaign\s+first \(campaign\.yml\)$")
        self.assertRegex(out, r"(?m)^mode\s+sent to the list \(not a dry run, not a test send\)$")
        self.assertRegex(out, rf"(?m)^recipients\s+{len(self.addresses)}$")
        self.assertRegex(out, rf"(?m)^\s+delivered\s+{len(DELIVERED)}\s")
        self.assertRegex(out, rf"(?m)^\s+failed\s+{len(BAD) + 1}\s")
        self.assertRegex(out, r"(?m)^duration\s+\d+\.\d s, \d+ delivered this run, "
                              r"\d+\.\d messages a second$")
        # the two 5.1.1 refusals are one reason, the addresses left out, most frequent first
        lines = out.splitlines()
        head = lines.index("failures by reason (most frequent first)")
        self.assertRegex(lines[head + 2], r"^\s+2\s+failed\s+550 5\.1\.1 <>: Recipient address "
                                          r"rejected: User unknown$")
        self.assertRegex(lines[head + 3], r"^\s+1\s+failed\s+550 5\.7\.1 =cmd")
        self.assertNotIn("bad1@example.com", out)
        # domains, lower-cased, and the relay's columns
        self.assertRegex(out, r"(?m)^\s+example\.com\s+4\s+3\s+0\s+1\s+0\s+0$")
        self.assertRegex(out, r"(?m)^\s+example\.net\s+3\s+2\s+0\s+1\s+0\s+0$")
        self.assertRegex(out, r"(?m)^\s+example\.org\s+2\s+1\s+0\s+1\s+0\s+0$")
        self.assertRegex(out, rf"(?m)^\s+scripted\s+{len(DELIVERED)}\s+0\s+3\s+0$")

    def test_text_from_standard_input(self):
        with open(self.report, encoding="utf-8") as f:
            text = f.read()
        p = run("report", "-", stdin=text)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("report      standard input", p.stdout)
        direct = run("report", self.report).stdout
        self.assertEqual(p.stdout.splitlines()[1:], direct.splitlines()[1:])

    def test_text_without_a_summary_computes_the_same_tables(self):
        doc = dict(self.doc)
        del doc["summary"]
        path = os.path.join(self.work, "nosummary.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
        p = run("report", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        full = run("report", self.report).stdout

        def section(text, title):
            lines = text.splitlines()
            start = next(i for i, line in enumerate(lines) if line.startswith(title))
            end = next((i for i in range(start, len(lines)) if lines[i] == ""), len(lines))
            return lines[start:end]
        for title in ("recipients", "failures by reason", "recipient domains", "relays"):
            self.assertEqual(section(p.stdout, title), section(full, title), title)
        # and --format json needs the summary
        p = run("report", path, "--format", "json")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no \"summary\"", p.stderr)

    # ---- json ------------------------------------------------------------------------------

    def test_json_is_the_summary(self):
        p = run("report", self.report, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), self.doc["summary"])
        self.assertTrue(p.stdout.startswith("{\n  \""), "pretty-printed")

    # ---- csv -------------------------------------------------------------------------------

    def test_csv_has_one_row_per_recipient_and_defuses_formulas(self):
        p = subprocess.run([harness.BLAST, "report", self.report, "--format=csv"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode("utf-8")
        self.assertEqual(out.count("\r\n"), len(self.doc["recipients"]) + 1,
                         "RFC 4180 line ends")
        rows = list(csv.reader(io.StringIO(out, newline="")))
        self.assertEqual(rows[0], CSV_COLUMNS)
        body = rows[1:]
        self.assertEqual(len(body), len(self.doc["recipients"]))
        entries = self.doc["recipients"]
        for row, entry in zip(body, entries):
            self.assertEqual(len(row), len(CSV_COLUMNS))
            got = dict(zip(CSV_COLUMNS, row))
            self.assertEqual(got["row"], str(entry["row"]))
            self.assertEqual(got["status"], entry["status"])
            self.assertEqual(got["code"], "" if entry["code"] is None else str(entry["code"]))
            for field in row:
                self.assertFalse(field[:1] in ("=", "+", "-", "@", "\t", "\r"),
                                 f"a field a spreadsheet would run: {field!r}")
            email = entry["email"]
            want = "'" + email if email[0] in "=+-@" else email
            self.assertEqual(got["email"], want)
        by_email = {r[1]: dict(zip(CSV_COLUMNS, r)) for r in body}
        self.assertEqual(by_email["'=sum@example.com"]["status"], "delivered")
        self.assertEqual(by_email["'+plus@example.net"]["status"], "delivered")
        # the reply with a comma and quotes survives the quoting, behind its guard
        self.assertEqual(by_email[BLOCKED]["reply"], "'" + FORMULA_REPLY)
        self.assertEqual(by_email[BLOCKED]["enhanced_code"], "5.7.1")
        self.assertEqual(by_email["bad1@example.com"]["reply"],
                         "<bad1@example.com>: Recipient address rejected: User unknown")

    # ---- damaged reports -------------------------------------------------------------------

    def assertRefused(self, path, pattern):
        p = run("report", path)
        self.assertEqual(p.returncode, 2, p.stdout)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertRegex(lines[0], rf"^blast: {re.escape(path)}:\d+:\d+: " + pattern)
        return lines[0]

    def test_a_truncated_report_is_refused_with_its_place(self):
        with open(self.report, "rb") as f:
            data = f.read()
        path = os.path.join(self.work, "truncated.json")
        cut = data.index(b"\n", data.index(b'"recipients"')) + 40
        with open(path, "wb") as f:
            f.write(data[:cut])
        line = self.assertRefused(path, r"the file ends inside recipient 1 \(is the report "
                                        r"truncated\?\)$")
        want_line = data[:cut].count(b"\n") + 1
        self.assertIn(f":{want_line}:", line)
        for fmt in ("json", "csv"):
            p = run("report", path, "--format", fmt)
            self.assertEqual(p.returncode, 2, fmt)

    def test_garbage_and_other_versions_are_refused(self):
        path = os.path.join(self.work, "garbage.json")
        with open(path, "w") as f:
            f.write("this is not json\n")
        self.assertRefused(path, r"not a blast report: expected '\{', not 't'$")
        with open(self.report, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace('"schema_version": 1', '"schema_version": 7', 1))
        self.assertRefused(path, r"unsupported schema_version 7")
        with open(path, "w") as f:
            f.write(text.replace('"status":"failed"', '"status":["failed"}', 1))
        self.assertRefused(path, r"'\}' where '\]' was to be closed, in recipient 7$")
        p = run("report", os.path.join(self.work, "missing.json"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot open the report", p.stderr)

    def test_usage_errors(self):
        for args in (["report"], ["report", self.report, "--format", "xml"],
                     ["report", self.report, self.report], ["report", "--bogus", self.report]):
            p = run(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertTrue(p.stderr.startswith("blast: report: "), p.stderr)
        p = run("help", "report")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--format csv", p.stdout)
        self.assertIn("leading '", p.stdout)
        self.assertIn("report REPORT.json", run("help").stdout)

    # ---- send with the first run's report ---------------------------------------------------

    def second_campaign(self):
        """The first list, a new address and an old one in other case, in self.work."""
        addresses = self.addresses + ["new1@example.com", "user1@EXAMPLE.COM"]
        write_campaign(self.work, "second", self.server.port, addresses)

    def test_exclude_report_sends_nothing_to_those_delivered(self):
        self.second_campaign()
        report = os.path.join(self.work, "second.json")
        start = len(self.server.messages)
        p = run("send", "campaign.yml", "--report", report, "--exclude-report", self.report,
                cwd=self.work)
        self.assertEqual(p.returncode, 1, p.stderr)  # the refused ones are refused again
        received = self.received_since(start)
        self.assertEqual(sorted(received), ["new1@example.com"])
        with open(report, encoding="utf-8") as f:
            entries = {e["email"]: e for e in json.load(f)["recipients"]}
        for a in DELIVERED:
            self.assertEqual(entries[a]["status"], "suppressed", a)
            self.assertEqual(entries[a]["detail"], f"delivered in {self.report}")
        # the same local part with the domain in another case is the same recipient
        self.assertEqual(entries["user1@EXAMPLE.COM"]["status"], "suppressed")
        for a in BAD + [BLOCKED]:
            self.assertEqual(entries[a]["status"], "failed", a)
        self.assertEqual(entries["new1@example.com"]["status"], "delivered")

        # a resume with the same report goes on; without it, the journal notices
        p = run("send", "campaign.yml", "--report", report, "--exclude-report", self.report,
                cwd=self.work)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertEqual(sorted(self.received_since(start)), ["new1@example.com"])
        p = run("send", "campaign.yml", "--report", report, cwd=self.work)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"second\.journal:\d+: the campaign changed since this "
                                   r"journal's last run .*--exclude-report")
        self.assertEqual(sorted(self.received_since(start)), ["new1@example.com"])

    def test_suppress_from_suppresses_the_bad_addresses(self):
        self.second_campaign()
        report = os.path.join(self.work, "second.json")
        start = len(self.server.messages)
        p = run("send", "campaign.yml", "--report", report, "--suppress-from", self.report,
                cwd=self.work)
        self.assertEqual(p.returncode, 1, p.stderr)  # BLOCKED (5.7.1) is tried and refused
        with open(report, encoding="utf-8") as f:
            entries = {e["email"]: e for e in json.load(f)["recipients"]}
        for a in BAD:
            self.assertEqual(entries[a]["status"], "suppressed", a)
            self.assertEqual(entries[a]["detail"], f"failed for good (5.1.x) in {self.report}")
            self.assertEqual(entries[a]["attempts"], 0)
        self.assertEqual(entries[BLOCKED]["status"], "failed")
        self.assertEqual(entries[BLOCKED]["attempts"], 1)
        received = self.received_since(start)
        # everyone else, once (user1@EXAMPLE.COM is user1@example.com again: a duplicate)
        self.assertEqual(sorted(received), sorted(map(envelope, DELIVERED + ["new1@example.com"])))
        self.assertEqual(entries["user1@EXAMPLE.COM"]["status"], "duplicate")

    def test_both_options_together_and_twice(self):
        self.second_campaign()
        report = os.path.join(self.work, "second.json")
        start = len(self.server.messages)
        p = run("send", "campaign.yml", "--report", report, "--exclude-report", self.report,
                "--suppress-from", self.report, "--exclude-report", self.report, cwd=self.work)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(self.received_since(start), ["new1@example.com"])
        p = run("report", report)
        self.assertRegex(p.stdout, r"(?m)^\s+suppressed\s+9\s")

    def test_a_damaged_or_own_report_stops_send_before_anything_is_sent(self):
        self.second_campaign()
        report = os.path.join(self.work, "second.json")
        damaged = os.path.join(self.work, "damaged.json")
        with open(self.report, "rb") as f:
            data = f.read()
        with open(damaged, "wb") as f:
            f.write(data[:len(data) // 2])
        start = len(self.server.messages)
        for option in ("--exclude-report", "--suppress-from"):
            p = run("send", "campaign.yml", "--report", report, option, damaged, cwd=self.work)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertRegex(p.stderr, rf"^blast: {re.escape(damaged)}:\d+:\d+: the file ends "
                                       r"inside ")
        self.assertEqual(self.received_since(start), [])
        # this run's own report is refused: every run rewrites it
        shutil.copy(self.report, report)
        p = run("send", "campaign.yml", "--report", report, "--exclude-report", report,
                cwd=self.work)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("is the report this run writes", p.stderr)
        # and a test send's report says nothing about the recipients
        test_report = os.path.join(self.work, "test-send.json")
        p = run("send", "campaign.yml", "--report", test_report, "--to", "me@example.com",
                "--limit", "1", cwd=self.work)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(run("report", test_report).stdout,
                         r"(?m)^mode\s+test send: every message went to me@example\.com$")
        p = run("send", "campaign.yml", "--report", report, "--exclude-report", test_report,
                cwd=self.work)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("the report of a test send", p.stderr)
        self.assertEqual(self.received_since(start), ["me@example.com"])


if __name__ == "__main__":
    unittest.main()
