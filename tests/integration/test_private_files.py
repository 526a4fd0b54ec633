"""Personal data at rest (docs/files.md): under umask 000, every file blast writes with
recipients' data in it is made 0600 and every directory it makes for them 0700 (send to
smtp-sink, the journal's compaction, send --dry-run, report -o in each format, report
--merge -o); the metrics file stays 0644; and check and send warn about an older file
or directory that other users can read, naming it, and say nothing about private ones."""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from tests.integration import harness, servers

BODY = "Hello {{name}},\nthis is row {{row}}.\n"
ADDRESSES = [f"user{i}@example.com" for i in range(1, 6)]


def write_campaign(directory, port, extra=""):
    with open(os.path.join(directory, "list.csv"), "w", encoding="utf-8") as f:
        f.write("email,name\n")
        for a in ADDRESSES:
            f.write(f"{a},{a.split('@')[0]}\n")
    with open(os.path.join(directory, "body.txt"), "w", encoding="utf-8") as f:
        f.write(BODY)
    with open(os.path.join(directory, "campaign.yml"), "w", encoding="utf-8") as f:
        f.write("name: private\nfrom: \"Tests <tests@acme.example>\"\nsubject: \"Hi {{name}}\"\n"
                "recipients: {path: list.csv}\nbody: {text: body.txt}\n"
                "suppression_db: suppress.db\n" + extra +
                f"relays:\n  - host: 127.0.0.1\n    port: {port}\n    tls: none\n")


def blast(*args, cwd, umask=0):
    """blast run under the given umask (000: nothing taken away by the process)."""
    return subprocess.run([harness.BLAST, *args], cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=180, preexec_fn=lambda: os.umask(umask))


def tree(directory):
    """{relative path: permission bits} of everything under directory."""
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, directory)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


