"""The circuit breaker (docs/delivery.md, "The circuit breaker"): a relay that refuses
most recipients with 550 5.7.1 stops the run after the tenth block of its first
attempts, with exit 5 and the rest deferred (the reason in each entry), and a rerun
with --no-breaker sends them; `breaker: false` never stops; a healthy relay never
trips it."""

import unittest

from tests.integration import harness, servers
from tests.integration.test_delivery import Campaign, relay

N = 300


class Breaker(unittest.TestCase):
    def campaign(self, port, extra=""):
        c = Campaign(N, [relay(port, connections=2)], extra="retry: {attempts: 1}\n" + extra)
        self.addCleanup(c.remove)
        return c

    def blocking_relay(self, c):
        # every recipient but each tenth refused by policy, as a blocklisted IP would be
        script = servers.Script(rcpt={a: "550 5.7.1 Service unavailable; client host blocked"
                                      for i, a in enumerate(c.addresses) if i % 10 != 0})
        s = servers.Scripted(script)
        self.addCleanup(s.stop)
        return s

    def test_a_blocked_run_stops_early(self):
        probe = self.campaign(1)
        server = self.blocking_relay(probe)
        c = self.campaign(server.port)
        p = c.send()
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("the circuit breaker stopped the run: 10 of the first", p.stderr)
        self.assertIn("blocked by policy (5.7.x)", p.stderr)
        entries = c.entries()
        failed = [e for e in entries if e["status"] == "failed"]
        deferred = [e for e in entries if e["status"] == "deferred"]
        # a few more were already on their way when it tripped: pipelined sessions
        self.assertLess(len(failed), 30, f"{len(failed)} refused before it stopped")
        self.assertGreater(len(deferred), N - 40)
        self.assertIn("the circuit breaker stopped the run", deferred[-1]["detail"])
        # the report says so, and so does blast report
        report = harness.load_report(c.report)
        harness.check_report(report)
        self.assertIn("blocked by policy (5.7.x)", report["summary"]["breaker"]["reason"])
        text = harness.run_blast("report", c.report, "--no-db")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("stopped     by the circuit breaker: 10 of the first", text.stdout)
        # the next run, told to go on regardless, sends the rest
        p = c.send("--no-breaker")
        self.assertEqual(p.returncode, 1, p.stderr)
        statuses = {e["status"] for e in c.entries()}
        self.assertEqual(statuses, {"delivered", "failed"})
        self.assertNotIn("breaker", harness.load_report(c.report)["summary"], "this run's only")

    def test_breaker_false_never_stops(self):
        probe = self.campaign(1)
        server = self.blocking_relay(probe)
        c = self.campaign(server.port, extra="breaker: false\n")
        p = c.send()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertNotIn("circuit breaker", p.stderr)
        self.assertEqual({e["status"] for e in c.entries()}, {"delivered", "failed"})

    def test_a_healthy_relay_never_trips_it(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        c = self.campaign(sink.port, extra="breaker: {after: 50, failures: 1%, blocks: 1%, "
                                           "throttles: 1%}\n")
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(sink.messages()), N)


if __name__ == "__main__":
    unittest.main()
