"""The report and the operator's view: schema, history, resumed reports, memory,
progress on a terminal and off it, JSON logs. Against smtp-sink and scripted servers."""

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from tests.integration import harness, servers
from tests.integration.test_delivery import Campaign, relay, sink_recipients


def run_on_terminal(args, cwd, timeout=120):
    """Run args with stderr (and stdout) on a pseudo-terminal; return (exit code, output)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return p.returncode, out.decode("utf-8", "replace")


class Report(unittest.TestCase):
    def campaign(self, *a, **kw):
        c = Campaign(*a, **kw)
        self.addCleanup(c.remove)
        return c

    def test_history_lists_every_attempt_with_its_reply(self):
        # two 451s, then accepted: three attempts, each with its step and reply
        server = servers.Scripted(servers.Script(defer_first={"user2@example.com": 2}))
        self.addCleanup(server.stop)
        c = self.campaign(3, [relay(server.port, name="scripted", connections=1)],
                          extra="retry: {attempts: 4, initial: 1s, max: 1s}\n")
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        e = c.by_email()["user2@example.com"]
        self.assertEqual(e["attempts"], 3)
        h = e["history"]
        self.assertEqual([a["status"] for a in h], ["deferred", "deferred", "delivered"])
        self.assertEqual([a["code"] for a in h[:2]], [451, 451])
        self.assertEqual({a["step"] for a in h[:2]}, {"RCPT TO"})
        self.assertEqual(h[2]["step"], "end of data")
        for a in h:
            self.assertEqual((a["relay"], a["host"], a["port"]), ("scripted", "127.0.0.1",
                                                                   server.port))
            self.assertIsNone(a["tls"])
        self.assertLessEqual(h[0]["time"], h[1]["time"])
        self.assertLessEqual(h[1]["time"], h[2]["time"])
        self.assertEqual(c.by_email()["user1@example.com"]["attempts"], 1)

    def test_summary_groups_failures_by_reason(self):
        server = servers.Scripted(servers.Script(rcpt={
            a: f"550 5.1.1 <{a}>: Recipient address rejected"
            for a in ("user1@example.com", "user2@example.com", "user3@example.com")}))
        self.addCleanup(server.stop)
        c = self.campaign(5, [relay(server.port, connections=1)])
        p = c.send()
        self.assertEqual(p.returncode, 1, p.stderr)
        report = harness.load_report(c.report)
        s = report["summary"]
        self.assertEqual(s["by_status"]["failed"], 3)
        self.assertEqual(s["by_status"]["delivered"], 2)
        top = s["top_failures"][0]
        # the addresses in angle brackets are left out: one reason, three recipients
        self.assertEqual((top["status"], top["code"], top["count"]), ("failed", 550, 3))
        self.assertNotIn("user1", top["reason"])
        self.assertEqual(s["messages_this_run"], 2)
        self.assertFalse(s["dry_run"])

    def test_resumed_report_is_the_union_of_its_runs(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        c = self.campaign(60, [relay(sink.port)], extra="rate: 20/s\n")
        # 3 s at 20/s: a deadline of 2 s (counted from the start, the set-up too) cuts it
        p = c.send("--deadline", "2s")
        self.assertEqual(p.returncode, 1, p.stderr)
        first = harness.load_report(c.report)
        done_first = {e["row"]: e for e in first["recipients"] if e["status"] == "delivered"}
        self.assertTrue(0 < len(done_first) < 60)
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        second = harness.load_report(c.report)
        self.assertEqual(len(second["recipients"]), 60)
        self.assertEqual(second["summary"]["by_status"]["delivered"], 60)
        for e in second["recipients"]:
            if e["row"] in done_first:
                # decided by the first run: the entry is the first run's, unchanged
                self.assertEqual(e, done_first[e["row"]])
        self.assertEqual(second["summary"]["messages_this_run"], 60 - len(done_first))
        self.assertEqual(set(sink_recipients(sink).values()), {1})

    def test_report_to_standard_output(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        c = self.campaign(5, [relay(sink.port)])
        p = subprocess.run([harness.BLAST, "send", "campaign.yml", "--report", "-"], cwd=c.dir,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        report = json.loads(p.stdout)  # stdout holds the report and nothing else
        harness.check_report(report)
        self.assertEqual(report["summary"]["by_status"]["delivered"], 5)
        self.assertFalse(os.path.exists(c.report))

    def test_a_large_dry_run_stays_small(self):
        d = tempfile.mkdtemp(prefix="blast-large-")
        self.addCleanup(shutil.rmtree, d, True)
        n = 200000
        with open(os.path.join(d, "list.csv"), "w", encoding="utf-8") as f:
            f.write("email,name\n")
            for i in range(n):
                f.write(f"user{i}@example{i % 50}.com,User {i}\n")
        with open(os.path.join(d, "body.txt"), "w", encoding="utf-8") as f:
            f.write("Hello {{name}},\nyour update.\n")
        with open(os.path.join(d, "c.yml"), "w", encoding="utf-8") as f:
            f.write('name: large\nfrom: "T <t@acme.example>"\nsubject: "Hi {{name}}"\n'
                    "recipients: {path: list.csv}\nbody: {text: body.txt}\n"
                    "relays: [{host: 127.0.0.1, port: 2, tls: none}]\n")
        # measured in a process of its own, whose only child is blast
        probe = ("import resource, subprocess, sys\n"
                 "rc = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL).returncode\n"
                 "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
        p = subprocess.run([sys.executable, "-c", probe, harness.BLAST, "send", "c.yml",
                            "--dry-run", "out", "--report", "r.json", "-q"],
                           cwd=d, capture_output=True, text=True, timeout=600)
        rc, maxrss_kb = map(int, p.stdout.split())
        self.assertEqual(rc, 0, p.stderr)
        # AddressSanitizer's quarantine and shadow memory say nothing about blast's own
        if "ASAN_OPTIONS" not in os.environ:
            self.assertLess(maxrss_kb, 64 * 1024, f"peak RSS {maxrss_kb} kB")
            with open(os.path.join(harness.ROOT, "build", "report-memory.txt"), "w") as f:
                f.write(f"dry run of {n} recipients: peak RSS {maxrss_kb / 1024:.1f} MB\n")
        report = harness.load_report(os.path.join(d, "r.json"))
        self.assertEqual(report["summary"]["by_status"]["rendered"], n)
        self.assertEqual(report["summary"]["messages_this_run"], n)


class Progress(unittest.TestCase):
    def campaign(self, *a, **kw):
        c = Campaign(*a, **kw)
        self.addCleanup(c.remove)
        return c

    def test_bar_on_a_terminal_ends_with_the_totals(self):
        server = servers.Scripted(servers.Script(
            rcpt={"user7@example.com": "550 5.1.1 no such user"}))
        self.addCleanup(server.stop)
        c = self.campaign(300, [relay(server.port, connections=2)], extra="rate: 200/s\n")
        rc, out = run_on_terminal(c.args(), c.dir)
        self.assertEqual(rc, 1, out)
        self.assertIn("\x1b[K", out)
        last = out.split("\r")
        bars = [s for s in last if "/300" in s]
        self.assertTrue(bars, out[-500:])
        final = bars[-1]
        self.assertIn("100% 300/300", final)
        self.assertIn("sent 299", final)
        self.assertIn("failed 1", final)
        self.assertIn("done", final)
        # the summary line comes after the bar, on a line of its own
        self.assertRegex(out, r"\n[^\r]*299 delivered, 0 deferred, 1 failed")

    def test_quiet_on_a_terminal_shows_no_bar(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        c = self.campaign(50, [relay(sink.port)])
        rc, out = run_on_terminal(c.args("--quiet"), c.dir)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("\x1b", out)
        self.assertNotIn("/50", out)

    def test_without_a_terminal_no_escape_codes_and_a_status_line(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        # about 12 s at 5/s: at least one status line (every 10 s)
        c = self.campaign(60, [relay(sink.port)], extra="rate: 5/s\n")
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("\x1b", p.stderr)
        self.assertNotIn("\r", p.stderr)
        lines = [l for l in p.stderr.splitlines() if "progress:" in l]
        self.assertGreaterEqual(len(lines), 1, p.stderr)
        self.assertRegex(lines[0], r"progress: +\d+% \d+/60 sent \d+")

    def test_progress_forced_without_a_terminal(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        c = self.campaign(20, [relay(sink.port)])
        p = c.send("--progress")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("100% 20/20 sent 20", p.stderr)


class Logs(unittest.TestCase):
    def test_json_log_lines(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        c = Campaign(10, [relay(sink.port)])
        self.addCleanup(c.remove)
        p = c.send("--log-format", "json", "-v")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stderr.splitlines()
        self.assertTrue(lines)
        for line in lines:
            o = json.loads(line)
            self.assertEqual(set(o) >= {"time", "level", "message"}, True, o)
            self.assertIn(o["level"], ("error", "warning", "info", "debug", "trace"))
        self.assertTrue(any("10 delivered" in json.loads(l)["message"] for l in lines))

    def test_json_errors_keep_their_place(self):
        d = tempfile.mkdtemp(prefix="blast-logs-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "c.yml"), "w", encoding="utf-8") as f:
            f.write("name: x\nfrom: a@b.example\nsubjec: hi\n")
        p = harness.run_blast("send", "c.yml", "--log-format", "json", cwd=d)
        self.assertEqual(p.returncode, 2)
        errors = [json.loads(l) for l in p.stderr.splitlines()]
        placed = [e for e in errors if e.get("line") == 3]
        self.assertTrue(placed, p.stderr)
        self.assertEqual(placed[0]["level"], "error")
        self.assertTrue(placed[0]["source"].endswith("c.yml"))

    def test_check_speaks_json_too(self):
        path = os.path.join(harness.ROOT, "tests", "fixtures", "invalid", "bad_delimiter",
                            "campaign.yml")
        p = harness.run_blast("check", path, "--log-format", "json")
        self.assertEqual(p.returncode, 2)
        (e,) = [json.loads(l) for l in p.stderr.splitlines()]
        self.assertEqual((e["level"], e["line"], e["column"]), ("error", 6, 14))
        self.assertIn("delimiter", e["message"])

    def test_unknown_log_format(self):
        p = harness.run_blast("send", "c.yml", "--log-format", "xml")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--log-format is text or json", p.stderr)


if __name__ == "__main__":
    unittest.main()
