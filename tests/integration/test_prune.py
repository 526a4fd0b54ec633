"""blast prune (docs/files.md, "Retention"): campaigns sent for real to smtp-sink, with
their shards, a dry run, a .gz report and the leftovers of a crash, then pruned.

- One campaign now: every file of its own goes (journal, lock, shards' journals and
  locks, .compacting, reports, .gz, temporary files, its dry-run directory), and nothing
  else: not the campaign file, list, template, suppression database, another campaign's
  files, or names that only look like its own. Every path the output names was there
  before and is gone after; the total counts them, in exact bytes.
- --dry-run lists the same paths and removes nothing.
- --older-than with mtimes set by os.utime: an old campaign goes, a recent one stays,
  and a campaign with one recent file stays whole.
- A directory: its campaigns and dry-run directories, a file that is not a campaign
  named in a warning and skipped; refused without --older-than (exit 2, nothing
  removed), as is a PATH that is not there.
- A send's lock held (the test holds the flock): that campaign skipped, named, exit 1;
  the others pruned.
- A dry-run directory with a file blast did not write: the messages and the marker go,
  the file and the directory stay, named. A symbolic link is never removed nor followed.
- `send --dry-run` writes the marker, 0600, naming the campaign and its file.
"""

import fcntl
import json
import os
import re
import shutil
import stat
import tempfile
import time
import unittest

from tests.integration import harness, servers

ADDRESSES = [f"user{i}@example.com" for i in range(1, 7)]
DAY = 86400
LINE = re.compile(r"^(removed|would remove) (.*) \(([^()]*)\)$")
TOTAL = re.compile(r"^total: (removed|would remove) (\d+) files?(?: and (\d+) director(?:y|ies))?"
                   r", (\d+) bytes(?: \([^()]*\))?$")


def write_campaign(directory, name, port, extra=""):
    """NAME.yml in directory, with a list, a template and a suppression database it
    shares with the others there."""
    with open(os.path.join(directory, "list.csv"), "w", encoding="utf-8") as f:
        f.write("email,name\n")
        for a in ADDRESSES:
            f.write(f"{a},{a.split('@')[0]}\n")
    with open(os.path.join(directory, "body.txt"), "w", encoding="utf-8") as f:
        f.write("Hello {{name}}\n")
    path = os.path.join(directory, f"{name}.yml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"name: {name}\nfrom: \"Tests <tests@acme.example>\"\nsubject: \"Hi {{{{name}}}}\"\n"
                "recipients: {path: list.csv}\nbody: {text: body.txt}\n"
                "suppression_db: suppress.db\n" + extra +
                f"relays:\n  - host: 127.0.0.1\n    port: {port}\n    tls: none\n")
    return path


def tree(directory):
    """{absolute path: size} of every file, link and directory under directory."""
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            found[path] = os.lstat(path).st_size
    return found


def age(paths, days):
    t = time.time() - days * DAY
    for p in paths:
        os.utime(p, (t, t), follow_symlinks=False)


