"""blast send against servers that break the protocol (docs/delivery.md, "What a reply means").

A hand-written server (servers.Raw) answers out of step with the commands, breaks the
AUTH exchange, or resets the connection while a message's final bytes are on their
way. Each test asserts the bytes blast wrote after the fault (nothing: no message
content, no RSET, not even QUIT) and every recipient's outcome in the report.
"""

import unittest

from tests.integration import servers
from tests.integration.test_smtp import Campaign, plain, rows

ENV = b"MAIL FROM:<tests@acme.example>\r\nRCPT TO:<%s>\r\nDATA\r\n"


class OutOfStep(unittest.TestCase):

    def serve(self, n=3, retry="{attempts: 3, initial: 1s}", **kw):
        server = servers.Raw(**kw)
        self.addCleanup(server.stop)
        c = Campaign(rows(n), plain(server.port), retry=retry)
        self.addCleanup(c.remove)
        return c, server

    def test_data_answered_250_sends_nothing_more_and_is_retried_on_a_fresh_session(self):
        c, server = self.serve(faults={0: servers.Fault("DATA", 1, "250 2.0.0 Ok\r\n")})
        p = c.send("-v")
        self.assertEqual(p.returncode, 0, p.stderr)
        server.stop()
        # the first session: its envelope, then nothing at all
        self.assertEqual(server.after(0, b"DATA\r\n"), b"")
        self.assertTrue(server.received(0).endswith(ENV % b"user1@example.com"))
        self.assertGreaterEqual(len(server.conns), 2)
        e = c.entries()
        self.assertEqual([x["status"] for x in e], ["delivered"] * 3)
        first = e[0]["history"][0]
        self.assertEqual(first["status"], "deferred")
        self.assertIsNone(first["code"], "no reply decided it: not charged to the recipient")
        self.assertIn("out of step", first["detail"])
        self.assertIn("DATA answered 250", first["detail"])
        self.assertEqual(e[0]["attempts"], 2)
        self.assertEqual(sorted(r for rs, _ in server.delivered for r in rs),
                         [f"user{i}@example.com" for i in (1, 2, 3)])
        self.assertIn("out of step", p.stderr)

    def test_more_replies_than_commands_leaves_the_end_of_data_unknown(self):
        # DATA of the second transaction answered 354 and then a 250 nobody asked for
        c, server = self.serve(faults={0: servers.Fault("DATA", 2, extra="250 2.0.0 Ok\r\n")})
        p = c.send()
        self.assertEqual(p.returncode, 1, p.stderr)
        server.stop()
        self.assertEqual(server.after(0, b"DATA\r\n", 2), b"")
        e = {x["email"]: x for x in c.entries()}
        self.assertEqual(e["user1@example.com"]["status"], "unknown")
        self.assertIn("more replies than commands", e["user1@example.com"]["detail"])
        self.assertEqual(e["user2@example.com"]["status"], "delivered")
        self.assertEqual(e["user2@example.com"]["attempts"], 2)
        self.assertEqual(e["user3@example.com"]["status"], "delivered")
        got = [r for rs, _ in server.delivered for r in rs]
        self.assertEqual(got.count("user1@example.com"), 1, "received once, and not resent")
        # a later run leaves the unknown one alone
        p = c.send()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual([r for rs, _ in server.delivered for r in rs].count("user1@example.com"), 1)

    def test_relay_that_keeps_going_out_of_step_is_given_up(self):
        c, server = self.serve(n=2, retry="{attempts: 5, initial: 1s}", every_connection=True,
                               faults={0: servers.Fault("DATA", 1, "250 2.0.0 Ok\r\n")})
        p = c.send()
        self.assertEqual(p.returncode, 4, p.stderr)
        server.stop()
        self.assertEqual(server.delivered, [])
        for i in range(len(server.conns)):
            self.assertEqual(server.after(i, b"DATA\r\n"), b"", f"connection {i}")
        # deferred, never failed: nothing said the recipients were bad
        self.assertEqual(c.statuses(), ["deferred", "deferred"])
        self.assertLessEqual(len(server.conns), 12)
        self.assertIn("out of step", p.stderr)

    def test_lock_step_reply_nobody_asked_for_stops_the_body(self):
        c, server = self.serve(n=1, pipelining=False,
                               faults={0: servers.Fault("DATA", 1, extra="250 2.0.0 Ok\r\n")})
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        server.stop()
        self.assertEqual(server.after(0, b"DATA\r\n"), b"")
        e, = c.entries()
        self.assertEqual((e["status"], e["attempts"]), ("delivered", 2))


