"""Delivery control (issue: pool, rate limits, retries, journal, signals) against real servers."""

import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from tests.integration import harness, servers

BODY = "Hello {{name}},\nthis is row {{row}}.\n"


class Campaign:
    """A campaign directory with its list, body, journal and report."""

    def __init__(self, n, relays, extra="", domain="example.com", addresses=None):
        self.dir = tempfile.mkdtemp(prefix="blast-delivery-")
        self.addresses = addresses or [f"user{i}@{domain}" for i in range(1, n + 1)]
        with open(os.path.join(self.dir, "list.csv"), "w", encoding="utf-8") as f:
            f.write("email,name\n")
            for a in self.addresses:
                f.write(f"{a},{a.split('@')[0]}\n")
        with open(os.path.join(self.dir, "body.txt"), "w", encoding="utf-8") as f:
            f.write(BODY)
        text = ("name: delivery\nfrom: \"Tests <tests@acme.example>\"\nsubject: \"Hi {{name}}\"\n"
                "recipients: {path: list.csv}\nbody: {text: body.txt}\n" + extra + "relays:\n")
        for r in relays:
            text += "  - " + "\n    ".join(f"{k}: {v}" for k, v in r.items()) + "\n"
        self.path = os.path.join(self.dir, "campaign.yml")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)
        self.report = os.path.join(self.dir, "report.json")
        self.journal = os.path.join(self.dir, ".blast", "delivery.journal")
        self.procs = []

    def args(self, *extra):
        return [harness.BLAST, "send", "campaign.yml", "--report", self.report, *extra]

    def send(self, *extra, timeout=300, **kw):
        return subprocess.run(self.args(*extra), cwd=self.dir, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, **kw)

    def start(self, *extra, **kw):
        p = subprocess.Popen(self.args(*extra), cwd=self.dir, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        self.procs.append(p)
        return p

    def entries(self):
        return harness.load_report(self.report)["recipients"]

    def by_email(self):
        return {e["email"]: e for e in self.entries()}

    def journal_records(self):
        out = []
        with open(self.journal, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    out.append(json.loads(line.split(" ", 1)[1]))
                except (ValueError, IndexError):
                    pass  # a record torn by the stop: the journal cuts it off when reopened
        return out

    def remove(self):
        # a test that failed half way must not leave a send running behind it
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
        shutil.rmtree(self.dir, ignore_errors=True)


def relay(port, **kw):
    r = {"host": "127.0.0.1", "port": port, "tls": "none", "messages_per_connection": 0}
    r.update(kw)
    return r


def sink_recipients(sink):
    return sink.recipients()


class Pool(unittest.TestCase):
    def campaign(self, *a, **kw):
        c = Campaign(*a, **kw)
        self.addCleanup(c.remove)
        return c

    def test_two_relays_one_stopped_mid_campaign(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        # after 30 messages this relay answers 421 to MAIL, then it is stopped altogether
        scripted = servers.Scripted(servers.Script(close_after=30))
        stopped = []

        def stop_scripted():
            if not stopped:
                scripted.stop()
                stopped.append(True)
        self.addCleanup(stop_scripted)
        c = self.campaign(400, [relay(sink.port, name="sink", connections=2),
                                relay(scripted.port, name="scripted", connections=2)],
                          extra="retry: {attempts: 5, initial: 1s, max: 2s}\n")
        p = c.start("-v")
        deadline = time.monotonic() + 60
        while len(scripted.messages) < 30 and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        stop_scripted()
        out, err = p.communicate(timeout=120)
        self.assertIn(p.returncode, (0, 1), err)  # 1 only with an unknown, checked below
        received = sink_recipients(sink)
        for _, rcpts, _ in scripted.messages:
            for r in rcpts:
                received[r] = received.get(r, 0) + 1
        self.assertEqual(set(received.values()), {1}, "someone got the mail twice")
        # a message whose end of data was on its way to the scripted relay as it was
        # stopped has no reply: unknown, and not resent. The relay may have taken it
        # or not (when the server stopped before reading the final dot, under load),
        # so an unknown one was received at most once; every other was received once
        unknown_rows = set()
        for e in c.entries():
            self.assertIn(e["status"], ("delivered", "unknown"), e)
            if e["status"] == "delivered":
                self.assertIn(e["email"], received, "delivered, but the relays never got it")
            else:
                unknown_rows.add(e["email"])
        self.assertEqual(sorted(set(received) | unknown_rows), sorted(c.addresses))
        self.assertLessEqual(len(unknown_rows), 2, "one a connection to the stopped relay")
        unknown = any(e["status"] == "unknown" for e in c.entries())
        self.assertEqual(p.returncode, 1 if unknown else 0, err)
        relays = {e["relay"] for e in c.entries()}
        self.assertEqual(relays, {"sink", "scripted"})

    def test_weights_share_the_traffic(self):
        a, b = servers.Sink(), servers.Sink()
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        c = self.campaign(400, [relay(a.port, name="a", weight=3, connections=2),
                                relay(b.port, name="b", weight=1, connections=2)])
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        n = len(sink_recipients(a))
        # 300 expected; whichever relay's first session opens first sends alone until the
        # other's does, a head start of a few tens of messages on a loaded machine
        self.assertTrue(260 <= n <= 340, f"relay a took {n} of 400 (weight 3 of 4)")

    def test_retry_after_two_451(self):
        chosen = ["user2@example.com", "user5@example.com", "user7@example.com"]
        server = servers.Scripted(servers.Script(defer_first={a: 2 for a in chosen}))
        self.addCleanup(server.stop)
        c = self.campaign(8, [relay(server.port, connections=1)],
                          extra="retry: {attempts: 5, initial: 1s, max: 2s}\n")
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        entries = c.by_email()
        for a in c.addresses:
            self.assertEqual(entries[a]["status"], "delivered")
            self.assertEqual(entries[a]["attempts"], 3 if a in chosen else 1)
        self.assertEqual(len(server.messages), 8)

    def test_retries_run_out(self):
        server = servers.Scripted(servers.Script(defer_first={"user1@example.com": 99}))
        self.addCleanup(server.stop)
        c = self.campaign(2, [relay(server.port, connections=1)],
                          extra="retry: {attempts: 3, initial: 1s, max: 1s}\n")
        p = c.send()
        self.assertEqual(p.returncode, 1, p.stderr)
        e = c.by_email()["user1@example.com"]
        self.assertEqual((e["status"], e["code"], e["attempts"]), ("failed", 451, 3))
        self.assertIn("still deferred after 3 attempts", e["detail"] or "")

    def test_rate_accuracy_sixty_seconds_at_fifty_a_second(self):
        server = servers.Counting()
        self.addCleanup(server.stop)
        c = self.campaign(3200, [relay(server.port, connections=4)], extra="rate: 50/s\n")
        p = c.send("--deadline", "62s", timeout=200)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        times = sorted(t for t, _ in server.arrivals)
        t0 = times[0]
        in_60 = sum(1 for t in times if t - t0 < 60.0)
        self.assertLessEqual(abs(in_60 - 3000), 60, f"{in_60} messages in 60 s at 50/s")
        # GCRA bounds any one-second window to the rate plus the burst: 50 + 5; five more
        # are allowed for timestamps taken at the server, not at the sender: a stall of the
        # server's thread (or of a journal sync) lets the messages that waited arrive
        # together with the burst the limiter then allows
        worst, j = 0, 0
        for i, t in enumerate(times):
            while times[j] <= t - 1.0:
                j += 1
            worst = max(worst, i - j + 1)
        self.assertLessEqual(worst, 60, f"{worst} messages in one second")
        with open(os.path.join(harness.ROOT, "build", "rate-accuracy.txt"), "w") as f:
            f.write(f"{in_60} messages in the first 60 s at 50/s ({(in_60 - 3000) / 30:.2f}% "
                    f"off); the busiest second held {worst}\n")

    def test_a_relay_that_never_greets_does_not_hold_up_the_end(self):
        # a listening socket that is never accepted: connect succeeds, no greeting comes
        import socket
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        self.addCleanup(silent.close)
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        c = self.campaign(30, [relay(sink.port, name="sink"),
                               relay(silent.getsockname()[1], name="silent", connections=1)])
        started = time.monotonic()
        p = c.send(timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        # the greeting timeout is 5 minutes: the run must not wait for it
        self.assertLess(time.monotonic() - started, 60)
        self.assertEqual(len(sink_recipients(sink)), 30)
        self.assertNotIn("silent", {e["relay"] for e in c.entries()})

    def test_domain_rates_hold_back_one_domain_only(self):
        server = servers.Counting()
        self.addCleanup(server.stop)
        addresses = [f"s{i}@slow.example" for i in range(6)] + \
                    [f"f{i}@fast.example" for i in range(60)]
        c = self.campaign(0, [relay(server.port, connections=2)],
                          extra="domain_rates: {slow.example: 2/s}\n", addresses=addresses)
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        slow = sorted(t for t, r in server.arrivals if r[0].endswith("@slow.example"))
        fast = sorted(t for t, r in server.arrivals if r[0].endswith("@fast.example"))
        self.assertEqual((len(slow), len(fast)), (6, 60))
        self.assertGreaterEqual(slow[-1] - slow[0], 2.0)   # 6 at 2/s: 2.5 s apart at least
        self.assertLess(fast[-1] - fast[0], 1.5)           # the others were not held back


class Journal(unittest.TestCase):
    def campaign(self, *a, **kw):
        c = Campaign(*a, **kw)
        self.addCleanup(c.remove)
        return c

    def test_crash_safety_ten_kills(self):
        server = servers.Counting()
        self.addCleanup(server.stop)
        rng = random.Random(2026)
        unknown_total = killed_in_flight = 0
        for trial in range(10):
            c = self.campaign(2000, [relay(server.port, connections=4)], domain=f"t{trial}.example")
            before = dict(server.received)
            runs = 0
            while True:
                p = c.start()
                runs += 1
                if runs <= 2 and (runs == 1 or rng.random() < 0.5):
                    time.sleep(rng.uniform(0.05, 1.2))
                    if p.poll() is None:
                        p.send_signal(signal.SIGKILL)
                        killed_in_flight += 1
                    p.communicate()
                    continue
                out, err = p.communicate(timeout=300)
                self.assertIn(p.returncode, (0, 1), err)
                break
            got = {a: server.received.get(a, 0) - before.get(a, 0) for a in c.addresses}
            entries = c.by_email()
            for a in c.addresses:
                st = entries[a]["status"]
                if st == "unknown":
                    unknown_total += 1
                    self.assertLessEqual(got[a], 1, f"trial {trial}: {a} got {got[a]} copies")
                else:
                    self.assertEqual(st, "delivered", f"trial {trial}: {a}")
                    self.assertEqual(got[a], 1, f"trial {trial}: {a} got {got[a]} copies")
        # A kill leaves per connection at most the message whose end of data had
        # left and the SMTP_AHEAD + 1 (core/smtp.h: 4 + 1) taken behind it.
        self.assertLessEqual(unknown_total, killed_in_flight * 4 * (1 + 4 + 1))
        with open(os.path.join(harness.ROOT, "build", "crash-test.txt"), "w") as f:
            f.write(f"10 trials x 2000 recipients, {killed_in_flight} runs killed with SIGKILL; "
                    f"{unknown_total} recipients ended unknown, every other one received "
                    f"exactly once\n")

    def test_resume_never_sends_twice_and_refuses_a_changed_list(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        c = self.campaign(20, [relay(sink.port)])
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("(resumed)", p.stderr)
        self.assertEqual(set(sink_recipients(sink).values()), {1})
        self.assertEqual(len(c.entries()), 20)
        with open(os.path.join(c.dir, "list.csv"), "a", encoding="utf-8") as f:
            f.write("late@example.com,late\n")
        p = c.send()
        self.assertEqual(p.returncode, 2)
        self.assertIn("the campaign changed since this journal's last run", p.stderr)
        p = c.send("--force")
        self.assertEqual(p.returncode, 0, p.stderr)
        counts = sink_recipients(sink)
        self.assertEqual(counts.get("late@example.com"), 1)
        self.assertEqual(set(counts.values()), {1})
        p = c.send("--fresh")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(set(sink_recipients(sink).values()), {2})

    def test_unknown_is_not_resent_unless_asked(self):
        server = servers.Scripted(servers.Script(drop_after_dot=True))
        self.addCleanup(server.stop)
        c = self.campaign(1, [relay(server.port, connections=1)])
        p = c.send()
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(c.entries()[0]["status"], "unknown")
        p = c.send()
        self.assertEqual(len(server.messages), 1, "an unknown message was sent again")
        self.assertEqual(c.entries()[0]["status"], "unknown")
        server.handler.script.drop_after_dot = False
        p = c.send("--resend-unknown")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(server.messages), 2)
        self.assertEqual(c.entries()[0]["status"], "delivered")

    def test_lock_keeps_a_second_run_out(self):
        server = servers.Scripted(servers.Script(stall_after_dot=3))
        self.addCleanup(server.stop)
        c = self.campaign(2, [relay(server.port, connections=1)])
        first = c.start()
        # the first run holds the lock once it has written its first "sending" record
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.path.exists(c.journal):
                with open(c.journal, errors="replace") as f:
                    if '"sending"' in f.read():
                        break
            time.sleep(0.05)
        p = c.send()
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, r"another 'blast send' of this campaign is running")
        out, err = first.communicate(timeout=60)
        self.assertEqual(first.returncode, 0, err)

    def test_deadline_leaves_the_rest_for_the_next_run(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        c = self.campaign(40, [relay(sink.port)], extra="rate: 10/s\n")
        p = c.send("--deadline", "2s")
        self.assertEqual(p.returncode, 1, p.stderr)
        statuses = [e["status"] for e in c.entries()]
        sent = statuses.count("delivered")
        # about 20 in 2 s at 10/s (the deadline counts from the start, the set-up too)
        self.assertTrue(5 <= sent <= 30, statuses)
        self.assertEqual(statuses.count("deferred"), 40 - sent)
        self.assertIn("--deadline passed", " ".join(e["detail"] or "" for e in c.entries()))
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(set(sink_recipients(sink).values()), {1})
        self.assertEqual(len(sink_recipients(sink)), 40)

    def test_a_full_disk_stops_sending_before_the_next_end_of_data(self):
        server = servers.Counting()
        self.addCleanup(server.stop)
        c = self.campaign(500, [relay(server.port, connections=2)])

        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (24 * 1024, 24 * 1024))
        p = c.send(preexec_fn=limit)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot write the journal", p.stderr)
        sending = [r for r in c.journal_records() if r.get("t") == "sending"]
        # every message the relay accepted had its "sending" record on disk first
        self.assertGreater(server.messages, 0)
        self.assertLessEqual(server.messages, len(sending))
        self.assertLess(server.messages, 500)


class Signals(unittest.TestCase):
    def campaign(self, *a, **kw):
        c = Campaign(*a, **kw)
        self.addCleanup(c.remove)
        return c

    def test_sigint_drains_then_exits_3_and_a_rerun_finishes(self):
        server = servers.Scripted(servers.Script(stall_after_dot=2))
        self.addCleanup(server.stop)
        c = self.campaign(5, [relay(server.port, connections=1)])
        p = c.start()
        deadline = time.monotonic() + 10
        while not server.handler.script.stall_after_dot or time.monotonic() < deadline:
            if os.path.exists(c.journal) and any(r.get("t") == "sending"
                                                 for r in c.journal_records()):
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 3, err)
        entries = c.entries()
        self.assertEqual(entries[0]["status"], "delivered")  # the one in flight finished
        self.assertIn("interrupted", entries[-1]["detail"])
        self.assertEqual(entries[-1]["status"], "deferred")
        server.handler.script.stall_after_dot = 0
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        rcpts = [r for _, rs, _ in server.messages for r in rs]
        self.assertEqual(sorted(rcpts), sorted(c.addresses))

    def test_second_signal_aborts_at_once(self):
        server = servers.Scripted(servers.Script(stall_after_dot=20))
        self.addCleanup(server.stop)
        c = self.campaign(3, [relay(server.port, connections=1)])
        p = c.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(c.journal) and any(r.get("t") == "sending"
                                                 for r in c.journal_records()):
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
        started = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
        self.assertEqual(p.returncode, 3)
        self.assertLess(time.monotonic() - started, 2.0)
        # the journal is whole: the next run reads it, and does not resend the one in flight
        server.handler.script.stall_after_dot = 0
        p = c.send()
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertEqual(c.entries()[0]["status"], "unknown")
        rcpts = [r for _, rs, _ in server.messages for r in rs]
        self.assertLessEqual(rcpts.count("user1@example.com"), 1)


if __name__ == "__main__":
    unittest.main()