class Prune(unittest.TestCase):
    def setUp(self):
        self.sink = servers.Sink()
        self.addCleanup(self.sink.stop)
        self.dir = tempfile.mkdtemp(prefix="blast-prune-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def blast(self, *args, cwd=None):
        return harness.run_blast(*args, cwd=cwd or self.dir)

    def campaign(self, name, shards=True, dry_run=True, extra=""):
        """A campaign sent whole and in two shards, with a dry run beside it, and a .gz
        report, a compaction's leftover and a report's temporary file: the paths of
        every file that is its own."""
        write_campaign(self.dir, name, self.sink.port, extra)
        p = self.blast("send", f"{name}.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        own = [self.path(".blast", f"{name}.journal"), self.path(".blast", f"{name}.journal.lock"),
               self.path("reports", f"{name}.json")]
        if shards:
            for i in range(2):
                p = self.blast("send", f"{name}.yml", "--shard", f"{i}/2")
                self.assertEqual(p.returncode, 0, p.stderr)
                stem = f"{name}.shard-{i}-of-2"
                own += [self.path(".blast", f"{stem}.journal"),
                        self.path(".blast", f"{stem}.journal.lock"),
                        self.path("reports", f"{stem}.json")]
        if dry_run:
            p = self.blast("send", f"{name}.yml", "--dry-run", f"out-{name}")
            self.assertEqual(p.returncode, 0, p.stderr)
            out = self.path(f"out-{name}")
            own += [os.path.join(out, n) for n in os.listdir(out)] + [out]
        p = self.blast("send", f"{name}.yml", "--report", f"reports/{name}.json.gz")
        self.assertEqual(p.returncode, 0, p.stderr)
        own.append(self.path("reports", f"{name}.json.gz"))
        for leftover in (self.path(".blast", f"{name}.journal.compacting"),
                         self.path("reports", f"{name}.json.tmp.Ab12Cd")):
            with open(leftover, "w") as f:
                f.write("leftover\n")
            own.append(leftover)
        for n in own:
            self.assertTrue(os.path.lexists(n), n)
        return own

    def removed(self, p, before, verb="removed"):
        """The paths p's output names, each checked against the tree before; the total
        checked against them."""
        lines = p.stdout.splitlines()
        self.assertTrue(lines, p.stderr)
        paths, nfiles, ndirs, size = [], 0, 0, 0
        for line in lines[:-1]:
            m = LINE.match(line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m.group(1), verb, line)
            path = os.path.normpath(os.path.join(self.dir, m.group(2)))
            self.assertIn(path, before, f"{line}: not there before")
            if m.group(3) == "directory":
                ndirs += 1
            else:
                nfiles += 1
                size += before[path]
            paths.append(path)
        m = TOTAL.match(lines[-1])
        self.assertIsNotNone(m, lines[-1])
        self.assertEqual((m.group(1), int(m.group(2)), int(m.group(3) or 0), int(m.group(4))),
                         (verb, nfiles, ndirs, size), lines[-1])
        self.assertEqual(len(paths), len(set(paths)), "a path named twice")
        return set(paths)

    def assert_gone(self, paths):
        for path in paths:
            self.assertFalse(os.path.lexists(path), f"{path} is still there")

    def assert_there(self, paths):
        for path in paths:
            self.assertTrue(os.path.lexists(path), f"{path} is gone")

    def test_one_campaign_now(self):
        own = self.campaign("news")
        other = self.campaign("other", shards=False)
        # names that only look like the campaign's own
        alike = [self.path("reports", n) for n in ("news.json.tmp.12345", "news.json.bak",
                                                   "news.shard-2-of-2.json", "news.csv")]
        alike.append(self.path(".blast", "news-2.journal"))
        for n in alike:
            with open(n, "w") as f:
                f.write("not blast's\n")
        inputs = [self.path(n) for n in ("news.yml", "other.yml", "list.csv", "body.txt",
                                         "suppress.db")]
        before = tree(self.dir)
        p = self.blast("prune", "news.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertEqual(self.removed(p, before), set(own))
        self.assert_gone(own)
        self.assert_there(other + alike + inputs + [self.path(".blast"), self.path("reports")])
        self.assertEqual(set(tree(self.dir)), set(before) - set(own))
        # again: nothing left to remove
        p = self.blast("prune", "news.yml")
        self.assertEqual((p.returncode, p.stdout), (0, "total: removed 0 files, 0 bytes\n"))

    def test_dry_run_lists_and_removes_nothing(self):
        own = self.campaign("news")
        before = tree(self.dir)
        p = self.blast("prune", "--dry-run", "news.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = self.removed(p, before, verb="would remove")
        self.assertEqual(listed, set(own))
        self.assertEqual(tree(self.dir), before)
        p = self.blast("prune", "news.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.removed(p, before), listed)

    def test_quiet(self):
        own = self.campaign("news", shards=False)
        p = self.blast("prune", "--quiet", "news.yml")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))
        self.assert_gone(own)

    def test_older_than(self):
        old = self.campaign("old", shards=False)
        recent = self.campaign("recent", shards=False)
        mixed = self.campaign("mixed", shards=False)
        age(old, 40)
        age(mixed, 40)
        fresh = self.path("reports", "mixed.json")
        age([fresh], 1)
        before = tree(self.dir)
        p = self.blast("prune", "--older-than", "30d", "old.yml", "recent.yml", "mixed.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.removed(p, before), set(old))
        self.assert_gone(old)
        self.assert_there(recent + mixed)
        # a shorter age takes the mixed one too, whole
        p = self.blast("prune", "--older-than", "12h", "mixed.yml", "recent.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.removed(p, before), set(mixed))
        self.assert_there(recent)

    def test_a_directory(self):
        old = self.campaign("old", shards=False)
        recent = self.campaign("recent", shards=False)
        age(old, 40)
        # a YAML file that is not a campaign: named, skipped
        with open(self.path("notes.yaml"), "w") as f:
            f.write("just: notes\n")
        # a dry run of a campaign that lives elsewhere, into this directory
        elsewhere = tempfile.mkdtemp(prefix="blast-prune-elsewhere-")
        self.addCleanup(shutil.rmtree, elsewhere, True)
        write_campaign(elsewhere, "away", self.sink.port)
        p = self.blast("send", "away.yml", "--dry-run", self.path("out-away"), cwd=elsewhere)
        self.assertEqual(p.returncode, 0, p.stderr)
        away = [self.path("out-away", n) for n in os.listdir(self.path("out-away"))]
        away.append(self.path("out-away"))
        age(away, 40)
        # a directory that is not a dry run's
        os.mkdir(self.path("plain"))
        with open(self.path("plain", "1.eml"), "w") as f:
            f.write("mine\n")
        age([self.path("plain"), self.path("plain", "1.eml")], 40)
        before = tree(self.dir)
        p = self.blast("prune", "--older-than", "30d", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.removed(p, before), set(old + away))
        self.assert_gone(old + away)
        self.assertIn("notes.yaml", p.stderr)
        self.assertRegex(p.stderr, r"(?m)^blast: warning: skipped \S*notes\.yaml: ")
        self.assert_there(recent + [self.path("plain", "1.eml"), self.path("notes.yaml"),
                                    self.path("old.yml"), self.path("suppress.db")])
        self.assertTrue(os.path.exists(os.path.join(elsewhere, "away.yml")))

    def test_a_directory_needs_an_age(self):
        own = self.campaign("news", shards=False, dry_run=False)
        before = tree(self.dir)
        p = self.blast("prune", "news.yml", self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertIn(self.dir, p.stderr)
        self.assertIn("--older-than", p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertEqual(tree(self.dir), before)
        # one operand that is not there: nothing removed either
        p = self.blast("prune", "news.yml", "missing.yml")
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.yml", p.stderr)
        self.assertEqual(tree(self.dir), before)
        self.assert_there(own)
        p = self.blast("prune", "--older-than", "30 days", "news.yml")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--older-than", p.stderr)
        p = self.blast("prune")
        self.assertEqual(p.returncode, 2)

    def test_a_running_send_is_skipped(self):
        busy = self.campaign("busy")
        idle = self.campaign("idle", shards=False)
        lock = self.path(".blast", "busy.shard-1-of-2.journal.lock")
        with open(lock) as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # a send of it now is refused, as prune assumes
            p = self.blast("send", "busy.yml", "--shard", "1/2")
            self.assertEqual(p.returncode, 2, p.stderr)
            before = tree(self.dir)
            p = self.blast("prune", "busy.yml", "idle.yml")
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("campaign busy (busy.yml)", p.stderr)
            self.assertIn("busy.shard-1-of-2.journal.lock", p.stderr)
            self.assertEqual(self.removed(p, before), set(idle))
            self.assert_there(busy)
            # and the dry run says so too
            p = self.blast("prune", "--dry-run", "busy.yml")
            self.assertEqual(p.returncode, 1, p.stderr)
        p = self.blast("prune", "busy.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_gone(busy)

    def test_a_dry_run_directory_with_a_foreign_file(self):
        own = self.campaign("news", shards=False)
        out = self.path("out-news")
        notes = os.path.join(out, "notes.txt")
        with open(notes, "w") as f:
            f.write("mine\n")
        before = tree(self.dir)
        p = self.blast("prune", "news.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.removed(p, before), set(own) - {out})
        self.assertIn(f"blast: warning: kept ./out-news: it holds files blast did not write "
                      f"(notes.txt)", p.stderr)
        self.assert_there([notes, out])
        self.assertEqual(os.listdir(out), ["notes.txt"])

    def test_a_dry_run_directory_named(self):
        write_campaign(self.dir, "news", self.sink.port)
        p = self.blast("send", "news.yml", "--dry-run", "deep/out")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = self.path("deep", "out")
        own = [os.path.join(out, n) for n in os.listdir(out)] + [out]
        report = self.path("reports", "news.json")
        # not found beside the campaign (it is one level down): only when named
        before = tree(self.dir)
        p = self.blast("prune", "news.yml")
        self.assertEqual(self.removed(p, before), {report})
        self.assert_there(own)
        p = self.blast("prune", "--older-than", "1d", "deep/out")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "total: removed 0 files, 0 bytes\n")
        p = self.blast("prune", "deep/out")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.removed(p, before), set(own))
        self.assert_there([self.path("deep")])

    def test_symbolic_links_are_kept(self):
        own = self.campaign("news", shards=False)
        target = self.path("elsewhere.json")
        report = self.path("reports", "news.json")
        shutil.move(report, target)
        os.symlink(target, report)
        eml = self.path("out-news", "99.eml")
        os.symlink(target, eml)
        before = tree(self.dir)
        p = self.blast("prune", "news.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = self.path("out-news")
        self.assertEqual(self.removed(p, before), set(own) - {report, out})
        self.assertIn("kept ./reports/news.json: a symbolic link", p.stderr)
        self.assertIn("kept ./out-news: it holds files blast did not write (99.eml)", p.stderr)
        self.assertTrue(os.path.islink(report))
        self.assertTrue(os.path.islink(eml))
        self.assertTrue(os.path.isfile(target))

    def test_the_dry_runs_marker(self):
        path = write_campaign(self.dir, "news", self.sink.port)
        p = self.blast("send", "news.yml", "--dry-run", "out")
        self.assertEqual(p.returncode, 0, p.stderr)
        marker = self.path("out", ".blast-dry-run")
        self.assertEqual(stat.S_IMODE(os.lstat(marker).st_mode), 0o600)
        with open(marker, encoding="utf-8") as f:
            m = json.load(f)
        self.assertEqual(m["campaign"], "news")
        self.assertEqual(m["campaign_file"], os.path.realpath(path))
        self.assertRegex(m["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(sorted(os.listdir(self.path("out"))),
                         sorted([".blast-dry-run"] + [f"{i}.eml" for i in range(1, 7)]))

    def test_json_lines(self):
        self.campaign("news", shards=False)
        with open(self.path("out-news", "notes.txt"), "w") as f:
            f.write("mine\n")
        p = self.blast("prune", "--log-format", "json", "news.yml", "missing.yml")
        self.assertEqual(p.returncode, 2)
        lines = [json.loads(l) for l in p.stderr.splitlines()]
        self.assertTrue(all(l["level"] == "error" for l in lines), lines)
        p = self.blast("prune", "--log-format", "json", "news.yml")
        self.assertEqual(p.returncode, 0, p.stderr)
        warned = [json.loads(l) for l in p.stderr.splitlines()]
        self.assertEqual([w["level"] for w in warned], ["warning"])
        self.assertIn("notes.txt", warned[0]["message"])


if __name__ == "__main__":
    unittest.main()
