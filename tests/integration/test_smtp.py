"""The SMTP engine against real servers on loopback (docs/architecture.md, docs/testing.md).

Each test writes a small campaign, sends it with blast to one server, and checks
the report (every recipient's status, code, step) and what the server received.
"""

import json
import os
import re
import shutil
import tempfile
import unittest

from tests.integration import harness, servers

BODY = "Hello {{name}},\n.a line with a leading dot\nbye\n"


class Campaign:
    """A campaign directory: list, body and campaign file for one relay."""

    def __init__(self, rows, relay, extra="", body=BODY, retry="{attempts: 1}"):
        self.dir = tempfile.mkdtemp(prefix="blast-smtp-")
        with open(os.path.join(self.dir, "list.csv"), "w", encoding="utf-8") as f:
            f.write("email,name\n")
            for r in rows:
                f.write(f"{r},{r.split('@')[0]}\n")
        with open(os.path.join(self.dir, "body.txt"), "w", encoding="utf-8") as f:
            f.write(body)
        relay_yaml = "".join(f"    {k}: {v}\n" for k, v in relay.items())
        with open(os.path.join(self.dir, "campaign.yml"), "w", encoding="utf-8") as f:
            f.write(f"""name: smtp-test
from: "Tests <tests@acme.example>"
subject: "Hi {{{{name}}}}"
recipients: {{path: list.csv}}
body: {{text: body.txt}}
retry: {retry}
relays:
  - host: 127.0.0.1
{relay_yaml}{extra}""")
        self.report = os.path.join(self.dir, "report.json")

    def send(self, *args, env=None):
        p = harness.run_blast("send", "campaign.yml", "--report", self.report, *args,
                              cwd=self.dir, env=env)
        self.out = p
        return p

    def entries(self):
        return harness.load_report(self.report)["recipients"]

    def statuses(self):
        return [e["status"] for e in self.entries()]

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def rows(n, domain="example.com"):
    return [f"user{i}@{domain}" for i in range(1, n + 1)]


def plain(port, **kw):
    # one connection, so that the order of messages and each session's figures are known
    relay = {"port": port, "tls": "none", "messages_per_connection": 0, "connections": 1}
    relay.update(kw)
    return relay


def stats(stderr):
    m = re.findall(r"session done: (\d+) messages, (\d+) writes, (\d+) round trips", stderr)
    return [tuple(map(int, x)) for x in m]


