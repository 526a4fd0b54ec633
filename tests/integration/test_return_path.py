"""return_path: every recipient's own envelope sender (docs/campaign.md, "return_path").

blast sends through aiosmtpd on loopback, which records each transaction's MAIL FROM.
Each one must be the template with a token that an independent implementation of
the token (Python's hmac, hashlib and base64, below) verifies for the recipient's row
under the campaign's secret, and no two recipients may share one.
"""

import base64
import hashlib
import hmac
import os
import re
import unittest

from tests.integration import servers
from tests.integration.test_smtp import Campaign, plain, rows

SECRET = "throwaway-test-secret-for-return-path-tokens"
RETURN_PATH = """return_path:
  address: "bounces+{token}@acme.example"
  secret_env: BLAST_TEST_RETURN_PATH_SECRET
"""


def token_row(token, campaign, secret):
    """The row a token names, when it verifies for campaign under secret; else None."""
    raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    if len(raw) != 17 or raw[0] != 1:
        return None
    row = int.from_bytes(raw[1:6], "big")
    tag = hashlib.sha256(campaign.encode()).digest()[:3]
    mac = hmac.new(secret.encode(), b"blast-verp-1\0" + campaign.encode() + b"\0" +
                   row.to_bytes(8, "big"), hashlib.sha256).digest()[:8]
    if not hmac.compare_digest(raw[6:9] + raw[9:], tag + mac):
        return None
    return row


class ReturnPath(unittest.TestCase):

    def campaign(self, n=5, extra=RETURN_PATH):
        server = servers.Scripted()
        self.addCleanup(server.stop)
        c = Campaign(rows(n), plain(server.port), extra=extra)
        self.addCleanup(c.remove)
        return c, server

    def test_every_recipient_has_its_own_verifiable_envelope_sender(self):
        c, server = self.campaign()
        p = c.send(env={"BLAST_TEST_RETURN_PATH_SECRET": SECRET})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(c.statuses(), ["delivered"] * 5)
        self.assertEqual(len(server.messages), 5)
        senders = set()
        for mail_from, rcpts, _ in server.messages:
            m = re.fullmatch(r"bounces\+([a-z2-7]{28})@acme\.example", mail_from)
            self.assertIsNotNone(m, mail_from)
            row = token_row(m.group(1), "smtp-test", SECRET)
            self.assertEqual(rcpts, [f"user{row}@example.com"], mail_from)
            self.assertIsNone(token_row(m.group(1), "smtp-test", SECRET + "x"),
                              "another secret does not verify it")
            senders.add(mail_from)
        self.assertEqual(len(senders), 5)

    def test_without_its_secret_nothing_is_sent(self):
        c, server = self.campaign()
        env = {k: v for k, v in os.environ.items() if k != "BLAST_TEST_RETURN_PATH_SECRET"}
        p = c.send(env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"campaign\.yml:\d+:\d+: return_path: environment variable "
                                   r"BLAST_TEST_RETURN_PATH_SECRET is not set")
        self.assertEqual(server.messages, [])

    def test_a_short_secret_is_refused(self):
        c, server = self.campaign()
        p = c.send(env={"BLAST_TEST_RETURN_PATH_SECRET": "short"})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("return_path: the secret must be at least 16 bytes", p.stderr)
        self.assertNotIn("short", p.stderr.replace("return_path: the secret", ""),
                         "the secret itself is never shown")
        self.assertEqual(server.messages, [])

    def test_envelope_from_and_return_path_together_are_refused(self):
        c, _ = self.campaign(extra=RETURN_PATH + "envelope_from: b@acme.example\n")
        p = c.send(env={"BLAST_TEST_RETURN_PATH_SECRET": SECRET})
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"campaign\.yml:\d+:\d+: 'return_path' gives every recipient")


if __name__ == "__main__":
    unittest.main()
