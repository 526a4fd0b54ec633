"""`blast send --shard I/N`: one campaign split among the tasks of a job engine
(docs/sharding.md), against Postfix's smtp-sink on loopback.

Every recipient is sent by exactly one shard, whatever the list's order; each shard
keeps its own journal and report; the engines' environment (Slurm, Kubernetes)
names the shard as --shard does; a shard run again resumes only itself.
"""

import glob
import hashlib
import os
import random
import unittest

from tests.integration import harness, servers
from tests.integration.test_smtp import Campaign, plain


def shard_of(address, n):
    """docs/sharding.md: the first 8 bytes of SHA-256 of the address, lower-cased."""
    return int.from_bytes(hashlib.sha256(address.lower().encode()).digest()[:8], "big") % n


class Shards(unittest.TestCase):

    def setUp(self):
        self.sink = servers.Sink()
        self.addCleanup(self.sink.stop)
        rows = [f"user{i}@example.com" for i in range(1, 1001)]
        # a duplicate (domains compare without case), a twin whose local part differs
        # in case (another mailbox to dedupe, RFC 5321 §2.4, but the same shard, as
        # suppression matches without case), and a row that is not an address
        rows += ["user7@EXAMPLE.com", "USER5@example.com", "not-an-address"]
        random.Random(7).shuffle(rows)
        self.rows = rows
        self.c = Campaign(rows, plain(self.sink.port, connections=2))
        self.addCleanup(self.c.remove)

    def send(self, *args, env=None):
        return harness.run_blast("send", "campaign.yml", *args, cwd=self.c.dir, env=env)

    @staticmethod
    def rc(i, n):
        """The shard with the row that is not an address (by its text) exits 1."""
        return 1 if shard_of("not-an-address", n) == i else 0

    def report(self, i, n):
        path = os.path.join(self.c.dir, "reports", f"smtp-test.shard-{i}-of-{n}.json")
        doc = harness.load_report(path)
        self.assertEqual(doc["campaign"]["shard"], {"index": i, "count": n})
        return doc["recipients"]

    def test_four_shards_send_every_recipient_once(self):
        for i in range(4):
            p = self.send("--shard", f"{i}/4")
            self.assertEqual(p.returncode, self.rc(i, 4), p.stderr)
        seen = {}
        for i in range(4):
            for e in self.report(i, 4):
                self.assertNotIn(e["row"], seen, "a row in two shards")
                seen[e["row"]] = (i, e)
                self.assertEqual(shard_of(e["email"], 4), i, e["email"])
        self.assertEqual(sorted(seen), list(range(1, len(self.rows) + 1)), "every row, once")
        statuses = [e["status"] for _, e in seen.values()]
        self.assertEqual(statuses.count("delivered"), 1001)
        self.assertEqual(statuses.count("duplicate"), 1, "a duplicate lands on its twin's shard")
        self.assertEqual(statuses.count("invalid"), 1)
        self.assertEqual(len(self.sink.messages()), 1001)
        journals = sorted(os.path.basename(j) for j in
                          glob.glob(os.path.join(self.c.dir, ".blast", "*.journal")))
        self.assertEqual(journals, [f"smtp-test.shard-{i}-of-4.journal" for i in range(4)])
        # a shard run again resumes: nothing is sent twice
        p = self.send("--shard", "2/4")
        self.assertEqual(p.returncode, self.rc(2, 4), p.stderr)
        self.assertEqual(len(self.sink.messages()), 1001)

    def test_the_engines_environment_names_the_shard(self):
        p = self.send(env={"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"})
        self.assertEqual(p.returncode, self.rc(1, 3), p.stderr)
        slurm = {e["row"] for e in self.report(1, 3)}
        p = self.send("--shard-count", "3", env={"JOB_COMPLETION_INDEX": "2"})
        self.assertEqual(p.returncode, self.rc(2, 3), p.stderr)
        k8s = {e["row"] for e in self.report(2, 3)}
        self.assertFalse(slurm & k8s)
        self.assertEqual(slurm, {r for r, a in enumerate(self.rows, 1) if shard_of(a, 3) == 1})
        p = self.send(env={"JOB_COMPLETION_INDEX": "2"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("--shard-count or BLAST_SHARD_COUNT", p.stderr)
        p = self.send("--shard", "3/3")
        self.assertEqual(p.returncode, 2)
        self.assertIn("0 <= I < N", p.stderr)

    def test_the_spelling_of_the_campaigns_path_does_not_matter(self):
        # a job engine may name the campaign by another path than the first run did:
        # the shard resumes, and the shards' reports merge
        absolute = os.path.join(self.c.dir, "campaign.yml")
        p = harness.run_blast("send", "campaign.yml", "--shard", "0/2", cwd=self.c.dir)
        self.assertEqual(p.returncode, self.rc(0, 2), p.stderr)
        sent = len(self.sink.messages())
        p = harness.run_blast("send", absolute, "--shard", "0/2", cwd="/")
        self.assertEqual(p.returncode, self.rc(0, 2), p.stderr)
        self.assertNotIn("changed", p.stderr)
        self.assertEqual(len(self.sink.messages()), sent, "nobody twice")
        parent, base = os.path.split(self.c.dir)
        p = harness.run_blast("send", f"./{base}/campaign.yml", "--shard", "1/2", cwd=parent)
        self.assertEqual(p.returncode, self.rc(1, 2), p.stderr)
        reports = [os.path.join(self.c.dir, "reports", f"smtp-test.shard-{i}-of-2.json")
                   for i in range(2)]
        merged = os.path.join(self.c.dir, "merged.json")
        p = harness.run_blast("report", "--merge", *reports, "-o", merged)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(harness.load_report(merged)["recipients"]), len(self.rows))
        self.assertEqual(len(self.sink.messages()), 1001)

    def test_each_shard_takes_its_part_of_every_rate(self):
        c = Campaign(["a@example.com"], {**plain(self.sink.port), "rate": "40/s"},
                     extra="rate: 100/s\ndomain_rates: {example.com: 10/m}\n")
        self.addCleanup(c.remove)
        p = harness.run_blast("check", "campaign.yml", cwd=c.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("rates       campaign 100/s; relay 127.0.0.1 40/s; example.com 0.167/s\n",
                      p.stdout)
        p = harness.run_blast("check", "campaign.yml", "--shard", "3/4", cwd=c.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("rates       campaign 25/s; relay 127.0.0.1 10/s; example.com 0.0417/s "
                      "(this shard's 1/4)\n", p.stdout)
        p = harness.run_blast("send", "campaign.yml", "--shard", "3/4", "-v", cwd=c.dir)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertIn("shard 3 of 4 (0-based): every rate is 1/4", p.stderr)

    def test_check_and_dry_run_take_a_shard(self):
        p = harness.run_blast("check", "campaign.yml", "--shard", "0/2", cwd=self.c.dir)
        self.assertEqual(p.returncode, 2 if self.rc(0, 2) else 0, p.stderr)
        self.assertRegex(p.stdout, r"shard +0 of 2 \(0-based\): \d+ rows, \d+ of other shards")
        out = os.path.join(self.c.dir, "out")
        p = self.send("--shard", "1/2", "--dry-run", out)
        self.assertEqual(p.returncode, self.rc(1, 2), p.stderr)
        rendered = len([n for n in os.listdir(out) if n.endswith(".eml")])
        want = len({(a.split("@")[0], a.split("@")[1].lower()) for a in self.rows
                    if "@" in a and shard_of(a, 2) == 1})
        self.assertEqual(rendered, want)
        self.assertEqual(len(self.sink.messages()), 0, "a dry run sends nothing")


if __name__ == "__main__":
    unittest.main()