class WithSink(unittest.TestCase):
    """Postfix's smtp-sink: pipelining, refusals, dropped connections."""

    def run_sink(self, sink_args, n=5, retry="{attempts: 1}", **relay):
        sink = servers.Sink(*sink_args)
        self.addCleanup(sink.stop)
        c = Campaign(rows(n), plain(sink.port, **relay), retry=retry)
        self.addCleanup(c.remove)
        c.send("-v")
        return c, sink

    def test_pipelined_delivery(self):
        c, sink = self.run_sink([], n=200)
        self.assertEqual(c.out.returncode, 0, c.out.stderr)
        self.assertEqual(c.statuses(), ["delivered"] * 200)
        self.assertEqual(len(sink.messages()), 200)
        (messages, writes, trips), = stats(c.out.stderr)
        self.assertEqual(messages, 200)
        self.assertLessEqual(writes, 202)   # one write a message, and the first envelope
        self.assertLessEqual(trips, 202)

    def test_lock_step_without_pipelining(self):
        c, sink = self.run_sink(["-p"], n=20)
        self.assertEqual(c.out.returncode, 0, c.out.stderr)
        self.assertEqual(c.statuses(), ["delivered"] * 20)
        (messages, writes, trips), = stats(c.out.stderr)
        # MAIL, RCPT, DATA and the body: four writes and four waits a message
        self.assertEqual(writes, 4 * 20)
        self.assertEqual(trips, 4 * 20)

    def test_rcpt_refused_permanently(self):
        c, sink = self.run_sink(["-f", "RCPT"])
        self.assertEqual(c.out.returncode, 1, c.out.stderr)
        for e in c.entries():
            self.assertEqual((e["status"], e["code"], e["step"]), ("failed", 500, "RCPT TO"))
            self.assertEqual(e["enhanced_code"], "5.3.0")
        self.assertEqual(sink.messages(), [])

    def test_rcpt_refused_temporarily(self):
        # one attempt allowed: still refused for now after it, so failed with that reply
        c, sink = self.run_sink(["-r", "RCPT"])
        self.assertEqual(c.out.returncode, 1, c.out.stderr)
        for e in c.entries():
            self.assertEqual((e["status"], e["code"], e["step"]), ("failed", 450, "RCPT TO"))
            self.assertEqual(e["attempts"], 1)

    def test_mail_refused(self):
        c, sink = self.run_sink(["-f", "MAIL"])
        self.assertEqual(c.out.returncode, 1)
        for e in c.entries():
            self.assertEqual((e["status"], e["code"], e["step"]), ("failed", 500, "MAIL FROM"))

    def test_data_refused(self):
        c, sink = self.run_sink(["-f", "DATA"])
        self.assertEqual(c.out.returncode, 1)
        for e in c.entries():
            self.assertEqual((e["status"], e["code"], e["step"]), ("failed", 500, "DATA"))

    def test_end_of_data_refused(self):
        c, sink = self.run_sink(["-r", "."])
        self.assertEqual(c.out.returncode, 1)
        for e in c.entries():
            self.assertEqual((e["status"], e["code"], e["step"]),
                             ("failed", 450, "end of data"))

    def test_disconnect_after_end_of_data_is_unknown(self):
        c, sink = self.run_sink(["-q", "."], n=3)
        self.assertNotEqual(c.out.returncode, 0)
        statuses = c.statuses()
        self.assertEqual(statuses[0], "unknown")
        # an unknown message is never sent again
        self.assertEqual(c.entries()[0]["attempts"], 1)
        self.assertNotIn("delivered", statuses)

    def test_disconnect_after_data_is_deferred_and_retried(self):
        # a lost connection is retried at once; a relay that drops every session is given up
        c, sink = self.run_sink(["-q", "DATA"], n=3, retry="{attempts: 5}")
        self.assertEqual(c.out.returncode, 4, c.out.stderr)
        e = c.entries()[0]
        self.assertEqual(e["status"], "deferred")
        self.assertGreaterEqual(e["attempts"], 2)
        self.assertIn("closed the connection", e["detail"])
        self.assertEqual(sink.messages(), [])

    def test_421_defers_reconnects_and_retries(self):
        # a 421 is about the session, not the recipient: it is not charged to the
        # recipients' attempts; the relay that keeps answering it is given up, and
        # the recipients stay deferred for the next run (no relay usable: exit 4)
        c, sink = self.run_sink(["-Q", "MAIL"], n=3, retry="{attempts: 2, initial: 1s}")
        self.assertEqual(c.out.returncode, 4, c.out.stderr)
        entries = c.entries()
        self.assertEqual({e["status"] for e in entries}, {"deferred"})
        self.assertTrue(any(e["attempts"] > 0 for e in entries))
        for e in entries:
            if e["attempts"] > 0:
                self.assertEqual(e["code"], 421)
                self.assertEqual({a["code"] for a in e["history"]}, {421})
            else:  # the relay was given up before its turn came
                self.assertIn("no relay could be used", e["detail"])
        self.assertIn("asked to slow down (421", c.out.stderr)
        self.assertIn("keeps answering 421", c.out.stderr)

    def test_messages_per_connection(self):
        c, sink = self.run_sink([], n=25, messages_per_connection=10)
        self.assertEqual(c.out.returncode, 0, c.out.stderr)
        self.assertEqual([s[0] for s in stats(c.out.stderr)], [10, 10, 5])
        self.assertEqual(len(sink.messages()), 25)


class Pipelining(unittest.TestCase):
    """Shown, not assumed: the server counts its turns."""

    def test_thousand_messages_at_most_1_1_round_trips_each(self):
        server = servers.Counting()
        self.addCleanup(server.stop)
        c = Campaign(rows(1000), plain(server.port))
        self.addCleanup(c.remove)
        p = c.send("-v")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(server.messages, 1000)
        # greeting, EHLO, the first envelope and QUIT are turns of their own
        per_message = (server.turns - 4) / 1000
        self.assertLessEqual(per_message, 1.1, f"{server.turns} turns")
        (messages, writes, trips), = stats(p.stderr)
        self.assertLessEqual(trips / messages, 1.1)


