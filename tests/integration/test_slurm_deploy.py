"""deploy/slurm under a real Slurm (tests/integration/slurm.py): submit.sh submits a
campaign of 20,000 recipients as a job array of 4 shards and the merge after it,
against Postfix's smtp-sink on loopback; every recipient is received exactly once,
each task writes its own log, journal and report in the state directory, and one
shard rerun alone (submit.sh -r) is still shard I of 4 and resumes its journal;
the merge job's report is the campaign's and agrees with the relay.
"""

import json
import os
import re
import shutil
import tempfile
import time
import unittest

from tests.integration import harness, servers
from tests.integration.slurm import Slurm
from tests.integration.test_shards import shard_of
from tests.integration.test_smtp import Campaign, plain

N = 4
ROWS = [f"user{i}@example.com" for i in range(1, 20001)]
SUBMIT = os.path.join(harness.ROOT, "deploy", "slurm", "submit.sh")
NAME = "campaign"   # the files' prefix: the campaign file's name


class SubmitScript(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.slurm = Slurm()

    @classmethod
    def tearDownClass(cls):
        cls.slurm.stop()

    def setUp(self):
        self.sink = servers.Sink()
        self.addCleanup(self.sink.stop)
        self.c = Campaign(ROWS, plain(self.sink.port, connections=2))
        self.addCleanup(self.c.remove)
        self.state = tempfile.mkdtemp(prefix="blast-state-")
        self.addCleanup(shutil.rmtree, self.state, ignore_errors=True)

    def submit(self, *args):
        """submit.sh against the test cluster; (the array's job id, the merge's)."""
        p = self.slurm.run(SUBMIT, "-n", str(N), "-t", "2", "-d", self.state,
                           "-b", harness.BLAST, *args, os.path.join(self.c.dir, "campaign.yml"),
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr + self.slurm.log())
        shards = re.search(r"(?m)^shards (\d+) ", p.stdout)
        merge = re.search(r"(?m)^merge (\d+) ", p.stdout)
        self.assertTrue(shards and merge, p.stdout)
        return int(shards.group(1)), int(merge.group(1))

    def log(self, job, i=None):
        name = f"{NAME}-{job}_{i}.out" if i is not None else f"{NAME}-merge-{job}.out"
        try:
            with open(os.path.join(self.state, "logs", name), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return f"(no {name})"

    def report(self, i):
        doc = harness.load_report(os.path.join(self.state, "reports",
                                               f"{NAME}.shard-{i}-of-{N}.json"))
        self.assertEqual(doc["campaign"]["shard"], {"index": i, "count": N})
        return doc["recipients"]

    def check_shards(self, shards, timeout=90):
        """Every task of the array exited 0, wrote its log, journal and report; every
        recipient was received exactly once."""
        tasks = self.slurm.wait(shards, timeout=timeout)
        self.assertEqual(sorted(tasks), list(range(N)), tasks)
        for i, t in tasks.items():
            self.assertEqual((t.state, t.exit_code), ("COMPLETED", 0),
                             f"task {i}: {t}\n{self.log(shards, i)}")
            # blast's own first line, in the task's own log
            self.assertIn(f"shard {i} of {N} (0-based)", self.log(shards, i), "a log per task")
        seen = {}
        for i in range(N):
            for e in self.report(i):
                self.assertNotIn(e["email"], seen, "a recipient in two shards")
                seen[e["email"]] = i
                self.assertEqual(shard_of(e["email"], N), i, e["email"])
                self.assertEqual(e["status"], "delivered", e)
        self.assertEqual(len(seen), len(ROWS))
        journals = sorted(os.listdir(os.path.join(self.state, "journals")))
        self.assertEqual([j for j in journals if j.endswith(".journal")],
                         [f"{NAME}.shard-{i}-of-{N}.journal" for i in range(N)])
        received = self.sink.recipients()
        self.assertEqual(len(received), len(ROWS), "every recipient")
        self.assertEqual(set(received.values()), {1}, "each exactly once")

    def test_one_shard_rerun_alone_then_the_whole_campaign(self):
        t0 = time.monotonic()
        # shard 2 alone first, as a rerun of a failed task is submitted: an array of
        # one, still shard 2 of 4; the merge after it finds three shards missing
        shards, merge = self.submit("-r", "2")
        tasks = self.slurm.wait(shards, timeout=60)
        self.assertEqual(sorted(tasks), [2], tasks)
        self.assertEqual(tasks[2].exit_code, 0, self.log(shards, 2))
        mine = [a for a in ROWS if shard_of(a, N) == 2]
        self.assertEqual(sorted(e["email"] for e in self.report(2)), sorted(mine))
        self.assertEqual(sorted(self.sink.recipients()), sorted(mine))
        m = self.slurm.wait(merge, timeout=60)[None]
        self.assertNotEqual(m.exit_code, 0, "a merge with shards missing succeeded")
        self.assertIn(f"no report for shard 0 of {N}", self.log(merge))

        # the whole campaign: shard 2 resumes from its journal and sends nobody again
        shards, merge = self.submit()
        self.check_shards(shards)
        self.slurm.wait(merge, timeout=60)
        print(f"\n  {len(ROWS)} recipients, 4 shards after one alone: "
              f"{time.monotonic() - t0:.1f} s", end=" ")

    def test_the_merge_job_writes_the_campaign_report(self):
        t0 = time.monotonic()
        shards, merge = self.submit()
        self.check_shards(shards)
        m = self.slurm.wait(merge, timeout=60)[None]
        self.assertEqual((m.state, m.exit_code), ("COMPLETED", 0), self.log(merge))
        with open(os.path.join(self.state, "reports", f"{NAME}.json"), encoding="utf-8") as f:
            doc = json.load(f)
        harness.check_report(doc)
        emails = [e["email"] for e in doc["recipients"]]
        self.assertEqual(emails, ROWS, "every row, in the list's order")
        self.assertEqual(sorted(emails), sorted(self.sink.recipients()), "as the relay got them")
        self.assertEqual([s["index"] for s in doc["campaign"]["shards"]], list(range(N)))
        self.assertEqual({e["status"] for e in doc["recipients"]}, {"delivered"})
        print(f"\n  {len(ROWS)} recipients, 4 shards and the merge: "
              f"{time.monotonic() - t0:.1f} s", end=" ")

if __name__ == "__main__":
    unittest.main()
