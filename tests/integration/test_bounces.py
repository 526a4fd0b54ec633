"""`blast bounces`: the bounce mailbox read over IMAP and POP3 (docs/bounces.md).

Real servers on loopback: Dovecot (IMAP, POP3, LMTP, TLS and a password) holds the
bounce mailbox; a private Postfix (BounceMTA) takes blast's mail and relays it to a
next hop that refuses some recipients, so that Postfix itself writes the DSNs and
delivers them, over LMTP, to the mailbox. Complaints, replies and unsubscribe
requests are built with Python's email package.
"""

import base64
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from tests.integration import harness, mailservers
from tests.integration.test_return_path import token_row
from tests.integration.test_smtp import Campaign, plain

SECRET = "throwaway-test-secret-for-bounce-tokens"
ENV_SECRET = "BLAST_TEST_BOUNCE_SECRET"
ENV_PASSWORD = "BLAST_TEST_MAILBOX_PASSWORD"
# The OAuth 2.0 bearer token that Protocols' Dovecot (its introspection endpoint) knows.
BEARER = "throwaway-test-bearer-token-for-the-bounce-mailbox"


def bounces_yaml(dovecot, scheme="imaps", after=None, folder=None, soft=None, name=None,
                 auth=None):
    port = {"imaps": dovecot.imaps_port, "imap": dovecot.imap_port,
            "pop3s": dovecot.pop3s_port, "pop3": dovecot.pop3_port}[scheme]
    text = f"""bounces:
  url: {scheme}://127.0.0.1:{port}/
  username: {dovecot.user}
  password_env: {ENV_PASSWORD}
  ca_file: {dovecot.ca_file}
"""
    if auth:
        text += f"  auth: {auth}\n"
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
    """One Dovecot and one bouncing Postfix for each class."""

    # a bearer token: the class's Dovecot takes XOAUTH2 and OAUTHBEARER with it too
    oauth2_token = None

    @classmethod
    def setUpClass(cls):
        cls.dovecot = mailservers.Dovecot(oauth2_token=cls.oauth2_token)
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
                "blocked1@nowhere.test", "nodomain1@nowhere.test", "greylisted1@nowhere.test",
                "quota1@nowhere.test"]
        c = self.campaign(rows, after="move", folder="Processed")
        p = c.send(env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.dovecot.wait_for(6)
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
            # Postfix gave up on the 451 at once (its queue lifetime is 0 here): a 4.7.1
            # that says greylisted is the receiver's policy, not the recipient's fault
            ("greylisted1@nowhere.test", "policy", "status-x.7-security-policy", "verp",
             "bounce-test", 6),
            ("nodomain1@nowhere.test", "hard", "status-5.1.2-bad-domain", "verp",
             "bounce-test", 5),
            ("quota1@nowhere.test", "soft", "status-x.2.2-or-text-mailbox-full", "verp",
             "bounce-test", 7),
            ("unknown1@nowhere.test", "hard", "status-5.1.x-bad-mailbox", "verp",
             "bounce-test", 2)])
        self.assertEqual(self.dovecot.count("INBOX"), 0)
        self.assertEqual(self.dovecot.count("Processed"), 6)
        self.check_report_shows_the_bounces(c)
        # a second run finds nothing new
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.events(c.db)), 6)
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

    def check_report_shows_the_bounces(self, c):
        """blast report shows which delivered recipients later bounced; a rerun of send
        writes them into the report, which follows the schema."""
        p = harness.run_blast("report", c.report, cwd=c.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^  bounced +6 ", "quota1: Action failed, 4.2.2")
        self.assertIn("hard status-5.1.x-bad-mailbox", p.stdout)
        p = harness.run_blast("report", c.report, "--format", "csv", cwd=c.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [line.split(",") for line in p.stdout.strip().splitlines()]
        self.assertEqual(rows[0][-4:], ["bounce_class", "bounce_rule", "bounce_status",
                                        "bounce_time"])
        by_email = {r[1]: r for r in rows[1:]}
        self.assertEqual(by_email["unknown1@nowhere.test"][2], "bounced")
        self.assertEqual(by_email["unknown1@nowhere.test"][-4:-1],
                         ["hard", "status-5.1.x-bad-mailbox", "5.1.1"])
        self.assertEqual(by_email["ok1@nowhere.test"][2], "delivered")
        p = harness.run_blast("report", c.report, "--format", "json", cwd=c.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        import json
        by_status = json.loads(p.stdout)["by_status"]
        self.assertEqual((by_status["bounced"], by_status["delivered"]), (6, 1))
        p = harness.run_blast("report", c.report, "--no-db", cwd=c.dir)
        self.assertNotRegex(p.stdout, r"(?m)^  bounced ")
        # the next send (nothing left to send) writes the report with what came back
        p = c.send(env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        entries = {e["email"]: e for e in c.entries()}  # checked against the schema
        self.assertEqual(entries["full1@nowhere.test"]["status"], "bounced")
        self.assertEqual(entries["full1@nowhere.test"]["bounce"]["class"], "soft")
        self.assertEqual(entries["blocked1@nowhere.test"]["bounce"]["rule"], "text-policy-block")
        self.assertEqual(entries["ok1@nowhere.test"]["status"], "delivered")
        self.assertNotIn("bounce", entries["ok1@nowhere.test"])


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
        # everyone delivered: the journal read below is the compacted one (packs only)
        with open(os.path.join(c.dir, ".blast", "bounce-test.journal"), encoding="utf-8") as f:
            kinds = {json.loads(line[9:])["t"] for line in f}
        self.assertEqual(kinds, {"run", "pack"})
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

    def test_a_sharded_campaigns_journals_are_all_read(self):
        # send --shard keeps one journal a shard (docs/sharding.md): the bounces of
        # every shard are attributed, by recipient and by Message-ID, to their rows
        c = self.campaign(self.ROWS, return_path=False, after="delete")
        entries = {}
        for i in range(2):
            p = harness.run_blast("send", "campaign.yml", "--shard", f"{i}/2", cwd=c.dir,
                                  env=self.env)
            self.assertEqual(p.returncode, 0, p.stderr)
            report = os.path.join(c.dir, "reports", f"bounce-test.shard-{i}-of-2.json")
            entries.update({e["email"]: e for e in harness.load_report(report)["recipients"]})
        self.assertEqual(sorted(entries), self.ROWS)
        self.assertFalse(os.path.exists(os.path.join(c.dir, ".blast", "bounce-test.journal")))
        d = self.dovecot
        for a in self.ROWS[:3]:
            d.deliver(mailservers.dsn(a, to="tests@acme.example",
                                      original_headers=b"From: news@acme.example\r\n"))
        d.deliver(mailservers.dsn("redacted@nowhere.test", to="tests@acme.example",
                                  original_headers=headers(
                                      "redacted@nowhere.test",
                                      entries["ok4@nowhere.test"]["message_id"])))
        p = self.bounces(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        want = [(a, "hard", "status-5.1.x-bad-mailbox", "recipient", "bounce-test",
                 entries[a]["row"]) for a in self.ROWS[:3]]
        want.append(("ok4@nowhere.test", "hard", "status-5.1.x-bad-mailbox", "message-id",
                     "bounce-test", entries["ok4@nowhere.test"]["row"]))
        self.assertEqual(self.events(c.db), sorted(want))
        self.assertEqual(d.count("INBOX"), 0)

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
        # a message larger than blast reads (25 MiB): an error of its own, left alone
        huge = mailservers.dsn("ok3@nowhere.test", to=senders["ok3@nowhere.test"])
        d.deliver(huge.replace(b"\r\n\r\n", b"\r\n\r\n" + (b"y" * 998 + b"\r\n") * 26500, 1))
        p = self.bounces(c)
        self.assertEqual(p.returncode, 1, p.stderr)  # some messages could not be read
        self.assertIn("larger than 26214400 bytes", p.stderr)
        self.assertIn("not a mail message", p.stderr)
        rows = {e[0] for e in self.events(c.db)}
        self.assertEqual(rows, {"ok1@nowhere.test", "ok2@nowhere.test"},
                         "the good DSNs among the bad ones are recorded")
        self.assertEqual(d.count("INBOX"), 3, "the headerless, the nested and the huge stay")
        # a second run reads them again, finds them recorded as errors, leaves them
        p = self.bounces(c)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertEqual(d.count("INBOX"), 3)

    def test_limit_and_deadline_bound_a_run(self):
        c, entries, senders = self.sent(after="delete")
        self.dovecot.deliver_many([mailservers.dsn(a, to=senders[a]) for a in self.ROWS])
        p = self.bounces(c, "--limit", "3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.events(c.db)), 3)
        self.assertEqual(self.dovecot.count("INBOX"), 1)
        p = self.bounces(c, "--deadline", "1ms")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.events(c.db)), 3, "a passed deadline starts no message")
        p = self.bounces(c, "--deadline", "1m", "--quiet")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "", "--quiet after the campaign file")
        self.assertEqual(len(self.events(c.db)), 4)
        self.assertEqual(self.dovecot.count("INBOX"), 0)


class SideBySide(Mailbox):
    """A send and an intake on the same suppression database at the same time."""

    def test_a_send_and_an_intake_share_the_database(self):
        import subprocess
        from tests.integration import servers
        rows = [f"ok{i}@nowhere.test" for i in range(1, 201)]
        a = self.campaign(rows, after="delete")
        p = a.send(env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        senders = {}
        deadline = time.monotonic() + 60
        while len(senders) < len(rows) and time.monotonic() < deadline:
            senders = {r: f for f, rcpts, _ in self.mta.accepted for r in rcpts}
            time.sleep(0.05)
        self.dovecot.deliver_many([mailservers.dsn(r, to=senders[r]) for r in rows])
        # campaign b: 2,000 recipients to smtp-sink, on a's database
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        b = Campaign([f"user{i}@example.com" for i in range(1, 2001)], plain(sink.port),
                     extra=f"suppression_db: {a.db}\n")
        self.addCleanup(b.remove)
        env = dict(os.environ, **self.env)
        intake = subprocess.Popen([harness.BLAST, "bounces", "campaign.yml"], cwd=a.dir,
                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        send = subprocess.Popen([harness.BLAST, "send", "campaign.yml", "--report", b.report],
                                cwd=b.dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, ierr = intake.communicate(timeout=120)
        _, serr = send.communicate(timeout=120)
        self.assertEqual(intake.returncode, 0, ierr)
        self.assertEqual(send.returncode, 0, serr)
        self.assertNotIn("locked", ierr + serr)
        self.assertEqual(len(self.events(a.db)), 200)
        self.assertEqual(len(self.suppressed(a.db)), 200)
        self.assertEqual([e["status"] for e in b.entries()], ["delivered"] * 2000)


class Protocols(Mailbox):

    oauth2_token = BEARER

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
        self.intake = p
        return c, c.entries()

    def test_xoauth2_with_a_bearer_token(self):
        self.env[ENV_PASSWORD] = BEARER
        asked = dict(self.dovecot.introspection.asked)
        # IMAP with STARTTLS, through the PROXY-protocol front: XOAUTH2 is offered
        # only inside TLS, as the passwords are
        c, entries = self.simple(scheme="imap", after="seen", auth="xoauth2")
        now = self.dovecot.introspection.asked
        self.assertGreater(now["active"], asked["active"], "Dovecot asked about the token")
        self.assertEqual(now["inactive"], asked["inactive"])
        self.assertRegex(self.dovecot.log(200),
                         rf"Login: user=<{self.dovecot.user}>, method=XOAUTH2, .*TLS")
        self.assertNotIn(BEARER, self.intake.stderr + self.intake.stdout)
        flags = self.dovecot.flags("INBOX")
        self.assertEqual(len(flags), 1)
        self.assertIn("\\Seen", list(flags.values())[0])

    def test_xoauth2_with_a_wrong_token_is_exit_4(self):
        c = self.campaign(["ok9@nowhere.test"], auth="xoauth2")
        wrong = "wrong-bearer-token-for-test"
        self.env[ENV_PASSWORD] = wrong
        asked = dict(self.dovecot.introspection.asked)
        p = self.bounces(c)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertEqual(self.dovecot.introspection.asked["inactive"], asked["inactive"] + 1,
                         "Dovecot asked about the token, and the endpoint said inactive")
        sasl = base64.b64encode(
            f"user={self.dovecot.user}\x01auth=Bearer {wrong}\x01\x01".encode()).decode()
        for text in (p.stderr, p.stdout):
            self.assertNotIn(wrong, text)
            self.assertNotIn(sasl, text)

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


class CrashSafety(Mailbox):
    """`blast bounces` killed (SIGKILL) at random moments, then run to the end.

    One campaign of N recipients is sent through the bouncing Postfix, which accepts them
    all: the journal holds every row and the next hop saw every VERP envelope sender. Each
    test delivers one DSN (5.1.1) per recipient, addressed to that recipient's VERP
    address, and runs `blast bounces` up to ROUNDS times, each killed after a random
    delay within the time a whole run over what is left would take (until a run gets to
    the end), then once to the end. After every kill: no message is gone from the server
    or flagged \\Deleted unless its recipient's event is committed; with after: seen, a
    message flagged \\Seen has its event or is in intake_pending (FETCH BODY[] sets
    \\Seen before the commit); no recipient has two events. At the end: one event and
    one suppression a recipient, one intake row a message, nothing pending. The delays
    come from a seeded generator, printed with the counts at the end of the class;
    BLAST_CRASH_SEED=S replays them (where a kill lands still depends on the machine).
    """

    N = 1000
    ROUNDS = 16
    STARTUP, PER_MESSAGE = 0.06, 0.0006   # seconds: a first guess at a run's pace
    NAME = "crash-test"
    counts = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.seed = int(os.environ.get("BLAST_CRASH_SEED") or random.randrange(1 << 32))
            cls.counts = {}
            cls.rows = [f"ok{i}@nowhere.test" for i in range(1, cls.N + 1)]
            cls.base = Campaign(cls.rows, plain(cls.mta.port), extra="")
            path = os.path.join(cls.base.dir, "campaign.yml")
            with open(path, encoding="utf-8") as f:
                cls.yml = f.read().replace("name: smtp-test", f"name: {cls.NAME}")
            with open(path, "w", encoding="utf-8") as f:
                f.write(cls.yml + campaign_extra(cls.dovecot, os.path.join(cls.base.dir, "send.db"),
                                                 unsubscribe=False))
            env = {ENV_SECRET: SECRET, ENV_PASSWORD: cls.dovecot.password}
            p = cls.base.send(env=env)
            if p.returncode != 0:
                raise RuntimeError("blast send: " + p.stderr)
            # the envelope sender of each recipient, as the next hop saw it; its token
            # verifies for this campaign and names the recipient's row
            cls.senders = {}
            deadline = time.monotonic() + 30
            while len(cls.senders) < cls.N and time.monotonic() < deadline:
                for mail_from, rcpts, _ in cls.mta.accepted:
                    m = re.fullmatch(r"bounces\+([a-z2-7]+)@acme\.example", mail_from)
                    row = m and token_row(m.group(1), cls.NAME, SECRET)
                    if row and rcpts == [cls.rows[row - 1]]:
                        cls.senders[rcpts[0]] = mail_from
                time.sleep(0.05)
            if len(cls.senders) != cls.N:
                raise RuntimeError(f"the next hop saw {len(cls.senders)} of {cls.N} messages")
        except BaseException:
            if getattr(cls, "base", None):
                cls.base.remove()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.base.remove()
        super().tearDownClass()
        if cls.counts:
            print(f"\nCrashSafety (seed {cls.seed}; BLAST_CRASH_SEED={cls.seed} replays the "
                  f"delays): " + "; ".join(
                      f"{mode}: {c['messages']} messages, {c['rounds']} runs, {c['kills']} "
                      f"killed ({c['after_commit']} after a commit, {c['deleted_left']} leaving "
                      f"\\Deleted unexpunged, {c['seen_pending']} leaving \\Seen pending), "
                      f"{c['exited']} done before their kill; the last run: "
                      f"{c.get('again', '-')} recorded before"
                      + (f", {c['unexpunged']} left \\Deleted" if "unexpunged" in c else "")
                      for mode, c in cls.counts.items()), file=sys.stderr)

    # -- helpers --

    def mode_campaign(self, mode, **kw):
        """A campaign file beside the sent one (same name, list and journal) with a
        database of its own and the mailbox read as kw say."""
        db = os.path.join(self.base.dir, f"{mode}.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        name = f"{mode}.yml"
        with open(os.path.join(self.base.dir, name), "w", encoding="utf-8") as f:
            f.write(self.yml + campaign_extra(self.dovecot, db, unsubscribe=False, **kw))
        return name, db

    def read_db(self, db):
        """{address: events}, pending UIDs and intake rows, read-only; empty before the
        first run made the tables."""
        if not os.path.exists(db):
            return {}, set(), []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            tables = {t for t, in con.execute("SELECT name FROM sqlite_master")}
            if "event" not in tables:
                return {}, set(), []
            events = {}
            for address, campaign, row, via, klass in con.execute(
                    "SELECT address, campaign, row, via, class FROM event"):
                events.setdefault(address, []).append((campaign, row, via, klass))
            pending = {u for u, in con.execute("SELECT uid FROM intake_pending")}
            intake = con.execute("SELECT digest, uid, result FROM intake").fetchall()
            return events, pending, intake
        finally:
            con.close()

    @staticmethod
    def tail(stderr, n=20):
        """What a run said, but the line for each address it suppressed."""
        if isinstance(stderr, bytes):
            stderr = stderr.decode("utf-8", "replace")
        return "\n".join([line for line in stderr.splitlines()
                          if not line.startswith("blast: suppressed ")][-n:])

    def run_killed(self, mode, scheme, after):
        rng = random.Random(f"{self.seed}-{mode}")
        name, db = self.mode_campaign(mode, scheme=scheme, after=after)
        raws = [mailservers.dsn(r, to=self.senders[r], status="5.1.1") for r in self.rows]
        uids = self.dovecot.deliver_many(raws)
        self.assertEqual(len(set(uids)), self.N)
        rcpt_of = dict(zip(uids, self.rows))
        env = dict(os.environ, **self.env)
        c = self.counts[mode] = {"messages": self.N, "rounds": 0, "kills": 0, "exited": 0,
                                 "after_commit": 0, "deleted_left": 0, "seen_pending": 0}
        events, deleted = {}, set()
        left, per_message = self.N, self.PER_MESSAGE
        for rnd in range(1, self.ROUNDS + 1):
            if left == 0:
                break   # a run got to the end: nothing left to kill it in
            # a moment in the time a whole run over what is left would take
            delay = rng.uniform(0.0, 0.9 * (self.STARTUP + per_message * left))
            where = f"seed {self.seed}, {mode}, round {rnd}, kill after {delay:.3f} s"
            before, before_left = len(events), left
            # stderr to a file: a pipe nobody reads until the kill would stop the run
            # once it has said 64 KB (a line for each address it suppresses)
            with tempfile.TemporaryFile(dir=self.base.dir) as err:
                start = time.monotonic()
                proc = subprocess.Popen([harness.BLAST, "bounces", name],
                                        cwd=self.base.dir, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err)
                try:
                    proc.wait(timeout=delay)
                    c["exited"] += 1
                    took = time.monotonic() - start
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    c["kills"] += 1
                    took = None
                proc.wait(timeout=30)
                err.seek(0)
                err = err.read()
            self.assertIn(proc.returncode, (-signal.SIGKILL, 0), f"{where}: {self.tail(err)}")
            c["rounds"] += 1
            events, pending, _ = self.read_db(db)
            if proc.returncode == -signal.SIGKILL and len(events) > before:
                c["after_commit"] += 1
            twice = {a: e for a, e in events.items() if len(e) != 1}
            self.assertEqual(twice, {}, f"{where}: a recipient with two events")
            flags = self.dovecot.flags("INBOX")
            gone = [u for u in uids if u not in flags or "\\Deleted" in flags[u]]
            lost = [rcpt_of[u] for u in gone if rcpt_of[u] not in events]
            self.assertEqual(lost, [], f"{where}: gone from the server without an event")
            flagged = {u for u, f in flags.items() if "\\Deleted" in f}
            if proc.returncode == -signal.SIGKILL and flagged - deleted:
                c["deleted_left"] += 1
            deleted = flagged
            if after == "seen":
                # FETCH BODY[] sets \Seen before the batch commits: such a message must
                # be one that intake_pending keeps for the next run
                seen = [u for u in uids if u in flags and "\\Seen" in flags[u]
                        and rcpt_of[u] not in events]
                lost = [(u, rcpt_of[u]) for u in seen if str(u) not in pending]
                self.assertEqual(lost, [], f"{where}: \\Seen without an event, not pending")
                if seen:
                    c["seen_pending"] += 1
                left = len({u for u in uids if "\\Seen" not in flags[u]} |
                           {u for u in uids if str(u) in pending})
            elif scheme.startswith("pop3"):
                left = len(flags)   # POP3 deletes at QUIT: a killed run deletes nothing
            else:
                left = len(flags) - len(flagged)
            # this machine's pace, for the next delays: a run that ended (before its
            # kill, or with nothing left at it) took at most that long
            end = took if took is not None else delay if left == 0 else None
            if end is not None and before_left >= 100:
                per_message = max(1e-5, min(per_message if took is None else 1,
                                            (end - self.STARTUP) / before_left))
        p = self.bounces(self.base, files=(name,))
        c["rounds"] += 1
        where = f"seed {self.seed}, {mode}, the last run"
        self.assertEqual(p.returncode, 0, f"{where}: {self.tail(p.stderr)}")
        m = re.search(r"(\d+) recorded before", p.stderr)
        c["again"] = int(m.group(1)) if m else "?"
        events, pending, intake = self.read_db(db)
        self.assertEqual(sorted(events), sorted(self.rows), where)
        self.assertEqual({a: e for a, e in events.items() if len(e) != 1}, {}, where)
        self.assertEqual({a: e[0] for a, e in events.items()},
                         {r: (self.NAME, i, "verp", "hard")
                          for i, r in enumerate(self.rows, 1)}, where)
        self.assertEqual(self.suppressed(db),
                         {r: ("hard", "status-5.1.x-bad-mailbox") for r in self.rows}, where)
        self.assertEqual(len(intake), self.N, where)
        self.assertEqual({r for _, _, r in intake}, {"recorded"}, where)
        self.assertEqual(pending, set(), where)
        return uids

    # -- the three ways of reading --

    def test_imaps_delete(self):
        uids = self.run_killed("imaps-delete", "imaps", "delete")
        left = self.dovecot.flags("INBOX")
        # a run killed between STORE \Deleted and UID EXPUNGE leaves messages flagged
        # \Deleted: recorded, but UID SEARCH UNDELETED skips them and no later run
        # expunges them (counted in the summary)
        self.assertEqual({u: f for u, f in left.items() if "\\Deleted" not in f}, {})
        self.assertLessEqual(set(left), set(uids))
        self.counts["imaps-delete"]["unexpunged"] = len(left)

    def test_imaps_seen(self):
        uids = self.run_killed("imaps-seen", "imaps", "seen")
        flags = self.dovecot.flags("INBOX")
        self.assertEqual(sorted(flags), sorted(uids), "after: seen removes nothing")
        self.assertEqual([u for u, f in flags.items() if "\\Seen" not in f], [])

    def test_pop3s_delete(self):
        self.run_killed("pop3s-delete", "pop3s", "delete")
        self.assertEqual(self.dovecot.count("INBOX"), 0)


if __name__ == "__main__":
    unittest.main()
