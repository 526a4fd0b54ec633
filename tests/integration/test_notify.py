"""The notify webhook: `blast send` POSTs the run's summary when it ends.

A small HTTP server runs in a thread of the test on 127.0.0.1 (a port the kernel
picks), over HTTPS with a throwaway CA and certificate made at test time in a temporary
directory (servers.certificates(); no key is ever committed), and answers each request
as the test scripts it: 200, 503, or nothing at all. The mail goes to smtp-sink.
"""

import http.server
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from tests.integration import harness, servers

TOKEN = "Bearer tok3n-integration-5ecret"
QUERY_KEY = "qk-5ecret"
with open(os.path.join(harness.ROOT, "VERSION"), encoding="utf-8") as _f:
    VERSION = _f.read().strip()


class Hook:
    """A webhook receiver on 127.0.0.1: records every POST, answers as scripted.

    answers: one status per request (the last one repeats); "silent" holds the
    request unanswered until the server stops. tls: (cert, key) for HTTPS.
    """

    def __init__(self, answers=(200,), tls=None):
        self.answers = list(answers)
        self.requests = []   # (path, headers as a dict, body bytes)
        self.release = threading.Event()
        self.lock = threading.Lock()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook.lock:
                    hook.requests.append((self.path, dict(self.headers.items()), body))
                    n = len(hook.requests)
                answer = hook.answers[min(n, len(hook.answers)) - 1]
                if answer == "silent":
                    hook.release.wait(60)  # bounded: the test stops the server first
                    return
                self.send_response(answer)
                self.send_header("Content-Length", "2")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme="https"):
        return f"{scheme}://127.0.0.1:{self.port}/hook?key={QUERY_KEY}"

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def posts(self, settle=0.3):
        """The requests so far, after a moment in which a stray one would arrive."""
        time.sleep(settle)
        with self.lock:
            return list(self.requests)