class Scripted(unittest.TestCase):
    """aiosmtpd with faults (no PIPELINING: the lock-step path)."""

    def serve(self, script, n=3, relay=None, extra="", retry="{attempts: 1}", **kw):
        server = servers.Scripted(script, **kw)
        self.addCleanup(server.stop)
        c = Campaign(rows(n), relay or plain(server.port), extra, retry=retry)
        self.addCleanup(c.remove)
        return c, server

    def test_421_after_three_messages(self):
        c, server = self.serve(servers.Script(close_after=3), n=8)
        p = c.send()
        self.assertEqual(p.returncode, 1, p.stderr)
        entries = c.entries()
        statuses = [e["status"] for e in entries]
        self.assertEqual(statuses[:3], ["delivered"] * 3)
        # the relay closes every session after three: the rest stay deferred with its 421
        self.assertEqual((entries[3]["status"], entries[3]["code"]), ("deferred", 421))
        delivered = [e["email"] for e in entries if e["status"] == "delivered"]
        received = [rcpt for _, rcpts, _ in server.messages for rcpt in rcpts]
        self.assertEqual(sorted(delivered), sorted(received))
        self.assertEqual(len(received), len(set(received)))

    def test_one_refused_one_deferred_one_delivered(self):
        script = servers.Script(rcpt={"user1@example.com": "550 5.1.1 no such user",
                                      "user2@example.com": "450 4.2.1 mailbox busy"})
        c, server = self.serve(script, n=3)
        p = c.send()
        self.assertEqual(p.returncode, 1)
        got = [(e["status"], e["code"], e["enhanced_code"], e["reply"]) for e in c.entries()]
        self.assertEqual(got, [("failed", 550, "5.1.1", "no such user"),
                               ("failed", 450, "4.2.1", "mailbox busy"),
                               ("delivered", 250, "2.0.0", "OK queued as Q1")])
        self.assertEqual(c.entries()[2]["queue_id"], "Q1")

    def test_drop_in_the_middle_of_the_body_then_retry(self):
        # a body bigger than the socket buffers, so the client sees the connection go
        big = "line of a long message body, to be cut in the middle\n" * 80000
        server = servers.Scripted(servers.Script(drop_mid_body=1))
        self.addCleanup(server.stop)
        c = Campaign(rows(2), plain(server.port), body=BODY + big, retry="{attempts: 3}")
        self.addCleanup(c.remove)
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        e = c.entries()
        self.assertEqual([x["status"] for x in e], ["delivered", "delivered"])
        self.assertEqual(e[0]["attempts"], 2)
        self.assertEqual(len(server.messages), 2)

    def test_drop_after_end_of_data_is_unknown_and_not_resent(self):
        c, server = self.serve(servers.Script(drop_after_dot=True), n=1)
        p = c.send()
        self.assertNotEqual(p.returncode, 0)
        e, = c.entries()
        self.assertEqual((e["status"], e["step"], e["attempts"]), ("unknown", "end of data", 1))
        self.assertEqual(len(server.messages), 1)

    def test_stall_past_the_timeout(self):
        c, server = self.serve(servers.Script(stall_after_dot=6), n=1,
                               relay=None)
        c.remove()
        server2 = servers.Scripted(servers.Script(stall_after_dot=6))
        self.addCleanup(server2.stop)
        c = Campaign(rows(1), plain(server2.port, timeouts="{end_of_data: 2s}"))
        self.addCleanup(c.remove)
        p = c.send()
        self.assertNotEqual(p.returncode, 0)
        e, = c.entries()
        self.assertEqual(e["status"], "unknown")
        self.assertIn("timed out", e["detail"])

    def test_huge_multiline_reply(self):
        reply = "\r\n".join(["250-" + "x" * 70] * 2000 + ["250 OK"])
        c, server = self.serve(servers.Script(mail_reply=reply), n=2, retry="{attempts: 5}")
        p = c.send()
        self.assertEqual(p.returncode, 4, p.stderr)
        e = c.entries()[0]
        self.assertEqual(e["status"], "deferred")
        self.assertIn("reply longer than", e["detail"])

    def test_garbage_instead_of_a_reply(self):
        c, server = self.serve(servers.Script(mail_reply="HELLO THERE"), n=2,
                               retry="{attempts: 5}")
        p = c.send()
        self.assertEqual(p.returncode, 4, p.stderr)
        e = c.entries()[0]
        self.assertEqual(e["status"], "deferred")
        self.assertIn("malformed reply line 'HELLO THERE'", e["detail"])

    def test_smtputf8_needed_but_not_offered(self):
        server = servers.Scripted()
        self.addCleanup(server.stop)
        c = Campaign(["ñandú@example.com", "ok@example.com"], plain(server.port))
        self.addCleanup(c.remove)
        p = c.send()
        self.assertEqual(p.returncode, 1)
        e = c.entries()
        self.assertEqual(e[0]["status"], "failed")
        self.assertIn("SMTPUTF8", e[0]["detail"])
        self.assertEqual(e[1]["status"], "delivered")


