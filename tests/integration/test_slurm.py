"""A campaign sharded over a real Slurm job array (docs/sharding.md), on a private
one-node cluster on loopback (tests/integration/slurm.py) and Postfix's smtp-sink.

The batch script runs `blast send campaign.yml` without --shard: each array task takes
its shard from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT. A task killed with
SIGKILL in the middle and run again resumes its own shard from its journal, and no
recipient is received twice.
"""

import os
import re
import shlex
import time
import unittest

from tests.integration import harness, servers
from tests.integration.slurm import Slurm
from tests.integration.test_shards import shard_of
from tests.integration.test_smtp import Campaign, plain

N = 4
ROWS = [f"user{i}@example.com" for i in range(1, 2001)]


def script(array="0-3%2"):
    """The batch script: blast in the campaign's directory (sbatch --chdir), no --shard;
    exec, so that the task's own process is blast and a signal to the batch step is
    blast's."""
    return (f"#!/bin/sh\n"
            f"#SBATCH --array={array}\n"
            f"#SBATCH --job-name=blast-shards\n"
            f"#SBATCH --output=slurm-%A_%a.out\n"
            f"export BLAST_SHARD_COUNT={N}  # so that one task rerun alone is still of {N}\n"
            f"exec {shlex.quote(harness.BLAST)} send campaign.yml\n")


def sink_recipients(sink):
    return sink.recipients()


class JobArray(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.slurm = Slurm()

    @classmethod
    def tearDownClass(cls):
        cls.slurm.stop()

    def setUp(self):
        self.sink = servers.Sink()
        self.addCleanup(self.sink.stop)

    def campaign(self, extra=""):
        c = Campaign(ROWS, plain(self.sink.port, connections=2), extra=extra)
        self.addCleanup(c.remove)
        return c

    def submit(self, c, *args, array="0-3%2"):
        return self.slurm.sbatch(script(array), "--chdir", c.dir, *args)

    def report(self, c, i):
        path = os.path.join(c.dir, "reports", f"smtp-test.shard-{i}-of-{N}.json")
        doc = harness.load_report(path)
        self.assertEqual(doc["campaign"]["shard"], {"index": i, "count": N})
        return doc["recipients"]

    def task_output(self, c, job, i):
        try:
            with open(os.path.join(c.dir, f"slurm-{job}_{i}.out"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def test_a_job_array_of_four_shards_sends_every_recipient_once(self):
        c = self.campaign()
        job = self.submit(c)
        tasks = self.slurm.wait(job, timeout=60)
        self.assertEqual(sorted(tasks), list(range(N)), tasks)
        for i, t in tasks.items():
            self.assertEqual((t.state, t.exit_code, t.signal), ("COMPLETED", 0, 0),
                             f"task {i}: {t}\n{self.task_output(c, job, i)}")
        # the job completion log says the same as the controller
        self.assertEqual(self.slurm.completions(job), tasks)
        seen = {}
        for i in range(N):
            entries = self.report(c, i)
            self.assertTrue(entries, f"shard {i} is empty")
            for e in entries:
                self.assertNotIn(e["row"], seen, "a row in two shards")
                seen[e["row"]] = e
                self.assertEqual(shard_of(e["email"], N), i, e["email"])
                self.assertEqual(e["status"], "delivered", e)
        self.assertEqual(sorted(seen), list(range(1, len(ROWS) + 1)), "every row, once")
        self.assertEqual(len(self.sink.messages()), len(ROWS))
        received = sink_recipients(self.sink)
        self.assertEqual(sorted(received), sorted(ROWS))
        self.assertEqual(set(received.values()), {1})

    def test_a_task_killed_midway_and_run_again_sends_nobody_twice(self):
        # 400/s for the campaign is 100/s for each shard: about 5 s a shard, time
        # enough to kill shard 1 half way
        c = self.campaign(extra="rate: 400/s\n")
        victim = 1
        mine = [a for a in ROWS if shard_of(a, N) == victim]
        job = self.submit(c)
        deadline = time.monotonic() + 30
        while True:
            got = sink_recipients(self.sink)
            if sum(1 for a in mine if a in got) >= 60:
                break
            self.assertLess(time.monotonic(), deadline,
                            "shard 1 did not start\n" + self.slurm.log())
            time.sleep(0.05)
        # --batch: the signal itself to the batch step (blast, exec'd), not a cancel,
        # which would send SIGTERM first and let blast stop cleanly
        p = self.slurm.scancel("--batch", "--signal=KILL", f"{job}_{victim}")
        self.assertEqual(p.returncode, 0, p.stderr)
        tasks = self.slurm.wait(job, timeout=60)
        self.assertEqual(sorted(tasks), list(range(N)), tasks)
        self.assertEqual(tasks[victim].signal, 9, tasks)
        for i in set(range(N)) - {victim}:
            self.assertEqual(tasks[i].exit_code, 0, f"task {i}: {tasks[i]}\n"
                             + self.task_output(c, job, i))
        report = os.path.join(c.dir, "reports", f"smtp-test.shard-{victim}-of-{N}.json")
        self.assertFalse(os.path.exists(report), "a run killed with SIGKILL wrote its report")
        journal = os.path.join(c.dir, ".blast", f"smtp-test.shard-{victim}-of-{N}.journal")
        self.assertTrue(os.path.exists(journal))
        before = sink_recipients(self.sink)
        partial = sum(1 for a in mine if a in before)
        self.assertLess(partial, len(mine), "the kill came after the shard's end")

        # the same index of the same array again (the array's environment: count 4)
        self.slurm.requeue(f"{job}_{victim}")
        tasks = self.slurm.wait(job, timeout=60)
        entries = self.report(c, victim)
        statuses = {e["email"]: e["status"] for e in entries}
        unknown = sorted(a for a, s in statuses.items() if s == "unknown")
        self.assertEqual(tasks[victim].exit_code, 1 if unknown else 0,
                         f"{tasks[victim]}\n" + self.task_output(c, job, victim))
        self.assertEqual(sorted(statuses), sorted(mine), "the shard's report is complete")
        self.assertLessEqual(set(statuses.values()), {"delivered", "unknown"})
        # at most the message past its end of data and SMTP_AHEAD + 1 behind it, a
        # connection (docs/delivery.md)
        self.assertLessEqual(len(unknown), 2 * (1 + 4 + 1), unknown)
        received = sink_recipients(self.sink)
        twice = {a: n for a, n in received.items() if n > 1}
        self.assertEqual(twice, {}, "received twice")
        for a in ROWS:
            if shard_of(a, N) != victim or statuses[a] == "delivered":
                self.assertEqual(received.get(a, 0), 1, a)
        self.assertGreater(sum(1 for a in mine if a in received), partial, "nothing resumed")

    def test_one_index_rerun_as_its_own_array(self):
        # docs/sharding.md: a failed task is rerun by its index alone (sbatch --array=2).
        # Such a job is an array of one (SLURM_ARRAY_TASK_COUNT=1): the script's
        # BLAST_SHARD_COUNT keeps it shard 2 of 4.
        c = self.campaign()
        job = self.submit(c, array="2")
        tasks = self.slurm.wait(job, timeout=30)
        self.assertEqual(tasks[2].exit_code, 0, self.task_output(c, job, 2))
        self.report(c, 2)


if __name__ == "__main__":
    unittest.main()
