"""Seeds, the canary (docs/campaign.md, "seeds"): the team's mailboxes get the first
recipient's message before the list, once; when every seed is refused for good the
list is not sent (exit 5, every recipient deferred with the reason), and a rerun tries
the seeds again; --no-breaker sends the list regardless."""

import os
import stat
import unittest

from tests.integration import harness, servers
from tests.integration.test_delivery import Campaign, relay

N = 20
SEEDS = "seeds: [qa@team.example, \"QA Two <qa2@team.example>\"]\n"


def rcpts(server):
    return [r for _, tos, _ in server.messages for r in tos]


class Seeds(unittest.TestCase):
    def campaign(self, port, extra=SEEDS):
        c = Campaign(N, [relay(port, connections=2)], extra="retry: {attempts: 1}\n" + extra)
        self.addCleanup(c.remove)
        return c

    def server(self, script=None):
        s = servers.Scripted(script)
        self.addCleanup(s.stop)
        return s

    def test_seeds_get_the_first_message_first_and_once(self):
        s = self.server()
        c = self.campaign(s.port)
        p = c.send("--limit", "5")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = rcpts(s)
        self.assertEqual(sorted(got[:2]), ["qa2@team.example", "qa@team.example"], got)
        self.assertEqual(sorted(got[2:]), sorted(c.addresses[:5]))
        # the first recipient's message, addressed to the seed
        seed_msgs = [m for _, tos, m in s.messages if tos[0].endswith("@team.example")]
        for m in seed_msgs:
            text = m.decode() if isinstance(m, bytes) else m
            self.assertIn("Subject: Hi user1", text)
            self.assertNotIn("To: user1@example.com", text)
            # row 0 in the envelope id: what comes back for a seed is no recipient's
        self.assertIn("To: QA Two <qa2@team.example>",
                      "\n".join(m.decode() for _, tos, m in s.messages
                                if tos == ["qa2@team.example"]))
        report = harness.load_report(c.report)
        harness.check_report(report)
        seeds = report["summary"]["seeds"]
        self.assertEqual([e["email"] for e in seeds], ["qa@team.example", "qa2@team.example"])
        self.assertEqual({e["status"] for e in seeds}, {"delivered"})
        self.assertEqual([e["row"] for e in seeds], [1, 2])
        # the list's entries are the list's only
        self.assertEqual(len(report["recipients"]), 5)
        path = c.journal + ".seeds"
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        # the rest of the list: the seeds had it already
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        got = rcpts(s)
        self.assertEqual(got.count("qa@team.example"), 1, got)
        self.assertEqual(len(got), N + 2)
        self.assertEqual({e["status"] for e in harness.load_report(c.report)["summary"]["seeds"]},
                         {"delivered"})

    def test_refused_seeds_stop_the_list(self):
        block = "550 5.7.1 Message rejected: content looks like spam"
        s = self.server(servers.Script(rcpt={"qa@team.example": block,
                                             "qa2@team.example": block}))
        c = self.campaign(s.port)
        p = c.send()
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("the seeds were refused", p.stderr)
        self.assertEqual(rcpts(s), [], "no recipient of the list was tried")
        entries = c.entries()
        self.assertEqual(len(entries), N)
        self.assertEqual({e["status"] for e in entries}, {"deferred"})
        self.assertIn("the seeds were refused", entries[0]["detail"])
        self.assertEqual(entries[0]["attempts"], 0)
        summary = harness.load_report(c.report)["summary"]
        self.assertIn("2 of 2 seeds refused: qa@team.example: 550 5.7.1",
                      summary["breaker"]["reason"])
        self.assertEqual({e["status"] for e in summary["seeds"]}, {"failed"})
        text = harness.run_blast("report", c.report, "--no-db")
        self.assertIn("seeds       0 of 2 delivered; refused: qa@team.example", text.stdout)
        self.assertIn("stopped     by the circuit breaker: 2 of 2 seeds refused", text.stdout)
        page = harness.run_blast("report", c.report, "--format", "html", "--no-db")
        self.assertIn('<dd id="breaker">by the circuit breaker: <bdi>2 of 2 seeds refused', page.stdout)
        self.assertIn('<dd id="seeds">0 of 2 delivered', page.stdout)
        # a rerun tries the seeds again: still refused, still stopped
        p = c.send()
        self.assertEqual(p.returncode, 5, p.stderr)
        # a deliberate run sends the list whatever the seeds say
        p = c.send("--no-breaker")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("every seed was refused; sending the list anyway", p.stderr)
        self.assertEqual(sorted(rcpts(s)), sorted(c.addresses))

    def test_a_run_with_nothing_to_send_does_not_judge_old_seeds(self):
        block = "550 5.7.1 Message rejected"
        s = self.server(servers.Script(rcpt={"qa@team.example": block,
                                             "qa2@team.example": block}))
        c = self.campaign(s.port)
        self.assertEqual(c.send().returncode, 5)
        self.assertEqual(c.send("--no-breaker").returncode, 0)
        # nothing left to send: no seed is sent, and the old refusals stop nothing
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("seeds were refused", p.stderr)
        self.assertEqual(sorted(rcpts(s)), sorted(c.addresses))  # two connections: any order

    def test_seeds_edited_between_runs(self):
        s = self.server()
        c = self.campaign(s.port, extra="seeds: [qa@team.example]\n")
        self.assertEqual(c.send("--limit", "2").returncode, 0)
        # a new seed put first: it takes the first place in the seeds' journal
        with open(c.path) as f:
            text = f.read()
        with open(c.path, "w") as f:
            f.write(text.replace("seeds: [qa@team.example]",
                                 "seeds: [new@team.example, qa@team.example]"))
        p = c.send("--force")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = rcpts(s)
        self.assertEqual(got.count("new@team.example"), 1, got)
        seeds = harness.load_report(c.report)["summary"]["seeds"]
        self.assertEqual([e["email"] for e in seeds], ["new@team.example"])

    def test_no_seeds_while_the_window_holds_everyone(self):
        s = self.server()
        c = self.campaign(s.port, extra=SEEDS + "window: {hours: \"02:00-03:00\"}\n"
                                               "timezone: UTC\n")
        p = c.send(env=dict(os.environ, BLAST_NOW="2026-12-07T10:00:00Z"))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(rcpts(s), [])
        self.assertNotIn("sending to the seeds", p.stderr)

    def test_one_seed_delivered_is_enough(self):
        s = self.server(servers.Script(rcpt={"qa@team.example": "550 5.1.1 no such user"}))
        c = self.campaign(s.port)
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(rcpts(s)), N + 1)

    def test_no_seeds_for_test_sends_dry_runs_and_other_shards(self):
        s = self.server()
        c = self.campaign(s.port)
        p = c.send("--to", "me@team.example", "--limit", "1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(rcpts(s), ["me@team.example"])
        self.assertFalse(os.path.exists(c.journal + ".seeds"))
        p = c.send("--shard", "1/2")
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertNotIn("qa@team.example", rcpts(s))
        p = c.send("--shard", "0/2")
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertEqual(rcpts(s).count("qa@team.example"), 1)


if __name__ == "__main__":
    unittest.main()
