"""Shared limits (docs/sharding.md, "Limits"): the shards of one campaign keep its rates
in one Redis, so that together they never exceed them and a shard with more to send
uses what the others leave.

A private redis-server on a free loopback port (no persistence: a restart comes back
empty), four shards run at once against the counting SMTP server, which records when
each message arrived. The campaign's rate is 200/s: its burst is 20, so no one-second
window may hold more than 220 grants. The grants are read where they happen, in Redis
(MONITOR shows each SET the script makes, with the server's time), and the arrivals at
the server are held to the same bound give or take what delivery adds: a burst's
messages leave within a few round trips of their grants (a pipelined session takes up
to five ahead), so a second at the server may hold a few messages of the next; and
the server stamps arrivals on a Python thread that a loaded machine may stall for tens
of milliseconds, after which the messages that waited arrive together.
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from tests.integration import harness, servers
from tests.integration.test_smtp import Campaign, plain

RATE, BURST = 200, 20
SINK_JITTER = 12  # 6% of the rate: see above (the grants themselves are held to the bound)
SHARDS = 4
CONNECTIONS = 2  # per shard
# a message granted before Redis went away may still arrive: the pool asks Redis when
# the session takes the message, and a pipelined session takes up to five ahead
# (SMTP_AHEAD + 1) before the server has the first
IN_FLIGHT = SHARDS * CONNECTIONS * 5


def shard_of(address, n):
    """docs/sharding.md: the first 8 bytes of SHA-256 of the address, lower-cased."""
    return int.from_bytes(hashlib.sha256(address.lower().encode()).digest()[:8], "big") % n


def skewed(counts, domain="example.com"):
    """Addresses such that shard i of len(counts) has counts[i] of them."""
    want, out, i = list(counts), [], 0
    while any(want):
        a = f"user{i}@{domain}"
        s = shard_of(a, len(counts))
        if want[s] > 0:
            want[s] -= 1
            out.append(a)
        i += 1
    return out


def busiest_second(times):
    """The most arrivals in any window of one second (sliding)."""
    times = sorted(times)
    worst, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


class Redis:
    """redis-server on 127.0.0.1, its files in a private directory, nothing saved."""

    def __init__(self, password=None):
        self.port = servers.free_port()
        self.dir = tempfile.mkdtemp(prefix="blast-redis-")
        self.password = password
        self.proc = None
        self.start()

    def start(self):
        cmd = ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
               "--dir", self.dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--logfile", os.path.join(self.dir, "redis.log")]
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        servers.wait_port(self.port)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def keys(self):
        cmd = ["/usr/bin/redis-cli", "-p", str(self.port), "--no-auth-warning"]
        if self.password:
            cmd += ["-a", self.password]
        p = subprocess.run(cmd + ["--scan"], capture_output=True, text=True, timeout=10)
        return sorted(p.stdout.split())

    def stop(self):
        servers.terminate(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


class Monitor:
    """When the script counted a message (granted it): redis-cli MONITOR's time of each
    SET of the campaign's global key, in seconds of the Redis server's clock."""

    SET = re.compile(r'^(\d+\.\d+) \[\d+ lua\] "SET" "blast:\{[^}]*\}:global"')

    def __init__(self, redis):
        self.times = []
        cmd = ["/usr/bin/redis-cli", "-p", str(redis.port), "--no-auth-warning"]
        if redis.password:
            cmd += ["-a", redis.password]
        self.proc = subprocess.Popen(cmd + ["monitor"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("OK"):
                self.ready.set()
            m = self.SET.match(line)
            if m:
                self.times.append(float(m.group(1)))
        self.ready.set()

    def stop(self):
        """The grants seen (the monitor ends when Redis does, or here)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()
        self.thread.join(5)
        self.proc.stdout.close()
        return self.times