class AuthBroken(unittest.TestCase):
    """RFC 4954 §4: a challenge that is not base64 is cancelled with '*'."""

    def test_login_challenge_not_base64_is_cancelled_and_the_relay_refused(self):
        server = servers.Raw(auth="LOGIN",
                             faults={0: servers.Fault("AUTH", 1, "334 Username:\r\n")})
        self.addCleanup(server.stop)
        relay = plain(server.port, username="u", password_env="BLAST_TEST_PW", connections=4)
        c = Campaign(rows(3), relay, retry="{attempts: 3, initial: 1s}")
        self.addCleanup(c.remove)
        p = c.send(env={"BLAST_TEST_PW": "hunter2-secret"})
        self.assertEqual(p.returncode, 4, p.stderr)
        server.stop()
        self.assertEqual(len(server.conns), 1, "refused for the run: one session only")
        self.assertEqual(server.after(0, b"AUTH LOGIN\r\n"), b"*\r\n")
        self.assertIn("broke the AUTH exchange", p.stderr)
        self.assertIn("not base64", p.stderr)
        self.assertIn("not used again in this run", p.stderr)
        self.assertNotIn("hunter2", p.stderr)

    def test_plain_answered_334_is_cancelled(self):
        server = servers.Raw(auth="PLAIN", faults={0: servers.Fault("AUTH", 1, "334 \r\n")})
        self.addCleanup(server.stop)
        relay = plain(server.port, username="u", password_env="BLAST_TEST_PW")
        c = Campaign(rows(1), relay)
        self.addCleanup(c.remove)
        p = c.send(env={"BLAST_TEST_PW": "hunter2-secret"})
        self.assertEqual(p.returncode, 4, p.stderr)
        server.stop()
        self.assertEqual(len(server.conns), 1)
        self.assertTrue(server.received(0).endswith(b"\r\n*\r\n"))
        self.assertIn("a 334 after the initial response", p.stderr)


class InDoubt(unittest.TestCase):
    """A write that carries a message's end of data fails: unknown, never deferred."""

    def test_reset_while_the_final_bytes_are_in_flight_is_unknown_and_not_resent(self):
        server = servers.Raw(reset_at_dot={0: 1})
        self.addCleanup(server.stop)
        big = "a line of a long body, so that its last bytes are still on their way\n" * 30000
        c = Campaign(rows(2), plain(server.port), retry="{attempts: 3, initial: 1s}",
                     body="Hello {{name}},\n" + big)
        self.addCleanup(c.remove)
        p = c.send()
        self.assertEqual(p.returncode, 1, p.stderr)
        e = {x["email"]: x for x in c.entries()}
        self.assertEqual(e["user1@example.com"]["status"], "unknown")
        self.assertEqual(e["user1@example.com"]["step"], "end of data")
        self.assertEqual(e["user2@example.com"]["status"], "delivered")
        # not sent again by the next run, only when asked
        p = c.send()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertNotIn("user1@example.com", [r for rs, _ in server.delivered for r in rs])
        p = c.send("--resend-unknown")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("user1@example.com", [r for rs, _ in server.delivered for r in rs])


class RepliesAsTheRfcsSay(unittest.TestCase):

    def test_552_to_rcpt_and_a_full_mailbox_are_retried(self):
        # the first goes again at once on a fresh session; the second after retry.initial
        for fault, step in ((servers.Fault("RCPT", 1, "552 too many recipients\r\n"), "RCPT TO"),
                            (servers.Fault(".", 1, "552 5.2.2 mailbox full\r\n"), "end of data")):
            with self.subTest(step=step):
                server = servers.Raw(faults={0: fault})
                self.addCleanup(server.stop)
                c = Campaign(rows(2), plain(server.port), retry="{attempts: 3, initial: 1s}")
                self.addCleanup(c.remove)
                p = c.send()
                self.assertEqual(p.returncode, 0, p.stderr)
                e = c.entries()
                self.assertEqual([x["status"] for x in e], ["delivered", "delivered"])
                first = e[0]["history"][0]
                self.assertEqual((first["status"], first["code"], first["step"]),
                                 ("deferred", 552, step))
                self.assertEqual(e[0]["attempts"], 2)
                server.stop()
                if step == "RCPT TO":
                    # too many recipients: the next transaction, on a fresh session, at once
                    self.assertGreaterEqual(len(server.conns), 2)
                    self.assertIn(b"QUIT\r\n", server.received(0))
                    self.assertIn(b"user1@example.com", server.received(1))


if __name__ == "__main__":
    unittest.main()