class Modes(unittest.TestCase):
    def setUp(self):
        self.sink = servers.Sink()
        self.addCleanup(self.sink.stop)
        self.dir = tempfile.mkdtemp(prefix="blast-private-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_campaign(self.dir, self.sink.port)
        self.before = tree(self.dir)

    def new_entries(self):
        return {p: m for p, m in tree(self.dir).items() if p not in self.before}

    def assert_private(self, entries, exempt=()):
        self.assertTrue(entries)
        for path, mode in entries.items():
            if path in exempt:
                continue
            full = os.path.join(self.dir, path)
            want = 0o700 if os.path.isdir(full) else 0o600
            self.assertEqual(mode, want, f"{path}: mode {mode:04o}, want {want:04o}")

    def test_send_and_its_metrics(self):
        p = blast("send", "campaign.yml", "--metrics", "private.prom", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("warning", p.stderr)
        self.assertEqual(len(self.sink.messages()), len(ADDRESSES))
        made = self.new_entries()
        for expected in (".blast", ".blast/private.journal", ".blast/private.journal.lock",
                         "reports", "reports/private.json", "suppress.db"):
            self.assertIn(expected, made)
        # the metrics name no recipient and are read by node_exporter as another user
        self.assertEqual(made.get("private.prom"), 0o644, made)
        self.assert_private(made, exempt=("private.prom",))

    def test_compaction(self):
        # the run compacts the journal on its own (everyone delivered): the new file private
        p = blast("send", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("compacted", p.stderr)
        made = self.new_entries()
        self.assertNotIn(".blast/private.journal.compacting", made)
        self.assert_private(made)
        # and on demand, after a run that kept it whole
        p = blast("send", "campaign.yml", "--fresh", "--no-compact", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = blast("journal", "compact", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        made = self.new_entries()
        self.assertEqual(sorted(k for k in made if k.startswith(".blast/")),
                         [".blast/private.journal", ".blast/private.journal.lock"])
        self.assert_private(made)

    def test_dry_run(self):
        p = blast("send", "campaign.yml", "--dry-run", "out/messages", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        made = self.new_entries()
        emls = [k for k in made if k.endswith(".eml")]
        self.assertEqual(len(emls), len(ADDRESSES))
        for expected in ("out", "out/messages", "reports", "reports/private.json"):
            self.assertIn(expected, made)
        self.assert_private(made)

    def test_preview(self):
        p = blast("preview", "campaign.yml", "--row", "1", "-o", "row1.eml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        made = self.new_entries()  # the suppression database too, made empty
        self.assertEqual(made.get("row1.eml"), 0o600, made)
        self.assert_private(made)

    def test_report_outputs(self):
        p = blast("send", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.before = tree(self.dir)
        report = "reports/private.json"
        for fmt in ("text", "json", "csv", "html", "prometheus"):
            p = blast("report", report, "--format", fmt, "-o", f"out.{fmt}", cwd=self.dir)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, "")
            # the same as on standard output
            same = blast("report", report, "--format", fmt, cwd=self.dir)
            with open(os.path.join(self.dir, f"out.{fmt}"), encoding="utf-8") as f:
                written = f.read()
            if fmt != "prometheus":  # its timestamps are the run's own
                self.assertEqual(written, same.stdout, fmt)
        with open(os.path.join(self.dir, "out.csv"), encoding="utf-8") as f:
            self.assertIn("user1@example.com", f.read())
        made = self.new_entries()
        self.assertEqual(made.pop("out.prometheus"), 0o644)
        self.assertEqual(sorted(made), ["out.csv", "out.html", "out.json", "out.text"])
        self.assert_private(made)
        # -o replaces an older file, and the new one is private whatever the old was
        old = os.path.join(self.dir, "out.csv")
        os.chmod(old, 0o644)
        p = blast("report", report, "--format", "csv", "-o", "out.csv", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(old).st_mode), 0o600)
        # nothing is left beside it when the output cannot be written
        p = blast("report", report, "-o", "missing/out.txt", cwd=self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing/out.txt", p.stderr)

    def test_merge(self):
        for i in range(2):
            p = blast("send", "campaign.yml", "--shard", f"{i}/2", cwd=self.dir)
            self.assertEqual(p.returncode, 0, p.stderr)
        self.before = tree(self.dir)
        shards = [f"reports/private.shard-{i}-of-2.json" for i in range(2)]
        p = blast("report", "--merge", *shards, "-o", "merged.json", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        made = self.new_entries()
        self.assertEqual(made, {"merged.json": 0o600})
        with open(os.path.join(self.dir, "merged.json"), encoding="utf-8") as f:
            self.assertEqual(len(json.load(f)["recipients"]), len(ADDRESSES))


class Warnings(unittest.TestCase):
    def setUp(self):
        self.sink = servers.Sink()
        self.addCleanup(self.sink.stop)
        self.dir = tempfile.mkdtemp(prefix="blast-private-warn-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_campaign(self.dir, self.sink.port)
        p = blast("send", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.journal_dir = os.path.join(self.dir, ".blast")
        self.journal = os.path.join(self.journal_dir, "private.journal")
        self.report = os.path.join(self.dir, "reports", "private.json")

    def test_private_files_draw_no_warning(self):
        p = blast("check", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        p = blast("send", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("warning", p.stderr)

    def expose(self):
        os.chmod(self.journal, 0o644)
        os.chmod(self.report, 0o644)
        os.chmod(self.journal_dir, 0o755)

    def assert_named(self, stderr):
        for path, mode in ((".blast/private.journal", "0644"), ("reports/private.json", "0644"),
                           (".blast", "0755")):
            line = next((l for l in stderr.splitlines() if f"{path} is " in l), None)
            self.assertIsNotNone(line, f"no warning about {path}: {stderr}")
            self.assertTrue(line.startswith("blast: warning: "), line)
            self.assertIn("readable by other users", line)
            self.assertIn(f"(mode {mode})", line)
        self.assertIn("chmod 600", stderr)
        self.assertIn("chmod 700", stderr)
        # private ones are not named
        self.assertNotIn("private.journal.lock is", stderr)
        self.assertNotIn("reports is", stderr)

    def test_check_warns_and_exits_as_before(self):
        self.expose()
        p = blast("check", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_named(p.stderr)

    def test_send_warns_and_exits_as_before(self):
        self.expose()
        p = blast("send", "campaign.yml", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_named(p.stderr)
        # the report is written again, private; the journal keeps its owner's mode
        self.assertEqual(stat.S_IMODE(os.stat(self.report).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.journal).st_mode), 0o644)

    def test_json_lines(self):
        self.expose()
        os.chmod(os.path.join(self.dir, "suppress.db"), 0o640)
        p = blast("check", "campaign.yml", "--log-format", "json", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(l) for l in p.stderr.splitlines()]
        warned = [l["message"] for l in lines if l["level"] == "warning"]
        self.assertEqual(len(warned), 4, warned)
        self.assertTrue(any(m.startswith("suppress.db is readable by other users (mode 0640)")
                            for m in warned), warned)

    def test_send_json_lines(self):
        self.expose()
        p = blast("send", "campaign.yml", "--log-format", "json", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        warned = [l["message"] for l in map(json.loads, p.stderr.splitlines())
                  if l["level"] == "warning"]
        self.assertEqual(len(warned), 3, warned)
        self.assertTrue(any(".blast is readable by other users (mode 0755)" in m for m in warned))

    def test_dry_run_directory(self):
        out = os.path.join(self.dir, "shared-out")
        os.mkdir(out)
        os.chmod(out, 0o755)
        p = blast("send", "campaign.yml", "--dry-run", "shared-out", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("blast: warning: shared-out is readable by other users (mode 0755)",
                      p.stderr)
        # the messages in it are private all the same
        for name in os.listdir(out):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(out, name)).st_mode), 0o600)


if __name__ == "__main__":
    unittest.main()