class Tls(unittest.TestCase):
    """Certificates checked before any password leaves."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="blast-tls-")
        cls.certs = servers.certificates(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def attempt(self, kind, **relay_extra):
        server = servers.Scripted(tls=self.certs[kind], password="pw-for-tests")
        self.addCleanup(server.stop)
        relay = {"port": server.port, "tls": "starttls", "ca_file": self.certs["ca"],
                 "username": "u", "password_env": "BLAST_TEST_PW"}
        relay.update(relay_extra)
        c = Campaign(rows(2), relay)
        self.addCleanup(c.remove)
        p = c.send(env={"BLAST_TEST_PW": "pw-for-tests"})
        return p, server

    def test_good_certificate(self):
        p, server = self.attempt("good")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(server.messages), 2)

    def test_refused_certificates_send_no_password(self):
        for kind, reason in (("wrong_name", "IP address mismatch"),
                             ("expired", "certificate has expired"),
                             ("unknown_ca", "unable to get local issuer certificate")):
            with self.subTest(kind=kind):
                p, server = self.attempt(kind)
                self.assertEqual(p.returncode, 4, p.stderr)
                self.assertRegex(p.stderr, "certificate verification failed for 127.0.0.1: "
                                           f"({reason})")
                self.assertEqual(server.handler.tried_auth, [])
                self.assertEqual(server.messages, [])

    def test_implicit_tls(self):
        # aiosmtpd only knows STARTTLS as TLS: with implicit TLS it must not insist on it
        server = servers.Scripted(tls=self.certs["good"], password="pw-for-tests",
                                  require_tls=False, implicit=True)
        self.addCleanup(server.stop)
        relay = {"port": server.port, "tls": "tls", "ca_file": self.certs["ca"],
                 "username": "u", "password_env": "BLAST_TEST_PW"}
        c = Campaign(rows(2), relay)
        self.addCleanup(c.remove)
        p = c.send("-v", env={"BLAST_TEST_PW": "pw-for-tests"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(server.messages), 2)
        self.assertIn("ready (TLS TLSv1.3, ", p.stderr)

    def test_starttls_required_but_not_offered(self):
        server = servers.Scripted(password="pw-for-tests", require_tls=False)
        self.addCleanup(server.stop)
        relay = {"port": server.port, "tls": "starttls", "username": "u",
                 "password_env": "BLAST_TEST_PW"}
        c = Campaign(rows(1), relay)
        self.addCleanup(c.remove)
        p = c.send(env={"BLAST_TEST_PW": "pw-for-tests"})
        self.assertEqual(p.returncode, 4)
        self.assertIn("does not offer STARTTLS", p.stderr)
        self.assertEqual(server.handler.tried_auth, [])

    def test_pins(self):
        pin = servers.spki_sha256(self.certs["good"][0])
        p, server = self.attempt("good", pin_sha256=pin)
        self.assertEqual(p.returncode, 0, p.stderr)
        p, server = self.attempt("good", pin_sha256="00" * 32)
        self.assertEqual(p.returncode, 4)
        self.assertIn("does not match the pinned public key", p.stderr)
        self.assertEqual(server.handler.tried_auth, [])

    def test_xoauth2(self):
        server = servers.Scripted(tls=self.certs["good"], password="unused",
                                  xoauth2_token="ya29.token-for-tests")
        self.addCleanup(server.stop)
        for token, code in (("ya29.token-for-tests", 0), ("expired-token", 4)):
            with self.subTest(token=token):
                relay = {"port": server.port, "ca_file": self.certs["ca"], "username": "u",
                         "password_env": "BLAST_TEST_PW", "auth": "xoauth2"}
                c = Campaign(rows(1), relay)
                self.addCleanup(c.remove)
                p = c.send("-vv", env={"BLAST_TEST_PW": token})
                self.assertEqual(p.returncode, code, p.stderr)
                self.assertIn("C: AUTH XOAUTH2 ********", p.stderr)
                self.assertNotIn(token, p.stderr)
        self.assertEqual(len(server.messages), 1)

    def test_wrong_password_exit_4(self):
        server = servers.Scripted(tls=self.certs["good"], password="right")
        self.addCleanup(server.stop)
        relay = {"port": server.port, "ca_file": self.certs["ca"], "username": "u",
                 "password_env": "BLAST_TEST_PW"}
        c = Campaign(rows(1), relay)
        self.addCleanup(c.remove)
        p = c.send(env={"BLAST_TEST_PW": "wrong"})
        self.assertEqual(p.returncode, 4)
        self.assertIn("authentication refused: 535", p.stderr)
        self.assertEqual(len(server.handler.tried_auth), 1)  # never tried again


class WithPostfix(unittest.TestCase):
    """CHUNKING, DSN, SIZE and check --connect against the real relay."""

    @classmethod
    def setUpClass(cls):
        cls.relay = harness.Relay()

    @classmethod
    def tearDownClass(cls):
        cls.relay.stop()

    def setUp(self):
        self.relay.clear()

    def campaign(self, n, extra="", relay_extra=None, body=BODY):
        relay = {"port": self.relay.port, "ca_file": self.relay.ca_file,
                 "username": self.relay.user, "password_env": "BLAST_TEST_PW",
                 "messages_per_connection": 0}
        relay.update(relay_extra or {})
        c = Campaign(rows(n), relay, extra, body=body)
        self.addCleanup(c.remove)
        return c

    def env(self):
        return {"BLAST_TEST_PW": self.relay.password}

    def test_chunking(self):
        c = self.campaign(30, extra="chunking: true\n")
        p = c.send("-vv", env=self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("C: BDAT", p.stderr)
        self.assertNotIn("C: DATA", p.stderr)
        files = self.relay.wait_for(30)
        self.assertEqual(len(files), 30)
        for f in files:
            msg = harness.parse(f)
            self.assertEqual(msg.get_content(), "Hello " + msg["To"].addresses[0].username +
                             ",\n.a line with a leading dot\nbye\n")
        (messages, writes, trips), = stats(p.stderr)
        self.assertLess(trips, messages)

    def test_dsn_parameters(self):
        c = self.campaign(2, extra="dsn: {notify: [failure, delay], ret: hdrs}\n")
        p = c.send("-vv", env=self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"C: MAIL FROM:<tests@acme.example> SIZE=\d+ RET=HDRS "
                                   r"ENVID=smtp-test\.1")
        self.assertIn("C: RCPT TO:<user1@example.com> NOTIFY=FAILURE,DELAY "
                      "ORCPT=rfc822;user1@example.com", p.stderr)
        self.assertEqual(len(self.relay.wait_for(2)), 2)

    def test_message_over_the_size_limit_is_not_offered(self):
        big = os.path.join(tempfile.mkdtemp(prefix="blast-big-"), "big.bin")
        self.addCleanup(shutil.rmtree, os.path.dirname(big), True)
        with open(big, "wb") as f:
            f.write(os.urandom(11 * 1024 * 1024))
        c = self.campaign(1, extra=f"attachments: [{big}]\n")
        p = c.send("-vv", env=self.env())
        self.assertEqual(p.returncode, 1, p.stderr)
        e, = c.entries()
        self.assertEqual(e["status"], "failed")
        self.assertIn("exceeds the server's SIZE limit (10240000 bytes)", e["detail"])
        self.assertNotIn("C: MAIL", p.stderr)

    def test_each_auth_mechanism(self):
        for mech, shown in (("plain", "C: AUTH PLAIN ********"), ("login", "C: AUTH LOGIN"),
                            ("cram-md5", "C: AUTH CRAM-MD5"), ("auto", "C: AUTH CRAM-MD5")):
            with self.subTest(auth=mech):
                c = self.campaign(1, relay_extra={"auth": mech})
                p = c.send("-vv", env=self.env())
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn(shown, p.stderr)
                self.assertNotIn(self.relay.password, p.stderr)

    def test_transcript_masks_auth(self):
        c = self.campaign(1)
        p = c.send("-vv", env=self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("C: AUTH CRAM-MD5", p.stderr)
        self.assertIn("C: ********", p.stderr)
        self.assertNotIn(self.relay.password, p.stderr)

    def test_check_connect(self):
        c = self.campaign(1)
        p = harness.run_blast("check", "campaign.yml", "--connect", cwd=c.dir, env=self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"connected to 127\.0\.0\.1 port \d+, TLSv1\.[23]")
        self.assertIn("PIPELINING", p.stdout)
        self.assertIn("CHUNKING", p.stdout)
        self.assertIn("CN=localhost", p.stdout)
        self.assertIn("authenticated", p.stdout)
        self.assertEqual(self.relay.settle(0.5), [])


if __name__ == "__main__":
    unittest.main()
