"""`blast bounces`: the bounce mailbox read over IMAP and POP3 (docs/bounces.md).

Real servers on loopback: Dovecot (IMAP, POP3, LMTP, TLS and a password) holds the
bounce mailbox; a private Postfix (BounceMTA) takes blast's mail and relays it to a
next hop that refuses some recipients, so that Postfix itself writes the DSNs and
delivers them, over LMTP, to the mailbox. Complaints, replies and unsubscribe
requests are built with Python's email package.
"""

import os
import re
import sqlite3
import time
import unittest

from tests.integration import harness, mailservers
from tests.integration.test_smtp import Campaign, plain

SECRET = "throwaway-test-secret-for-bounce-tokens"
ENV_SECRET = "BLAST_TEST_BOUNCE_SECRET"
ENV_PASSWORD = "BLAST_TEST_MAILBOX_PASSWORD"


def bounces_yaml(dovecot, scheme="imaps", after=None, folder=None, soft=None, name=None):
    port = {"imaps": dovecot.imaps_port, "imap": dovecot.imap_port,
            "pop3s": dovecot.pop3s_port, "pop3": dovecot.pop3_port}[scheme]
    text = f"""bounces:
  url: {scheme}://127.0.0.1:{port}/
  username: {dovecot.user}
  password_env: {ENV_PASSWORD}
  ca_file: {dovecot.ca_file}
"""
    if after:
        text += f"  after: {after}\n"
    if folder:
        text += f"  folder: {folder}\n"
    if soft:
        text += f"  soft_bounces: {soft}\n"
    return text


def campaign_extra(dovecot, db, unsubscribe=True, return_path=True, **kw):
    text = f"suppression_db: {db}\n"
    if return_path:
        text += f"""return_path:
  address: "bounces+{{token}}@acme.example"
  secret_env: {ENV_SECRET}
"""
    if unsubscribe:
        text += "list_unsubscribe: {mailto: unsubscribe@acme.example}\n"
    return text + bounces_yaml(dovecot, **kw)