class Campaign:
    """A campaign directory: a list of n addresses, a body, and a notify block."""

    def __init__(self, relay_port, notify, n=5, connections=2):
        self.dir = tempfile.mkdtemp(prefix="blast-notify-")
        self.n = n
        with open(os.path.join(self.dir, "list.csv"), "w", encoding="utf-8") as f:
            f.write("email,name\n")
            for i in range(1, n + 1):
                f.write(f"user{i}@example.com,User {i}\n")
        with open(os.path.join(self.dir, "body.txt"), "w", encoding="utf-8") as f:
            f.write("Hello {{name}}\n")
        self.path = os.path.join(self.dir, "campaign.yml")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write("name: notify-test\n"
                    "from: \"Tests <tests@acme.example>\"\n"
                    "subject: \"Hi {{name}}\"\n"
                    "recipients: {path: list.csv}\n"
                    "body: {text: body.txt}\n"
                    "relays:\n"
                    f"  - {{host: 127.0.0.1, port: {relay_port}, tls: none, "
                    f"connections: {connections}, messages_per_connection: 0}}\n"
                    "notify:\n" + "".join(f"  {line}\n" for line in notify))
        self.report = os.path.join(self.dir, "report.json")
        self.journal = os.path.join(self.dir, ".blast", "notify-test.journal")

    def env(self, token=TOKEN):
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.pop("BLAST_TEST_HOOK_TOKEN", None)
        if token is not None:
            env["BLAST_TEST_HOOK_TOKEN"] = token
        return env

    def args(self, *extra):
        cmd = [harness.BLAST, "send", "campaign.yml", "--report", self.report, *extra]
        if os.environ.get("BLAST_VALGRIND"):
            cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "-q", *cmd]
        return cmd

    def send(self, *extra, token=TOKEN, timeout=120):
        t0 = time.monotonic()
        p = subprocess.run(self.args(*extra), cwd=self.dir, env=self.env(token),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
        p.elapsed = time.monotonic() - t0
        return p

    def load_report(self):
        with open(self.report, encoding="utf-8") as f:
            return json.load(f)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Notify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs_dir = tempfile.mkdtemp(prefix="blast-notify-certs-")
        cls.certs = servers.certificates(cls.certs_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs_dir, ignore_errors=True)

    def sink(self):
        s = servers.Sink()
        self.addCleanup(s.stop)
        return s

    def hook(self, answers=(200,), tls="good"):
        h = Hook(answers, tls=self.certs[tls] if tls else None)
        self.addCleanup(h.stop)
        return h

    def campaign(self, relay_port, hook, *extra, scheme="https", ca=True, **kw):
        notify = [f"url: \"{hook.url(scheme)}\"",
                  "headers: {X-Team: news, X-Run: nightly}",
                  "authorization_env: BLAST_TEST_HOOK_TOKEN"]
        if ca and scheme == "https":
            notify.append(f"ca_file: {self.certs['ca']}")
        c = Campaign(relay_port, notify + list(extra), **kw)
        self.addCleanup(c.remove)
        return c

    def assert_no_secret(self, p):
        for text in (p.stdout, p.stderr):
            self.assertNotIn("tok3n", text)
            self.assertNotIn(QUERY_KEY, text)

    # ---- the payload --------------------------------------------------------------------

    def test_one_post_with_the_summary_headers_and_token(self):
        sink = self.sink()
        hook = self.hook()
        c = self.campaign(sink.port, hook)
        p = c.send("-vv")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_no_secret(p)
        self.assertIn(f"notify: https://127.0.0.1:{hook.port}/hook?*** answered HTTP 200",
                      p.stderr)
        posts = hook.posts()
        self.assertEqual(len(posts), 1, posts)
        path, headers, body = posts[0]
        self.assertEqual(path, f"/hook?key={QUERY_KEY}")
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["User-Agent"], f"blast/{VERSION}")
        self.assertEqual(headers["Authorization"], TOKEN)
        self.assertEqual(headers["X-Team"], "news")
        self.assertEqual(headers["X-Run"], "nightly")
        self.assertNotIn("Expect", headers)

        payload = json.loads(body)
        self.assertEqual(set(payload), {"schema_version", "event", "campaign", "exit_code",
                                        "report", "summary"})
        self.assertEqual(payload["schema_version"], 1)
        self.assertEqual(payload["event"], "campaign.finished")
        self.assertEqual(payload["campaign"], {"name": "notify-test", "file": "campaign.yml"})
        self.assertEqual(payload["exit_code"], 0)
        self.assertEqual(payload["report"], c.report)
        report = c.load_report()
        summary = payload["summary"]
        # the summary is the report's, taken a moment before it was written
        for key in ("total", "by_status", "by_relay", "by_domain", "by_code", "top_failures",
                    "start", "messages_this_run", "dry_run", "test_to"):
            self.assertEqual(summary[key], report["summary"][key], key)
        self.assertEqual(summary["total"], c.n)
        self.assertEqual(summary["by_status"]["delivered"], c.n)
        self.assertEqual(len(sink.messages()), c.n)

    def test_503_twice_then_200_is_three_attempts_and_the_exit_code_stands(self):
        sink = self.sink()
        hook = self.hook([503, 503, 200])
        c = self.campaign(sink.port, hook)
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        posts = hook.posts()
        self.assertEqual(len(posts), 3)
        self.assertEqual(len({body for _, _, body in posts}), 1, "the same payload each time")
        self.assertIn("HTTP 503 (attempt 1 of 4); trying again in 1.0 s", p.stderr)
        self.assertIn("HTTP 503 (attempt 2 of 4); trying again in 2.0 s", p.stderr)
        self.assertNotIn("warning: notify", p.stderr)
        self.assertGreaterEqual(p.elapsed, 3.0, "waits of 1 s and 2 s")
        self.assert_no_secret(p)

    def test_a_webhook_that_never_answers_is_bounded_and_only_a_warning(self):
        sink = self.sink()
        hook = self.hook(["silent"])
        c = self.campaign(sink.port, hook, "timeout: 2s", "retries: 2")
        p = c.send("-vv")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(hook.posts(1.0)), 3)
        # 3 attempts of 2 s and waits of 1 s and 2 s: about 9 s, not a minute
        self.assertLess(p.elapsed, 25, p.stderr)
        self.assertGreaterEqual(p.elapsed, 8.5)
        self.assertRegex(p.stderr, r"blast: warning: notify https://127\.0\.0\.1:\d+/hook\?\*\*\*: "
                                   r".*timed out.* \(3 attempts\); the run itself is unaffected "
                                   r"\(exit code 0\)")
        self.assertEqual(c.load_report()["summary"]["by_status"]["delivered"], c.n)
        self.assert_no_secret(p)

    def test_an_untrusted_certificate_fails_with_a_clear_warning(self):
        sink = self.sink()
        hook = self.hook(tls="unknown_ca")
        c = self.campaign(sink.port, hook)  # trusts the test CA, not the unknown one
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(hook.posts(), [], "no request crosses a TLS handshake that failed")
        self.assertRegex(p.stderr, r"blast: warning: notify https://127\.0\.0\.1:\d+/hook\?\*\*\*: "
                                   r"SSL certificate problem: .*ca_file.* \(1 attempt\)")
        self.assertNotIn("trying again", p.stderr, "a certificate failure is not retried")
        self.assert_no_secret(p)

    def test_verify_false_accepts_the_untrusted_certificate(self):
        sink = self.sink()
        hook = self.hook(tls="unknown_ca")
        c = self.campaign(sink.port, hook, "verify: false", ca=False)
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(hook.posts()), 1)

    # ---- which runs notify --------------------------------------------------------------

    def test_no_relay_exit_4_still_notifies_with_the_journal_summary(self):
        hook = self.hook(tls=None)
        closed = servers.free_port()
        c = self.campaign(closed, hook, scheme="http")
        p = c.send()
        self.assertEqual(p.returncode, 4, p.stderr)
        posts = hook.posts()
        self.assertEqual(len(posts), 1)
        payload = json.loads(posts[0][2])
        self.assertEqual(payload["exit_code"], 4)
        self.assertIsNone(payload["report"], "no session opened: no report written")
        self.assertEqual(payload["summary"]["by_status"]["deferred"], c.n)
        self.assertEqual(payload["summary"]["by_status"]["delivered"], 0)

    def test_a_run_stopped_by_a_signal_notifies_with_exit_code_3(self):
        server = servers.Scripted(servers.Script(stall_after_dot=2))
        self.addCleanup(server.stop)
        hook = self.hook()
        c = self.campaign(server.port, hook, n=4, connections=1)
        proc = subprocess.Popen(c.args(), cwd=c.dir, env=c.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if os.path.exists(c.journal):
                with open(c.journal, encoding="utf-8", errors="replace") as f:
                    if '"sending"' in f.read():
                        break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 3, err)
        posts = hook.posts()
        self.assertEqual(len(posts), 1, err)
        payload = json.loads(posts[0][2])
        self.assertEqual(payload["exit_code"], 3)
        self.assertEqual(payload["report"], c.report)
        self.assertGreaterEqual(payload["summary"]["by_status"]["deferred"], 1)

    def test_dry_runs_and_test_sends_do_not_notify(self):
        sink = self.sink()
        hook = self.hook()
        c = self.campaign(sink.port, hook)
        p = c.send("--dry-run", os.path.join(c.dir, "out"), token=None)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = c.send("--to", "tester@example.com", "--limit", "1", token=None)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(sink.messages()), 1)
        self.assertEqual(hook.posts(), [])

    def test_an_unset_variable_stops_send_before_anything_is_sent(self):
        sink = self.sink()
        hook = self.hook()
        c = self.campaign(sink.port, hook)
        p = c.send(token=None)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stderr,
                         "blast: campaign.yml:11:22: notify: environment variable "
                         "BLAST_TEST_HOOK_TOKEN is not set\n")
        self.assertEqual(sink.messages(), [])
        self.assertEqual(hook.posts(), [])
        # check names it the same way, and shows the webhook with its query masked
        p = subprocess.run([harness.BLAST, "check", "campaign.yml"], cwd=c.dir, env=c.env(None),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("BLAST_TEST_HOOK_TOKEN is not set", p.stderr)
        self.assertIn(f"notify      POST to https://127.0.0.1:{hook.port}/hook?*** when a send "
                      "ends", p.stdout)
        self.assertNotIn(QUERY_KEY, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
