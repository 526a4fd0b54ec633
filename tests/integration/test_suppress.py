"""The suppression database: `blast suppress`, and campaigns that name it (suppression_db).

The database is SQLite; the tests read it back with Python's sqlite3 as an operator
would, and send through aiosmtpd on loopback to see who was skipped.
"""

import csv
import io
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import unittest

from tests.integration import harness, servers
from tests.integration.test_smtp import Campaign, plain, rows


class SuppressCommand(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="blast-suppress-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.db = os.path.join(self.dir, "suppression.db")

    def blast(self, *args):
        return harness.run_blast("suppress", self.db, *args)

    def test_add_list_export_remove(self):
        p = self.blast("add", "Ada@Example.com", "grace@example.org", "--class", "hard",
                       "--rule", "dsn-5.1.1", "--campaign", "nov")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.db).st_mode), 0o600)
        p = self.blast("add", "=cmd@example.com")
        self.assertEqual(p.returncode, 0, p.stderr)

        p = self.blast("list")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual([ln.split()[0] for ln in lines],
                         ["=cmd@example.com", "Ada@Example.com", "grace@example.org"])
        self.assertEqual(lines[1].split()[1:4], ["hard", "dsn-5.1.1", "nov"])

        raw = subprocess.run([harness.BLAST, "suppress", self.db, "export"],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        self.assertEqual(raw.returncode, 0, raw.stderr)
        self.assertTrue(raw.stdout.endswith(b"\r\n"), "RFC 4180 line ends")
        self.assertNotIn(b"\n", raw.stdout.replace(b"\r\n", b""))
        got = list(csv.DictReader(io.StringIO(raw.stdout.decode(), newline="")))
        self.assertEqual([r["address"] for r in got],
                         ["'=cmd@example.com", "Ada@Example.com", "grace@example.org"],
                         "a field a spreadsheet would run gets a leading '")
        self.assertEqual(got[0]["class"], "manual")
        self.assertEqual(got[0]["rule"], "manual")
        self.assertRegex(got[1]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

        # an operator's own query
        with sqlite3.connect(self.db) as conn:
            n = conn.execute("SELECT count(*) FROM suppression WHERE class = 'hard'").fetchone()
        self.assertEqual(n[0], 2)

        p = self.blast("remove", "ada@EXAMPLE.com", "nobody@example.com")
        self.assertEqual(p.returncode, 1, "one address had no entry")
        self.assertIn("nobody@example.com had no entry", p.stderr)
        p = self.blast("list")
        self.assertNotIn("Ada@Example.com", p.stdout)
        self.assertIn("grace@example.org", p.stdout)

    def test_import_is_all_or_nothing(self):
        good = os.path.join(self.dir, "good.txt")
        with open(good, "w") as f:
            f.write("# moved from the old list\na@example.com\n\nB@Example.com\n")
        p = self.blast("import", good, "--class", "unsubscribe")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2 addresses imported", p.stderr)
        bad = os.path.join(self.dir, "bad.txt")
        with open(bad, "w") as f:
            f.write("c@example.com\nnot an address\n")
        p = self.blast("import", bad)
        self.assertEqual(p.returncode, 2)
        self.assertIn(f"{bad}:2:", p.stderr)
        self.assertIn("nothing was imported", p.stderr)
        p = self.blast("list")
        self.assertEqual([ln.split()[:2] for ln in p.stdout.splitlines()],
                         [["a@example.com", "unsubscribe"], ["B@Example.com", "unsubscribe"]],
                         "c@example.com went back out with the bad line")

    def test_refusals(self):
        p = self.blast("list")
        self.assertEqual(p.returncode, 2, "a database that is not there is not made by list")
        self.assertIn("cannot open the suppression database", p.stderr)
        self.assertFalse(os.path.exists(self.db))
        p = self.blast("add", "not an address")
        self.assertEqual(p.returncode, 2)
        self.assertIn("not an address", p.stderr)
        p = self.blast("add", "a@example.com", "--class", "policy")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--class is manual, hard, soft, complaint or unsubscribe", p.stderr)
        p = self.blast("frobnicate")
        self.assertEqual(p.returncode, 2)
        with open(self.db + ".txt", "w") as f:
            f.write("not sqlite\n")
        p = harness.run_blast("suppress", self.db + ".txt", "list")
        self.assertEqual(p.returncode, 2)


class CampaignWithDatabase(unittest.TestCase):

    def test_a_campaign_skips_the_database_s_addresses(self):
        server = servers.Scripted()
        self.addCleanup(server.stop)
        c = Campaign(rows(4), plain(server.port), extra="suppression_db: suppression.db\n")
        self.addCleanup(c.remove)
        db = os.path.join(c.dir, "suppression.db")
        p = harness.run_blast("suppress", db, "add", "USER2@example.com", "--class", "hard",
                              "--rule", "dsn-5.1.1")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = harness.run_blast("suppress", db, "add", "user4@example.com", "--class", "complaint")
        self.assertEqual(p.returncode, 0, p.stderr)

        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        e = {x["email"]: x for x in c.entries()}
        self.assertEqual(e["user1@example.com"]["status"], "delivered")
        self.assertEqual(e["user2@example.com"]["status"], "suppressed")
        self.assertRegex(e["user2@example.com"]["detail"],
                         r"^in the suppression database: hard \(dsn-5\.1\.1\) since "
                         r"\d{4}-\d\d-\d\d$")
        self.assertEqual(e["user4@example.com"]["status"], "suppressed")
        self.assertIn("complaint", e["user4@example.com"]["detail"])
        sent = sorted(r for _, rs, _ in server.messages for r in rs)
        self.assertEqual(sent, ["user1@example.com", "user3@example.com"])


if __name__ == "__main__":
    unittest.main()