class Mailbox(unittest.TestCase):
    """One Dovecot and one bouncing Postfix for the module."""

    @classmethod
    def setUpClass(cls):
        cls.dovecot = mailservers.Dovecot()
        try:
            cls.mta = mailservers.BounceMTA(cls.dovecot)
        except BaseException:
            cls.dovecot.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.mta.stop()
        cls.dovecot.stop()

    def setUp(self):
        for folder in self.dovecot.folders():
            self.dovecot.clear(folder)
        self.env = {ENV_SECRET: SECRET, ENV_PASSWORD: self.dovecot.password}

    def campaign(self, rows, name="bounce-test", **kw):
        c = Campaign(rows, plain(self.mta.port), extra="")
        self.addCleanup(c.remove)
        db = os.path.join(c.dir, "suppress.db")
        path = os.path.join(c.dir, "campaign.yml")
        with open(path, encoding="utf-8") as f:
            text = f.read().replace("name: smtp-test", f"name: {name}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + campaign_extra(self.dovecot, db, **kw))
        c.db = db
        return c

    def bounces(self, c, *args, files=("campaign.yml",)):
        return harness.run_blast("bounces", *files, *args, cwd=c.dir, env=self.env)

    def suppressed(self, db):
        with sqlite3.connect(db) as con:
            return {a: (k, r) for a, k, r in con.execute(
                "SELECT address, class, rule FROM suppression")}

    def events(self, db):
        with sqlite3.connect(db) as con:
            return sorted(con.execute(
                "SELECT address, class, rule, via, campaign, row FROM event"))


class RealBounces(Mailbox):

    def test_postfix_dsns_are_recorded_and_the_next_campaign_skips_them(self):
        rows = ["ok1@nowhere.test", "unknown1@nowhere.test", "full1@nowhere.test",
                "blocked1@nowhere.test", "nodomain1@nowhere.test"]
        c = self.campaign(rows, after="move", folder="Processed")
        p = c.send(env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.dovecot.wait_for(4)
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.suppressed(c.db), {
            "unknown1@nowhere.test": ("hard", "status-5.1.x-bad-mailbox"),
            "nodomain1@nowhere.test": ("hard", "status-5.1.2-bad-domain")})
        self.assertEqual(self.events(c.db), [
            ("blocked1@nowhere.test", "policy", "text-policy-block", "verp",
             "bounce-test", 4),
            ("full1@nowhere.test", "soft", "status-x.2.2-or-text-mailbox-full", "verp",
             "bounce-test", 3),
            ("nodomain1@nowhere.test", "hard", "status-5.1.2-bad-domain", "verp",
             "bounce-test", 5),
            ("unknown1@nowhere.test", "hard", "status-5.1.x-bad-mailbox", "verp",
             "bounce-test", 2)])
        self.assertEqual(self.dovecot.count("INBOX"), 0)
        self.assertEqual(self.dovecot.count("Processed"), 4)
        # a second run finds nothing new
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.events(c.db)), 4)
        # the next campaign on the same list skips the bounced addresses
        c2 = self.campaign(rows, name="bounce-test-2", after="move", folder="Processed")
        os.replace(c.db, c2.db)
        p = c2.send(env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        statuses = {e["email"]: (e["status"], e["detail"]) for e in c2.entries()}
        self.assertEqual(statuses["unknown1@nowhere.test"][0], "suppressed")
        self.assertIn("in the suppression database: hard", statuses["unknown1@nowhere.test"][1])
        self.assertEqual(statuses["nodomain1@nowhere.test"][0], "suppressed")
        self.assertEqual(statuses["ok1@nowhere.test"][0], "delivered")


def headers(to, message_id, return_path="bounces@acme.example"):
    return (f"Return-Path: <{return_path}>\r\nFrom: news@acme.example\r\nTo: {to}\r\n"
            f"Subject: Hi\r\nMessage-ID: {message_id}\r\n").encode()


class Crafted(Mailbox):
    """Complaints, replies, requests and DSNs of other MTAs, about a campaign sent first."""

    ROWS = ["ok1@nowhere.test", "ok2@nowhere.test", "ok3@nowhere.test", "ok4@nowhere.test"]

    def sent(self, **kw):
        c = self.campaign(self.ROWS, **kw)
        p = c.send(env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        entries = {e["email"]: e for e in c.entries()}
        ids = {e["message_id"] for e in entries.values()}
        senders = {}
        deadline = time.monotonic() + 30
        while len(senders) < len(self.ROWS) and time.monotonic() < deadline:
            # what Postfix relayed to its next hop: this campaign's messages, by Message-ID
            for mail_from, rcpts, data in self.mta.accepted:
                m = re.search(rb"(?im)^Message-ID:\s*(<[^>]+>)", data)
                if m and m.group(1).decode() in ids:
                    for r in rcpts:
                        senders[r] = mail_from
            time.sleep(0.05)
        self.assertEqual(len(senders), len(self.ROWS), "the relay passed every message on")
        return c, entries, senders

    def test_complaint_reply_request_and_global_dsn(self):
        c, entries, senders = self.sent(after="delete")
        d = self.dovecot
        d.deliver(mailservers.arf_report("redacted@isp.example", senders["ok1@nowhere.test"],
                                         headers("redacted@isp.example",
                                                 entries["ok1@nowhere.test"]["message_id"])))
        d.deliver(mailservers.auto_reply(senders["ok2@nowhere.test"], "ok2@nowhere.test",
                                         in_reply_to=entries["ok2@nowhere.test"]["message_id"]))
        d.deliver(mailservers.unsubscribe_request("OK3@nowhere.test", "unsubscribe@acme.example"))
        d.deliver(mailservers.global_dsn("ok4@nowhere.test", to=senders["ok4@nowhere.test"],
                                         status="5.2.1", diagnostic="smtp; 550 5.2.1 disabled"))
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.events(c.db), [
            ("OK3@nowhere.test", "unsubscribe", "mailto-unsubscribe", "from", "bounce-test", 3),
            ("ok1@nowhere.test", "complaint", "arf-complaint", "verp", "bounce-test", 1),
            ("ok2@nowhere.test", "auto-reply", "auto-submitted", "verp", "bounce-test", 2),
            ("ok4@nowhere.test", "hard", "status-5.2.1-mailbox-disabled", "verp",
             "bounce-test", 4)])
        self.assertEqual(self.suppressed(c.db), {
            "ok1@nowhere.test": ("complaint", "arf-complaint"),
            "OK3@nowhere.test": ("unsubscribe", "mailto-unsubscribe"),
            "ok4@nowhere.test": ("hard", "status-5.2.1-mailbox-disabled")})
        self.assertEqual(d.count("INBOX"), 0, "every message recorded is deleted")

    def test_without_return_path_by_final_recipient_or_message_id(self):
        c, entries, _ = self.sent(return_path=False, after="delete")
        d = self.dovecot
        # Final-Recipient only: the returned headers carry no Message-ID
        d.deliver(mailservers.dsn("ok1@nowhere.test", to="tests@acme.example",
                                  original_headers=b"From: news@acme.example\r\n"))
        # Message-ID only: the recipient's address is redacted
        d.deliver(mailservers.dsn("redacted@nowhere.test", to="tests@acme.example",
                                  original_headers=headers(
                                      "redacted@nowhere.test",
                                      entries["ok2@nowhere.test"]["message_id"])))
        # neither: an address the campaign never sent to, and a Message-ID it never made
        d.deliver(mailservers.dsn("stranger@nowhere.test", to="tests@acme.example",
                                  original_headers=headers("stranger@nowhere.test",
                                                           "<nobody@acme.example>")))
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.events(c.db), [
            ("ok1@nowhere.test", "hard", "status-5.1.x-bad-mailbox", "recipient",
             "bounce-test", 1),
            ("ok2@nowhere.test", "hard", "status-5.1.x-bad-mailbox", "message-id",
             "bounce-test", 2)])
        self.assertEqual(d.count("INBOX"), 1, "the message about nobody stays")
        self.assertIn("names no recipient the campaigns sent to", p.stderr)

    def test_a_forged_or_altered_token_changes_nothing(self):
        c, entries, senders = self.sent(after="delete")
        real = senders["ok1@nowhere.test"]
        local, domain = real.split("@")
        token = local.split("+", 1)[1]
        altered = token[:-1] + ("a" if token[-1] != "a" else "b")
        forged = "bounces+" + "a" * 28 + "@acme.example"
        for to in (f"bounces+{altered}@{domain}", forged):
            self.dovecot.deliver(mailservers.dsn("ok1@nowhere.test", to=to))
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.events(c.db), [])
        self.assertEqual(self.suppressed(c.db), {})
        self.assertEqual(self.dovecot.count("INBOX"), 2)
        self.assertEqual(p.stderr.count("does not verify"), 2, p.stderr)

    def test_soft_bounces_suppress_after_the_count(self):
        c, entries, senders = self.sent(after="delete", soft="{count: 2, window: 7d}")
        to = senders["ok1@nowhere.test"]
        self.dovecot.deliver(mailservers.dsn("ok1@nowhere.test", to=to, status="4.2.2",
                                             action="delayed",
                                             diagnostic="smtp; 452 4.2.2 Mailbox full"))
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.suppressed(c.db), {})
        self.dovecot.deliver(mailservers.dsn("ok1@nowhere.test", to=to, status="4.2.2",
                                             action="delayed",
                                             diagnostic="smtp; 452 4.2.2 Mailbox full"))
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.suppressed(c.db), {
            "ok1@nowhere.test": ("soft", "status-x.2.2-or-text-mailbox-full")})

    def test_hostile_messages_are_errors_of_their_own(self):
        c, entries, senders = self.sent(after="delete")
        d = self.dovecot
        d.deliver(b"no header at all, just words\r\n")
        nested = b"From: MAILER-DAEMON@x.example\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
        for i in range(2000):
            nested += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        d.deliver(nested)
        d.deliver(mailservers.dsn("ok1@nowhere.test", to=senders["ok1@nowhere.test"],
                                  diagnostic="smtp; 550 5.1.1 \x00\x01 bad \xff bytes"
                                  .encode("latin-1").decode("latin-1")))
        d.deliver(mailservers.dsn("ok2@nowhere.test", to=senders["ok2@nowhere.test"]))
        p = self.bounces(c)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        rows = {e[0] for e in self.events(c.db)}
        self.assertIn("ok2@nowhere.test", rows, "the good DSN after the bad ones is recorded")
        self.assertLessEqual(d.count("INBOX"), 2)


