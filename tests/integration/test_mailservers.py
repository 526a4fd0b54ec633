"""The bounce intake's mail servers themselves (tests/integration/mailservers.py).

A private Dovecot serves one Maildir over IMAP/POP3 (STARTTLS), IMAPS and POP3S and
refuses passwords outside TLS; a private Postfix turns the next hop's refusals into
real DSNs and delivers them over LMTP into that mailbox. The builders make the other
mail a bounce mailbox receives. All on 127.0.0.1; everything stopped at the end.
"""

import email
import email.policy
import imaplib
import poplib
import smtplib
import ssl
import time
import unittest

from tests.integration import mailservers

SENDER = "bounces+abc@acme.example"


def plain_message(subject, to="bounces@acme.example"):
    return (f"From: someone@example.com\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.com>\r\n\r\n"
            f"Hello.\r\n").encode()


class MailServers(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dovecot = mailservers.Dovecot()
        cls.addClassCleanup(cls.dovecot.stop)
        cls.mta = mailservers.BounceMTA(cls.dovecot)
        cls.addClassCleanup(cls.mta.stop)

    def setUp(self):
        self.dovecot.clear("INBOX")

    # -- Dovecot --

    def test_a_delivered_message_is_listed_over_imaps(self):
        raw = plain_message("over imaps")
        uid = self.dovecot.deliver(raw)
        conn = imaplib.IMAP4_SSL("127.0.0.1", self.dovecot.imaps_port,
                                 ssl_context=self.dovecot.ssl_context(), timeout=10)
        self.addCleanup(conn.logout)
        conn.login(self.dovecot.user, self.dovecot.password)
        typ, data = conn.select("INBOX", readonly=True)
        self.assertEqual((typ, data), ("OK", [b"1"]))
        typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], raw)
        self.assertEqual(self.dovecot.messages(), [raw])
        self.assertEqual(self.dovecot.uids(), [uid])
        self.assertEqual(self.dovecot.flags(), {uid: set()})

    def test_a_delivered_message_is_listed_over_pop3s(self):
        raw = plain_message("over pop3s")
        self.dovecot.deliver(raw)
        conn = poplib.POP3_SSL("127.0.0.1", self.dovecot.pop3s_port,
                               context=self.dovecot.ssl_context(), timeout=10)
        self.addCleanup(conn.quit)
        conn.user(self.dovecot.user)
        conn.pass_(self.dovecot.password)
        self.assertEqual(conn.stat()[0], 1)
        resp, lines, _ = conn.retr(1)
        self.assertTrue(resp.startswith(b"+OK"))
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", raw)

    def test_starttls_on_the_plain_ports(self):
        raw = plain_message("after starttls")
        self.dovecot.deliver(raw)
        imap = imaplib.IMAP4("127.0.0.1", self.dovecot.imap_port, timeout=10)
        self.addCleanup(imap.logout)
        self.assertIn("STARTTLS", imap.capabilities)
        imap.starttls(ssl_context=self.dovecot.ssl_context())
        imap.login(self.dovecot.user, self.dovecot.password)
        imap.select("INBOX", readonly=True)
        typ, data = imap.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(data[0][1], raw)

        pop = poplib.POP3("127.0.0.1", self.dovecot.pop3_port, timeout=10)
        self.addCleanup(pop.quit)
        self.assertIn("STLS", pop.capa())
        pop.stls(context=self.dovecot.ssl_context())
        pop.user(self.dovecot.user)
        pop.pass_(self.dovecot.password)
        self.assertEqual(pop.stat()[0], 1)

    def test_a_password_outside_tls_is_refused(self):
        imap = imaplib.IMAP4("127.0.0.1", self.dovecot.imap_port, timeout=10)
        self.addCleanup(imap.shutdown)
        self.assertIn("LOGINDISABLED", imap.capabilities)
        with self.assertRaisesRegex(imaplib.IMAP4.error, "Plaintext authentication disallowed"):
            imap.login(self.dovecot.user, self.dovecot.password)

        pop = poplib.POP3("127.0.0.1", self.dovecot.pop3_port, timeout=10)
        self.addCleanup(pop.close)
        with self.assertRaisesRegex(poplib.error_proto, "Plaintext authentication disallowed"):
            pop.user(self.dovecot.user)
            pop.pass_(self.dovecot.password)
        self.assertIn("Plaintext authentication disabled", self.dovecot.log(200))

    def test_the_certificate_is_from_the_throwaway_ca_only(self):
        with self.assertRaises(ssl.SSLCertVerificationError):
            imaplib.IMAP4_SSL("127.0.0.1", self.dovecot.imaps_port,
                              ssl_context=ssl.create_default_context(), timeout=10)

    def test_a_wrong_password_is_refused(self):
        conn = imaplib.IMAP4_SSL("127.0.0.1", self.dovecot.imaps_port,
                                 ssl_context=self.dovecot.ssl_context(), timeout=10)
        self.addCleanup(conn.shutdown)
        with self.assertRaises(imaplib.IMAP4.error):
            conn.login(self.dovecot.user, "not-the-password")

    def test_folders_uids_and_flags(self):
        self.dovecot.create_folder("Bounces")
        self.dovecot.create_folder("Bounces")   # again: fine
        first = self.dovecot.deliver(plain_message("one"), "Bounces/Processed")
        second = self.dovecot.deliver(plain_message("two"), "Bounces/Processed",
                                      flags=[r"\Seen", r"\Flagged"])
        self.assertIn("Bounces/Processed", self.dovecot.folders())
        self.assertEqual(self.dovecot.uids("Bounces/Processed"), [first, second])
        self.assertEqual(self.dovecot.flags("Bounces/Processed"),
                         {first: set(), second: {r"\Seen", r"\Flagged"}})
        # reading does not mark a message seen
        self.dovecot.messages("Bounces/Processed")
        self.assertEqual(self.dovecot.flags("Bounces/Processed")[first], set())
        self.assertEqual(self.dovecot.uids("INBOX"), [])

    # -- BounceMTA --

    def test_refusals_come_back_as_dsns_and_a_delivery_does_not(self):
        expected = {"unknown1@nowhere.test": ("5.1.1", "550 5.1.1"),
                    "full1@nowhere.test": ("5.2.2", "552 5.2.2"),
                    "blocked1@nowhere.test": ("5.7.1", "554 5.7.1"),
                    "greylisted1@nowhere.test": ("4.7.1", "451 4.7.1")}
        for rcpt in [*expected, "ok@nowhere.test"]:
            with smtplib.SMTP("127.0.0.1", self.mta.port, timeout=10) as s:
                s.sendmail(SENDER, [rcpt], plain_message("to " + rcpt.split("@")[0], rcpt))
        dsns = self.mta.wait_for(len(expected), timeout=20, settle=1.0)
        self.assertEqual(len(dsns), len(expected), self.mta.log())

        seen = {}
        for raw in dsns:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self.assertEqual(msg.get_content_type(), "multipart/report")
            self.assertEqual(msg.get_param("report-type"), "delivery-status")
            self.assertEqual(msg["Return-Path"], "<>")
            self.assertEqual(msg["Delivered-To"], SENDER)
            self.assertEqual(msg["To"], SENDER)
            self.assertEqual(msg["Auto-Submitted"], "auto-replied")
            per_message, recipients = mailservers.delivery_status(raw)
            self.assertEqual(per_message["reporting-mta"], "dns; mta.blast.test")
            self.assertEqual(per_message["x-postfix-sender"], "rfc822; " + SENDER)
            self.assertEqual(len(recipients), 1)
            r = recipients[0]
            rcpt = r["final-recipient"].split(";", 1)[1].strip()
            self.assertEqual(r["action"], "failed")
            seen[rcpt] = (r["status"], r["diagnostic-code"])
            # the returned message, with its Message-ID, is attached
            self.assertIn(f"Message-ID: <to-{rcpt.split('@')[0]}@example.com>".encode(), raw)
        self.assertEqual(set(seen), set(expected))
        for rcpt, (status, reply) in expected.items():
            self.assertEqual(seen[rcpt][0], status, rcpt)
            self.assertTrue(seen[rcpt][1].startswith("smtp; " + reply), seen[rcpt])
        # Postfix relays ok@ on its own schedule, not before the DSNs: wait for it (bounded)
        deadline = time.monotonic() + 30
        while not self.mta.accepted and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual([(m[0], m[1]) for m in self.mta.accepted],
                         [(SENDER, ["ok@nowhere.test"])])

    def test_any_address_of_the_domain_reaches_the_one_mailbox(self):
        with smtplib.SMTP("127.0.0.1", self.mta.port, timeout=10) as s:
            s.sendmail("someone@example.com", ["postmaster@acme.example"],
                       plain_message("for postmaster", "postmaster@acme.example"))
        got = self.mta.wait_for(1, timeout=20)
        self.assertEqual(len(got), 1, self.mta.log())
        msg = email.message_from_bytes(got[0], policy=email.policy.default)
        self.assertEqual(msg["Delivered-To"], "postmaster@acme.example")
        self.assertEqual(msg["Subject"], "for postmaster")

    # -- builders --

    def test_builders_make_what_they_say_and_survive_the_mailbox(self):
        headers = mailservers.original_headers(to="user@example.com")
        arf = mailservers.arf_report("user@example.com", SENDER, headers)
        made = {
            "arf": arf,
            "auto": mailservers.auto_reply(SENDER, "user@example.com"),
            "xauto": mailservers.vacation_without_header(SENDER, "user@example.com"),
            "precedence": mailservers.vacation_without_header(SENDER, "user@example.com",
                                                              marker="Precedence"),
            "unsubscribe": mailservers.unsubscribe_request("user@example.com",
                                                           "unsubscribe@acme.example"),
            "global": mailservers.global_dsn(),
            "dsn": mailservers.dsn("user@example.com"),
        }
        uids = {k: self.dovecot.deliver(v) for k, v in made.items()}
        back = self.dovecot.messages_by_uid()
        for k, raw in made.items():
            self.assertEqual(back[uids[k]], raw, k)
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self.assertEqual([d for p in msg.walk() for d in p.defects], [], k)

        msg = email.message_from_bytes(arf, policy=email.policy.default)
        self.assertEqual(msg.get_param("report-type"), "feedback-report")
        self.assertEqual([p.get_content_type() for p in msg.iter_parts()],
                         ["text/plain", "message/feedback-report", "text/rfc822-headers"])
        fields = mailservers.feedback_report(arf)
        self.assertEqual((fields["feedback-type"], fields["version"],
                          fields["original-mail-from"], fields["original-rcpt-to"]),
                         ("abuse", "1", f"<{SENDER}>", "<user@example.com>"))
        self.assertIn("user-agent", fields)
        self.assertIn("arrival-date", fields)

        auto = email.message_from_bytes(made["auto"], policy=email.policy.default)
        self.assertEqual(auto["Auto-Submitted"], "auto-replied")
        for k, field, value in [("xauto", "X-Autoreply", "yes"),
                                ("precedence", "Precedence", "auto_reply")]:
            m = email.message_from_bytes(made[k], policy=email.policy.default)
            self.assertIsNone(m["Auto-Submitted"], k)
            self.assertEqual(m[field], value, k)
        unsub = email.message_from_bytes(made["unsubscribe"], policy=email.policy.default)
        self.assertEqual(unsub.get_content().strip(), "unsubscribe")

        g = made["global"]
        self.assertIn("Final-Recipient: utf-8; jörg@bücher.example".encode(), g)
        msg = email.message_from_bytes(g, policy=email.policy.default)
        self.assertEqual([p.get_content_type() for p in msg.iter_parts()],
                         ["text/plain", "message/global-delivery-status",
                          "message/global-headers"])
        _, recipients = mailservers.delivery_status(g)
        self.assertEqual(recipients[0]["final-recipient"], "utf-8; jörg@bücher.example")
        self.assertEqual(recipients[0]["status"], "5.1.1")


if __name__ == "__main__":
    unittest.main()
