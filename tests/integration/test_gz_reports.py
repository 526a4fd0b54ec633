"""Compressed reports (docs/report.md): a report path ending in `.gz` is written
gzip'ed, against Postfix's smtp-sink, and every reader of reports reads it as the
plain report: `blast report` in every format (from a file and from standard input),
`send --exclude-report` and `--suppress-from`, and `blast report --merge`, which
also writes one; `blast report -o PATH.gz` writes its export gzip'ed. A truncated
one is refused, naming the file.
"""

import gzip
import json
import os
import shutil
import stat
import subprocess
import unittest

from tests.integration import harness, servers
from tests.integration.test_smtp import Campaign, plain


def rows(n=60):
    return [f"user{i}@example.com" for i in range(1, n + 1)] + ["not-an-address"]


def blast_stdin(data, *args):
    """blast with data (bytes) on its standard input."""
    return subprocess.run([harness.BLAST, *args], input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120)


class GzReports(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.sink = servers.Sink()
        cls.rows = rows()
        cls.c = Campaign(cls.rows, plain(cls.sink.port))
        cls.gz = os.path.join(cls.c.dir, "r.json.gz")
        p = harness.run_blast("send", "campaign.yml", "--report", cls.gz, cwd=cls.c.dir)
        assert p.returncode in (0, 1), p.stderr
        # the same report, decompressed by gzip's own reader
        cls.plain = os.path.join(cls.c.dir, "r.json")
        with gzip.open(cls.gz, "rb") as src, open(cls.plain, "wb") as dst:
            shutil.copyfileobj(src, dst)

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        cls.c.remove()

    def campaign(self, extra=""):
        c = Campaign(self.rows, plain(self.sink.port), extra=extra)
        self.addCleanup(c.remove)
        return c

    def test_the_report_is_gzip_whole_and_private(self):
        with open(self.gz, "rb") as f:
            self.assertEqual(f.read(2), b"\x1f\x8b")
        self.assertEqual(stat.S_IMODE(os.stat(self.gz).st_mode), 0o600)
        self.assertEqual(subprocess.run(["gunzip", "-t", self.gz]).returncode, 0)
        text = subprocess.run(["zcat", self.gz], stdout=subprocess.PIPE, check=True).stdout
        doc = json.loads(text)
        harness.check_report(doc)
        self.assertEqual(doc["summary"]["total"], len(self.rows))
        self.assertEqual(doc["summary"]["by_status"]["delivered"], len(self.rows) - 1)
        self.assertFalse([n for n in os.listdir(self.c.dir) if ".tmp." in n])

    def test_blast_report_reads_it_as_the_plain_one(self):
        for fmt in ("text", "json", "csv", "html"):
            a = harness.run_blast("report", self.plain, "--format", fmt)
            b = harness.run_blast("report", self.gz, "--format", fmt)
            self.assertEqual(a.returncode, 0, a.stderr)
            self.assertEqual(b.returncode, 0, b.stderr)
            # the same but for the name (the page's command names the report's base name)
            self.assertEqual(b.stdout.replace(self.gz, self.plain).replace("r.json.gz", "r.json"),
                             a.stdout, fmt)
        self.assertIn('href="r.csv"', b.stdout, "the page's CSV beside it drops .json.gz")
        # from standard input, recognised by its first bytes
        outs = []
        for path in (self.gz, self.plain):
            with open(path, "rb") as f:
                p = blast_stdin(f.read(), "report", "-", "--format", "csv")
            self.assertEqual(p.returncode, 0, p.stderr)
            outs.append(p.stdout)
        self.assertEqual(outs[0], outs[1])

    def test_exclude_report_and_suppress_from_read_it(self):
        c = self.campaign()
        start = len(self.sink.recipients())
        p = c.send("--exclude-report", self.gz, "--suppress-from", self.gz)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        entries = {e["email"]: e for e in c.entries()}
        for a in self.rows[:-1]:
            self.assertEqual(entries[a]["status"], "suppressed", a)
            self.assertEqual(entries[a]["detail"], f"delivered in {self.gz}")
        self.assertEqual(len(self.sink.recipients()), start, "nothing sent again")

    def test_merge_reads_and_writes_gz(self):
        c = self.campaign()
        s0 = os.path.join(c.dir, "s0.json.gz")
        s1 = os.path.join(c.dir, "s1.json")
        for i, path in enumerate((s0, s1)):
            p = harness.run_blast("send", "campaign.yml", "--shard", f"{i}/2", "--report", path,
                                  cwd=c.dir)
            self.assertIn(p.returncode, (0, 1), p.stderr)
        merged = os.path.join(c.dir, "m.json.gz")
        p = harness.run_blast("report", "--merge", s0, s1, "-o", merged)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(merged).st_mode), 0o600)
        with gzip.open(merged, "rt", encoding="utf-8") as f:
            doc = json.load(f)
        harness.check_report(doc)
        self.assertEqual([e["row"] for e in doc["recipients"]],
                         list(range(1, len(self.rows) + 1)))
        p = harness.run_blast("report", merged, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_the_campaigns_report_setting_may_end_in_gz(self):
        c = self.campaign(extra="report: out.json.gz\n")
        p = harness.run_blast("send", "campaign.yml", cwd=c.dir)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        with gzip.open(os.path.join(c.dir, "out.json.gz"), "rt", encoding="utf-8") as f:
            harness.check_report(json.load(f))

    def test_exports_to_a_path_ending_in_gz_are_gzip_and_private(self):
        for fmt in ("text", "json", "csv", "html", "prometheus"):
            out = os.path.join(self.c.dir, f"export.{fmt}.gz")
            p = harness.run_blast("report", self.plain, "--format", fmt, "--no-db", "-o", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            same = harness.run_blast("report", self.plain, "--format", fmt, "--no-db")
            with open(out, "rb") as f:
                self.assertEqual(f.read(2), b"\x1f\x8b", fmt)
            with gzip.open(out, "rt", encoding="utf-8") as f:
                written = f.read()
            if fmt != "prometheus":  # its timestamps are the moment's
                self.assertEqual(written, same.stdout, fmt)
            else:
                self.assertIn("blast_recipients", written)
            want = 0o644 if fmt == "prometheus" else 0o600
            self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), want, fmt)
        leftovers = [n for n in os.listdir(self.c.dir) if ".tmp." in n]
        self.assertEqual(leftovers, [])

    def test_a_truncated_gz_is_refused_with_its_name(self):
        with open(self.gz, "rb") as f:
            data = f.read()
        cut = os.path.join(self.c.dir, "cut.json.gz")
        self.addCleanup(os.unlink, cut)
        for n in (10, len(data) // 2, len(data) - 4):
            with open(cut, "wb") as f:
                f.write(data[:n])
            p = harness.run_blast("report", cut)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(f"{cut}: the compressed report ends early (is it truncated?)", p.stderr)
            p = harness.run_blast("report", "--merge", cut, "-o",
                                  os.path.join(self.c.dir, "never.json"))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(cut, p.stderr)
        c = self.campaign()
        p = c.send("--exclude-report", cut)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"{cut}: the compressed report ends early", p.stderr)
        self.assertFalse(os.path.exists(c.report), "nothing sent, no report")


if __name__ == "__main__":
    unittest.main()