class Protocols(Mailbox):

    def test_pop3s_deletes_what_it_recorded(self):
        c, entries = self.simple(scheme="pop3s")
        self.assertEqual(self.dovecot.count("INBOX"), 0)

    def test_pop3_with_starttls(self):
        c, entries = self.simple(scheme="pop3")
        self.assertEqual(self.dovecot.count("INBOX"), 0)

    def test_imap_with_starttls_flags_seen(self):
        c, entries = self.simple(scheme="imap", after="seen")
        flags = self.dovecot.flags("INBOX")
        self.assertEqual(len(flags), 1)
        self.assertIn("\\Seen", list(flags.values())[0])
        # a second run reads nothing: the message is \Seen
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("0 listed", p.stderr)

    def simple(self, **kw):
        c = self.campaign(["unknown7@nowhere.test"], **kw)
        p = c.send(env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.dovecot.wait_for(1)
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.suppressed(c.db), {
            "unknown7@nowhere.test": ("hard", "status-5.1.x-bad-mailbox")})
        return c, c.entries()

    def test_a_wrong_password_is_exit_4_and_never_shown(self):
        c = self.campaign(["ok9@nowhere.test"])
        self.env[ENV_PASSWORD] = "wrong-password-for-test"
        p = self.bounces(c)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertNotIn("wrong-password-for-test", p.stderr)

    def test_an_unknown_certificate_authority_is_refused(self):
        c = self.campaign(["ok9@nowhere.test"])
        path = os.path.join(c.dir, "campaign.yml")
        with open(path, encoding="utf-8") as f:
            text = f.read().replace(f"ca_file: {self.dovecot.ca_file}\n", "")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        p = self.bounces(c)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertRegex(p.stderr, r"certificate|SSL")


if __name__ == "__main__":
    unittest.main()