class SharedLimits(unittest.TestCase):

    def setUp(self):
        self.server = servers.Counting()
        self.addCleanup(self.server.stop)
        self.redis = Redis(password="unit-redis-password")
        self.addCleanup(self.redis.stop)

    def campaign(self, rows, url=None, more=""):
        c = Campaign(rows, plain(self.server.port, connections=CONNECTIONS),
                     extra=f"rate: {RATE}/s\n"
                           f"limits: {{shared: \"{url or self.redis.url}\", "
                           f"password_env: BLAST_TEST_REDIS{more}}}\n")
        self.addCleanup(c.remove)
        return c

    def env(self, **more):
        return {**os.environ, "BLAST_TEST_REDIS": self.redis.password, **more}

    def start_shards(self, c, env=None):
        procs = []
        for i in range(SHARDS):
            procs.append(subprocess.Popen(
                [harness.BLAST, "send", "campaign.yml", "--shard", f"{i}/{SHARDS}", "-v"],
                cwd=c.dir, env=env or self.env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        return procs

    def finish(self, procs, timeout=60):
        out = []
        for p in procs:
            try:
                _, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                raise
            out.append((p.returncode, err))
        return out

    def arrivals(self):
        with self.server.lock:
            return [t for t, _ in self.server.arrivals]

    def assert_each_once(self, rows):
        with self.server.lock:
            received = dict(self.server.received)
        self.assertEqual(len(received), len(rows))
        self.assertEqual(set(received), set(rows))
        twice = {a: n for a, n in received.items() if n != 1}
        self.assertEqual(twice, {}, "received more than once")

    def test_four_shards_share_the_rate(self):
        # skewed: shard 0 has half the list; at 1/4 of the rate it alone would take 12 s
        rows = skewed([600, 200, 200, 200])
        c = self.campaign(rows)
        monitor = Monitor(self.redis)
        results = self.finish(self.start_shards(c))
        grants = monitor.stop()
        for i, (rc, err) in enumerate(results):
            self.assertEqual(rc, 0, f"shard {i}: {err}")
            self.assertIn("rates shared through redis://", err)
        self.assert_each_once(rows)
        times = sorted(self.arrivals())
        worst, worst_grants = busiest_second(times), busiest_second(grants)
        span = times[-1] - times[0]
        print(f"\nshared 200/s, 4 shards, 1,200 messages: {span:.2f} s; busiest second: "
              f"{worst_grants} grants in Redis, {worst} arrivals at the server")
        self.assertEqual(len(grants), len(rows), "one grant a message")
        self.assertLessEqual(worst_grants, RATE + BURST, f"{worst_grants} grants in one second")
        self.assertLessEqual(worst, RATE + BURST + SINK_JITTER, f"{worst} arrivals in one second")
        # the whole rate, shared: (1,200 - burst) / 200 = 5.9 s; not 1/4 each (12 s for
        # shard 0), nor each shard the whole rate (its windows would hold 800)
        self.assertGreater(span, 5.4)
        self.assertLess(span, 9.0)
        # the keys: the campaign's name and the hash of its rates, expiring once idle
        keys = self.redis.keys()
        self.assertEqual(len(keys), 1, keys)
        self.assertRegex(keys[0], r"^blast:\{smtp-test:[0-9a-f]{12}\}:global$")

    def test_four_shards_share_a_providers_pace(self):
        # a domain on Google's MX hosts (a real DNS server on loopback), google's pace 40/s;
        # skewed: shard 0 has 150 of its 200 recipients. Kept in each shard at 1/4 (10/s),
        # shard 0 alone would take 15 s; shared in Redis, all of them take 200 / 40 = 5 s,
        # and no second holds more than the pace and its burst
        if not os.path.exists(servers.Dnsmasq.BINARY):
            self.skipTest("dnsmasq (Debian's dnsmasq-base) is not installed")
        dns = servers.Dnsmasq("--local=/test/", "--mx-host=alpha.test,aspmx.l.google.com,10")
        self.addCleanup(dns.stop)
        pace = 40
        rows = skewed([150, 20, 15, 15], domain="alpha.test")
        c = self.campaign(rows)
        with open(os.path.join(c.dir, "campaign.yml"), "a", encoding="utf-8") as f:
            f.write(f"providers: {{google: {{rate: {pace}/s}}}}\ndns: {{timeout: 3s}}\n")
        results = self.finish(self.start_shards(c, self.env(BLAST_DNS_SERVERS=dns.servers)))
        for i, (rc, err) in enumerate(results):
            self.assertEqual(rc, 0, f"shard {i}: {err}")
            self.assertIn("alpha.test is google's (40/s)", err, "its pace whole, not 1/4")
        self.assert_each_once(rows)
        times = sorted(self.arrivals())
        span, worst = times[-1] - times[0], busiest_second(times)
        print(f"\ngoogle's pace 40/s shared by 4 shards, 200 messages (150 in one shard): "
              f"{span:.2f} s; busiest second: {worst} arrivals", flush=True)
        burst = pace // 10
        self.assertLessEqual(worst, pace + burst + SINK_JITTER, f"{worst} arrivals in one second")
        self.assertGreater(span, (len(rows) - burst) / pace * 0.85)
        self.assertLess(span, 11.0, "one shard kept a quarter of the pace")  # 15 s if so
        keys = self.redis.keys()
        self.assertIn(f"provider:google:{pace}", " ".join(keys), keys)

    def test_sending_pauses_while_redis_is_gone(self):
        rows = skewed([300, 300, 300, 300])
        c = self.campaign(rows)
        monitors = [Monitor(self.redis)]
        procs = self.start_shards(c)
        deadline = time.monotonic() + 20
        while len(self.arrivals()) < 400 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertGreaterEqual(len(self.arrivals()), 400, "the shards did not start")
        killed = time.monotonic()
        self.redis.kill()
        time.sleep(2.0)
        back = time.monotonic()
        self.redis.start()  # empty: nothing was saved
        monitors.append(Monitor(self.redis))
        results = self.finish(procs)
        grants = monitors[0].stop() + monitors[1].stop()
        for i, (rc, err) in enumerate(results):
            self.assertEqual(rc, 0, f"shard {i}: {err}")
            # said once, not once a message or an attempt
            self.assertEqual(err.count("warning: shared limits:"), 1, err)
            self.assertEqual(err.count("is back after"), 1, err)
        self.assert_each_once(rows)
        times = sorted(self.arrivals())
        during = [t for t in times if killed <= t < back]
        late = [t for t in during if t >= killed + 1.0]
        worst, worst_grants = busiest_second(times), busiest_second(grants)
        worst_after = busiest_second([t for t in times if t >= back])
        print(f"\nRedis gone for 2 s: {len(during)} arrivals while it was down "
              f"({len(late)} after 1 s); busiest second: {worst_grants} grants in Redis, "
              f"{worst} arrivals at the server ({worst_after} after it was back)")
        self.assertLessEqual(len(during), IN_FLIGHT, "only messages granted before it went")
        self.assertEqual(late, [], "nothing goes without a grant")
        self.assertGreaterEqual(len(grants), len(rows))
        self.assertLessEqual(worst_grants, RATE + BURST, f"{worst_grants} grants in one second")
        self.assertLessEqual(worst, RATE + BURST + SINK_JITTER, f"{worst} arrivals in one second")
        # the rest went once it was back, at the rate
        self.assertGreater(len([t for t in times if t >= back]), 600)

    def test_a_long_outage_ends_the_run_and_the_next_run_resumes(self):
        rows = [f"user{i}@example.com" for i in range(400)]
        c = self.campaign(rows, more=", max_outage: 1s")
        p = subprocess.Popen([harness.BLAST, "send", "campaign.yml"], cwd=c.dir, env=self.env(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while len(self.arrivals()) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.redis.kill()
        (rc, err), = self.finish([p], timeout=30)
        self.assertEqual(rc, 1, err)
        self.assertIn("could not be used for 1 s: the run stops", err)
        entries = harness.load_report(os.path.join(c.dir, "reports", "smtp-test.json"))
        by_status = {}
        for e in entries["recipients"]:
            by_status.setdefault(e["status"], []).append(e)
        self.assertEqual(set(by_status), {"delivered", "deferred"})
        self.assertEqual(len(by_status["delivered"]), len(self.arrivals()))
        self.assertIn("the shared limits' Redis (redis://", by_status["deferred"][0]["detail"])
        # Redis back: the next run sends the rest, nobody twice
        self.redis.start()
        p = harness.run_blast("send", "campaign.yml", cwd=c.dir, env=self.env(), timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_each_once(rows)

    def test_redis_unreachable_at_start(self):
        rows = skewed([5, 5, 5, 5])
        dead = f"redis://127.0.0.1:{servers.free_port()}/0"
        c = self.campaign(rows, url=dead)
        p = harness.run_blast("send", "campaign.yml", "--shard", "0/4", cwd=c.dir,
                              env={"BLAST_TEST_REDIS": self.redis.password}, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"campaign.yml:14:18: 'limits': the shared limits' Redis at {dead} cannot "
                      "be used: ", p.stderr)
        self.assertNotIn(self.redis.password, p.stderr)
        self.assertEqual(self.server.messages, 0, "nothing sent")
        self.assertFalse(os.path.exists(os.path.join(c.dir, ".blast",
                                                     "smtp-test.shard-0-of-4.journal")))
        # a password Redis refuses: the same, and the password is never shown
        c = self.campaign(rows)
        p = harness.run_blast("send", "campaign.yml", cwd=c.dir,
                              env={"BLAST_TEST_REDIS": "not-the-password"}, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("the password was refused", p.stderr)
        self.assertNotIn("not-the-password", p.stderr)
        self.assertEqual(self.server.messages, 0, "nothing sent")
        # check --connect reaches it and says where the limits are kept
        p = harness.run_blast("check", "campaign.yml", "--connect", cwd=c.dir,
                              env={"BLAST_TEST_REDIS": self.redis.password}, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"limits +shared through redis://127\.0\.0\.1:\d+/0, password "
                                   r"from password_env: keys blast:\{smtp-test:[0-9a-f]{12}\}:\*")
        self.assertIn("PING: PONG", p.stdout)


if __name__ == "__main__":
    unittest.main()
