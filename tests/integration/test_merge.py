"""`blast report --merge`: the reports of a campaign's shards made into the
campaign's one report (docs/sharding.md), against Postfix's smtp-sink.

The merged report is a report like any other (schema, summary against recipients,
`blast report` reads it) and agrees with the relay and with the report of the same
campaign sent whole; reports that are not the shards of one campaign, a missing
shard, a repeated one and a row in two shards are refused with nothing written.
"""

import json
import os
import random
import shutil
import unittest

from tests.integration import harness, servers
from tests.integration.test_smtp import Campaign, plain


def rows(n=1200):
    r = [f"user{i}@example.com" for i in range(1, n + 1)]
    r += ["user7@EXAMPLE.com", "not-an-address"]
    random.Random(11).shuffle(r)
    return r


def merge(*args, cwd=None):
    return harness.run_blast("report", "--merge", *args, cwd=cwd)


class Merge(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.sink = servers.Sink()
        cls.rows = rows()
        cls.c = Campaign(cls.rows, plain(cls.sink.port, connections=2))
        for i in range(4):
            p = harness.run_blast("send", "campaign.yml", "--shard", f"{i}/4", cwd=cls.c.dir)
            assert p.returncode in (0, 1), p.stderr
        cls.shards = [os.path.join(cls.c.dir, "reports", f"smtp-test.shard-{i}-of-4.json")
                      for i in range(4)]

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        cls.c.remove()

    def out(self, name):
        path = os.path.join(self.c.dir, name)
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        return path

    def test_merged_report_is_the_campaigns(self):
        path = self.out("merged.json")
        p = merge(*reversed(self.shards), "-o", path)  # any order of the inputs
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("merged 4 shards of 4: 1202 recipients", p.stderr)
        doc = harness.load_report(path)  # the schema, and the summary against the rows
        self.assertEqual([e["row"] for e in doc["recipients"]], list(range(1, 1203)))
        self.assertEqual([e["email"] for e in doc["recipients"]], self.rows)
        camp = doc["campaign"]
        self.assertIsNone(camp["shard"])
        self.assertEqual([(s["index"], s["count"]) for s in camp["shards"]],
                         [(i, 4) for i in range(4)])
        self.assertEqual(camp["shards"][2]["report"], self.shards[2])
        heads = [harness.load_report(s) for s in self.shards]
        self.assertEqual(camp["fingerprint"], heads[0]["campaign"]["fingerprint"])
        # the relay agrees: every address it received is delivered in the report, once
        delivered = sorted(e["email"].lower() for e in doc["recipients"]
                           if e["status"] == "delivered")
        self.assertEqual(len(delivered), 1200)
        self.assertEqual(len(set(delivered)), 1200)
        self.assertEqual(sorted(self.sink.recipients()), delivered)
        s = doc["summary"]
        self.assertEqual(s["total"], 1202)
        self.assertEqual(s["by_status"]["delivered"], 1200)
        self.assertEqual(s["by_status"]["duplicate"], 1)
        self.assertEqual(s["by_status"]["invalid"], 1)
        self.assertEqual([x["index"] for x in s["shards"]], [0, 1, 2, 3])
        self.assertEqual(sum(x["recipients"] for x in s["shards"]), 1202)
        self.assertEqual(s["messages_this_run"], 1200)
        self.assertEqual(s["start"], min(h["summary"]["start"] for h in heads))
        self.assertEqual(s["end"], max(h["summary"]["end"] for h in heads))
        # each recipient as its shard reported it
        by_row = {e["row"]: e for h in heads for e in h["recipients"]}
        for e in doc["recipients"]:
            self.assertEqual(e, by_row[e["row"]])
        # and blast report reads it as any report
        p = harness.run_blast("report", path, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["by_status"]["delivered"], 1200)
        p = harness.run_blast("report", path, "--format", "csv")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1203)
        p = harness.run_blast("report", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("smtp-test", p.stdout)

    def test_same_as_the_campaign_sent_whole(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        whole = Campaign(self.rows, plain(sink.port, connections=2))
        self.addCleanup(whole.remove)
        p = whole.send()
        self.assertIn(p.returncode, (0, 1), p.stderr)
        path = self.out("merged-whole.json")
        p = merge(*self.shards, "-o", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        keys = ("row", "email", "status", "code", "enhanced_code", "detail", "attempts")
        merged = [tuple(e.get(k) for k in keys) for e in harness.load_report(path)["recipients"]]
        one = [tuple(e.get(k) for k in keys) for e in whole.entries()]
        self.assertEqual(merged, one)

    def refused(self, inputs, message):
        path = self.out("refused.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write("the previous merge\n")
        p = merge(*inputs, "-o", path)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(message, p.stderr)
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "the previous merge\n", "nothing written")
        leftovers = [n for n in os.listdir(self.c.dir) if n.startswith("refused.json.tmp")]
        self.assertEqual(leftovers, [])
        return p.stderr

    def test_a_missing_shard(self):
        err = self.refused([self.shards[0], self.shards[1], self.shards[3]],
                           "1 of the 4 shards missing: 2")
        self.assertNotIn("again", err)

    def test_a_shard_given_twice(self):
        self.refused([*self.shards, self.shards[1]], "shard 1 of 4 again")

    def test_another_campaign(self):
        other = Campaign(self.rows[:50], plain(self.sink.port))
        self.addCleanup(other.remove)
        yml = os.path.join(other.dir, "campaign.yml")
        with open(yml, encoding="utf-8") as f:
            text = f.read()
        with open(yml, "w", encoding="utf-8") as f:
            f.write(text.replace("name: smtp-test", "name: other-news"))
        p = harness.run_blast("send", "campaign.yml", "--shard", "1/4", "--dry-run",
                              os.path.join(other.dir, "out"), cwd=other.dir)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        report = os.path.join(other.dir, "reports", "other-news.shard-1-of-4.json")
        self.refused([self.shards[0], report, self.shards[2], self.shards[3]],
                     'a report of campaign "other-news", but')

    def test_another_list_of_the_same_campaign(self):
        other = Campaign(self.rows[:50], plain(self.sink.port))
        self.addCleanup(other.remove)
        p = harness.run_blast("send", "campaign.yml", "--shard", "1/4", cwd=other.dir)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        report = os.path.join(other.dir, "reports", "smtp-test.shard-1-of-4.json")
        self.refused([self.shards[0], report, self.shards[2], self.shards[3]],
                     "changed between the shards")

    def test_another_shard_count(self):
        p = harness.run_blast("send", "campaign.yml", "--shard", "1/3",
                              "--report", self.out("three.json"), "--journal",
                              self.out("three.journal"), cwd=self.c.dir)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.refused([self.shards[0], self.out("three.json"), self.shards[2], self.shards[3]],
                     "the campaign was split two ways")

    def test_a_whole_campaigns_report(self):
        whole = os.path.join(self.c.dir, "whole.json")
        p = harness.run_blast("send", "campaign.yml", "--dry-run",
                              os.path.join(self.c.dir, "dry"), "--report", whole, cwd=self.c.dir)
        self.addCleanup(shutil.rmtree, os.path.join(self.c.dir, "dry"), True)
        self.addCleanup(os.unlink, whole)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.refused([whole, *self.shards[1:]], "not a shard's report")

    def test_a_row_in_two_shards(self):
        # shard 0's report passed off as shard 1: the same rows twice
        with open(self.shards[0], encoding="utf-8") as f:
            text = f.read()
        fake = self.out("fake-1.json")
        faked = text.replace('"shard":{"index":0,"count":4}', '"shard":{"index":1,"count":4}', 1)
        self.assertNotEqual(faked, text)
        with open(fake, "w", encoding="utf-8") as f:
            f.write(faked)
        self.refused([self.shards[0], fake, self.shards[2], self.shards[3]],
                     "overlapping shards")

    def test_a_truncated_shard_report(self):
        with open(self.shards[3], encoding="utf-8") as f:
            text = f.read()
        cut = self.out("cut-3.json")
        with open(cut, "w", encoding="utf-8") as f:
            f.write(text[: len(text) * 2 // 3])
        err = self.refused([*self.shards[:3], cut], "is the report truncated?")
        self.assertRegex(err, r"cut-3\.json:\d+:\d+: ")

    def test_usage(self):
        p = merge(*self.shards)
        self.assertEqual(p.returncode, 2)
        self.assertIn("-o MERGED.json", p.stderr)
        p = merge("-o", self.out("x.json"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("needs the shards' reports", p.stderr)
        p = harness.run_blast("report", "--merge", "--format", "csv", *self.shards, "-o", "-")
        self.assertEqual(p.returncode, 2)
        p = merge(*self.shards, "-o", "-")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(json.loads(p.stdout)["recipients"]), 1202)


if __name__ == "__main__":
    unittest.main()
