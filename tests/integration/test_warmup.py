"""Warm-up (docs/campaign.md, "warmup"): a new sender's daily caps per mailbox provider,
counted across runs and campaigns in a store, judged by the campaign clock (BLAST_NOW).
Day 1 sends the cap and defers the rest ("warm-up cap: ..."), a second run the same day
sends nobody, the next day continues; two campaigns of one sender share the count;
domains of a provider (found in a real DNS server on loopback) have their own cap;
counts survive a SIGKILL (the run after it, the same day, stays under the cap)."""

import os
import signal
import sqlite3
import stat
import subprocess
import time
import unittest

from tests.integration import harness, servers
from tests.integration.test_delivery import Campaign, relay

DAY1 = "2026-12-07T10:00:00Z"
DAY1_LATER = "2026-12-07T22:30:00Z"
DAY2 = "2026-12-08T09:00:00Z"


def delivered(c):
    return sorted(e["email"] for e in c.entries() if e["status"] == "delivered")


class Warmup(unittest.TestCase):
    def setUp(self):
        self.sink = servers.Sink()
        self.addCleanup(self.sink.stop)

    def campaign(self, n, extra="warmup: {daily: [5, 8]}\ntimezone: UTC\n", **kw):
        c = Campaign(n, [relay(self.sink.port, connections=2)], extra=extra, **kw)
        self.addCleanup(c.remove)
        return c

    def send(self, c, now, *args, **kw):
        return c.send(*args, env=dict(os.environ, BLAST_NOW=now), **kw)

    def test_day_one_sends_the_cap_and_day_two_continues(self):
        c = self.campaign(12)
        p = self.send(c, DAY1)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("warm-up: other, day 1 of the ramp: 5 today", p.stderr)
        entries = c.entries()
        self.assertEqual(len(delivered(c)), 5)
        held = [e for e in entries if e["status"] == "deferred"]
        self.assertEqual(len(held), 7)
        self.assertTrue(held[0]["detail"].startswith(
            "warm-up cap: other has had today's 5 from acme.example (day 1 of the ramp)"),
            held[0]["detail"])
        self.assertEqual(held[0]["attempts"], 0)
        summary = harness.load_report(c.report)["summary"]
        self.assertEqual(summary["held"], {"window": 0, "warmup": 7})
        self.assertEqual(summary["warmup"]["sender"], "acme.example")
        self.assertEqual(summary["warmup"]["day"], "2026-12-07")
        self.assertEqual(summary["warmup"]["providers"]["other"],
                         {"ramp_day": 1, "cap": 5, "sent": 5, "held": 7, "reached": True})
        text = harness.run_blast("report", c.report, "--no-db")
        self.assertIn("held        7 past a warm-up cap (deferred for a later run)", text.stdout)
        # the store: beside the campaign, private
        store = os.path.join(c.dir, ".blast", "warmup.db")
        self.assertEqual(stat.S_IMODE(os.stat(store).st_mode), 0o600)
        # check shows today's caps and what remains
        p = harness.run_blast("check", c.path, env=dict(os.environ, BLAST_NOW=DAY1_LATER))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"warm-up     acme.example on 2026-12-07 (UTC), counted in {store}",
                      p.stdout)
        self.assertIn("other: day 1 of 2: 5 today, 5 sent, 0 left", p.stdout)
        p = harness.run_blast("check", c.path, env=dict(os.environ, BLAST_NOW=DAY2))
        self.assertIn("other: day 2 of 2: 8 today, 0 sent, 8 left", p.stdout)
        # later the same day: nothing more
        p = self.send(c, DAY1_LATER)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(delivered(c)), 5)
        self.assertEqual(len(self.sink.messages()), 5)
        # the next day: day 2's cap of 8 takes the other 7
        p = self.send(c, DAY2)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(delivered(c)), 12)
        self.assertEqual(len(self.sink.messages()), 12)
        w = harness.load_report(c.report)["summary"]["warmup"]
        self.assertEqual(w["providers"]["other"],
                         {"ramp_day": 2, "cap": 8, "sent": 7, "held": 0, "reached": False})
        self.assertNotIn("held", harness.load_report(c.report)["summary"])

    def test_the_day_is_the_campaigns_time_zone(self):
        # 22:30 UTC on the 7th is already the 8th in Tokyo: day 2 of a ramp started on the 7th
        c = self.campaign(12, extra="warmup: {daily: [5, 8], start: 2026-12-07}\n"
                                    "timezone: Asia/Tokyo\n")
        p = self.send(c, DAY1_LATER)
        self.assertIn("day 2 of the ramp: 8 today", p.stderr)
        self.assertEqual(len(delivered(c)), 8)
        self.assertEqual(harness.load_report(c.report)["summary"]["warmup"]["day"], "2026-12-08")

    def test_campaigns_of_one_sender_share_the_cap(self):
        a = self.campaign(4)
        p = self.send(a, DAY1)
        self.assertEqual(p.returncode, 0, p.stderr)
        # another campaign with its own list, in another directory, sharing the store
        store = os.path.join(a.dir, ".blast", "warmup.db")
        b = self.campaign(6, extra=f"warmup: {{daily: [5, 8], store: {store}}}\ntimezone: UTC\n",
                          domain="example.org")
        p = self.send(b, DAY1)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(delivered(b)), 1, "5 a day, 4 went with the other campaign")
        # the counts in the store
        db = sqlite3.connect(store)
        self.addCleanup(db.close)
        rows = db.execute("select sum(sent) from warmup_count").fetchone()
        self.assertEqual(rows[0], 5)

    def test_no_warmup_for_a_provider_set_false(self):
        c = self.campaign(8, extra="warmup: {daily: [2], providers: {other: false}}\n"
                                   "timezone: UTC\n")
        p = self.send(c, DAY1)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(delivered(c)), 8)
        self.assertNotIn("warmup", harness.load_report(c.report)["summary"])

    def test_unknown_provider_and_bad_clock_are_refused(self):
        c = self.campaign(2, extra="warmup: {providers: {gmial: {daily: [5]}}}\n")
        p = self.send(c, DAY1)
        self.assertEqual(p.returncode, 2)
        self.assertIn("campaign.yml:", p.stderr)
        self.assertIn("no provider is called 'gmial'", p.stderr)
        c = self.campaign(2)
        p = self.send(c, "yesterday")
        self.assertEqual(p.returncode, 2)
        self.assertIn("BLAST_NOW: not an instant such as 2026-12-07T08:30:00Z", p.stderr)
        self.assertEqual(self.sink.messages(), [])

    def test_a_run_stopped_early_gives_back_what_it_did_not_send(self):
        c = self.campaign(60, extra="warmup: {daily: [30]}\ntimezone: UTC\nrate: 10/s\n")
        p = self.send(c, DAY1, "--deadline", "1s")
        self.assertEqual(p.returncode, 1, p.stderr)
        first = len(self.sink.messages())
        self.assertLess(first, 30)
        summary = harness.load_report(c.report)["summary"]
        self.assertEqual(summary["warmup"]["providers"]["other"]["sent"], first)
        # the same day: the rest of the day's 30
        p = self.send(c, DAY1_LATER)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(self.sink.messages()), 30)
        self.assertEqual(len(delivered(c)), 30)

    def test_a_run_without_a_relay_counts_nothing(self):
        c = self.campaign(12)
        closed = servers.free_port()
        with open(c.path) as f:
            text = f.read()
        with open(c.path, "w") as f:
            f.write(text.replace(f"port: {self.sink.port}", f"port: {closed}"))
        p = self.send(c, DAY1)
        self.assertEqual(p.returncode, 4, p.stderr)
        db = sqlite3.connect(os.path.join(c.dir, ".blast", "warmup.db"))
        self.addCleanup(db.close)
        self.assertEqual(db.execute("select coalesce(sum(sent), 0) from warmup_count").fetchone()[0],
                         0, "what was never tried is given back")
        self.assertEqual(db.execute("select count(*) from warmup_first").fetchone()[0], 0,
                         "nothing went: the ramp has not started")
        db.close()
        # the relay back, later that day: the day's whole cap
        with open(c.path, "w") as f:
            f.write(text)
        p = self.send(c, DAY1_LATER, "--force")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(self.sink.messages()), 5)

    def test_shards_share_the_days_cap(self):
        c = self.campaign(40, extra="warmup: {daily: [10]}\ntimezone: UTC\n")
        for i in range(2):
            p = self.send(c, DAY1, "--shard", f"{i}/2")
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("this shard's part 5", p.stderr)
        self.assertEqual(len(self.sink.messages()), 10)
        # an unsharded run the same day finds the sender's cap reached
        p = self.send(c, DAY1_LATER)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(self.sink.messages()), 10)
        p = harness.run_blast("check", c.path, env=dict(os.environ, BLAST_NOW=DAY1_LATER))
        self.assertIn("other: day 1 of 1: 10 today, 10 sent, 0 left", p.stdout)

    def test_counts_survive_a_sigkill(self):
        # 10 a second: the kill lands half way through the day's cap of 30
        c = self.campaign(60, extra="warmup: {daily: [30, 100]}\ntimezone: UTC\nrate: 10/s\n")
        p = c.start(env=dict(os.environ, BLAST_NOW=DAY1))
        deadline = time.monotonic() + 30
        while len(self.sink.messages()) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.communicate()
        first = len(self.sink.messages())
        self.assertGreaterEqual(first, 12)
        self.assertLess(first, 30, "killed before the cap")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(c.dir, ".blast", "warmup.db")).st_mode),
                         0o600)
        # the same day again: what the killed run counted stands (those it had queued
        # but not sent too, on the safe side): the day's cap is never passed
        p = self.send(c, DAY1_LATER, "--resend-unknown")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertLessEqual(len(self.sink.messages()), 30)
        summary = harness.load_report(c.report)["summary"]
        self.assertEqual(summary["warmup"]["providers"]["other"]["sent"], 30)
        self.assertTrue(summary["warmup"]["providers"]["other"]["reached"])
        # the next day finishes
        p = self.send(c, DAY2, "--resend-unknown")
        self.assertEqual(p.returncode, 0, p.stderr)
        rcpts = self.sink.recipients()
        self.assertEqual(len(rcpts), 60)
        self.assertEqual(max(rcpts.values()), 1, "nobody twice")


class WarmupByProvider(unittest.TestCase):
    """Each provider its own cap: two domains on Google's MX hosts share google's."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(servers.Dnsmasq.BINARY):
            raise unittest.SkipTest("dnsmasq (Debian's dnsmasq-base) is not installed")
        cls.dns = servers.Dnsmasq(
            "--local=/test/",
            "--mx-host=alpha.test,aspmx.l.google.com,10",
            "--mx-host=beta.test,alt1.aspmx.l.google.com,10",
            "--host-record=plain.test,127.0.0.2")

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def test_providers_have_their_own_caps(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        addresses = ([f"a{i}@alpha.test" for i in range(4)] + [f"b{i}@beta.test" for i in range(4)]
                     + [f"p{i}@plain.test" for i in range(6)])
        c = Campaign(0, [relay(sink.port, connections=2)], addresses=addresses,
                     extra="warmup: {daily: [3], providers: {other: {daily: [5]}}}\n"
                           "timezone: UTC\n")
        self.addCleanup(c.remove)
        env = dict(os.environ, BLAST_NOW=DAY1, BLAST_DNS_SERVERS=self.dns.servers)
        p = c.send(env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        got = delivered(c)
        google = [a for a in got if not a.endswith("@plain.test")]
        self.assertEqual(len(google), 3, got)
        self.assertEqual(len(got) - len(google), 5, got)
        w = harness.load_report(c.report)["summary"]["warmup"]["providers"]
        self.assertEqual(w["google"]["cap"], 3)
        self.assertEqual(w["google"]["held"], 5)
        self.assertEqual(w["other"]["held"], 1)


if __name__ == "__main__":
    unittest.main()
