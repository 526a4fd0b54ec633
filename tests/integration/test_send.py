"""`blast send` end to end through a real Postfix relay with STARTTLS and AUTH."""

import json
import os
import re
import shutil
import tempfile
import unittest
import urllib.parse

from tests.integration import harness

relay = None


def setUpModule():
    global relay
    relay = harness.Relay()


def tearDownModule():
    if relay is not None:
        relay.stop()


class SendExample(unittest.TestCase):
    """The example campaign, as shipped, delivered once to each recipient."""

    def setUp(self):
        relay.clear()
        self.dir = tempfile.mkdtemp(prefix="blast-send-")
        self.campaign = harness.copy_example(self.dir, relay)
        self.report = os.path.join(self.dir, "report.json")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_each_recipient_gets_one_right_message(self):
        all_rows = harness.read_csv(os.path.join(self.dir, "campaigns", "recipients.csv"))
        # the example's last two rows: a duplicate (domain case differs) and a suppressed one
        rows, duplicate, suppressed = all_rows[:-2], all_rows[-2], all_rows[-1]
        self.assertEqual(duplicate["email"].lower(), rows[0]["email"])
        p = harness.run_blast("send", self.campaign, "--report", self.report,
                              env={"BLAST_DEMO_PASSWORD": relay.password})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("20 delivered", p.stderr)
        self.assertIn("1 duplicate, 1 suppressed", p.stderr)
        self.assertNotIn(relay.password, p.stderr + p.stdout)

        files = relay.wait_for(len(rows))
        self.assertEqual(len(files), len(rows), relay.log())
        text_tpl = harness.read_template("news.txt")
        html_tpl = harness.read_template("news.html")

        by_rcpt = {}
        for path in files:
            msg = harness.parse(path)
            self.assertEqual(harness.all_defects(msg), [], path)
            rcpt = msg["Delivered-To"]
            self.assertNotIn(rcpt, by_rcpt, f"{rcpt} received the campaign twice")
            by_rcpt[rcpt] = msg

        report = harness.load_report(self.report)
        entries = {e["email"]: e for e in report["recipients"]}
        self.assertEqual(report["summary"]["by_status"]["delivered"], len(rows))
        self.assertEqual(entries[duplicate["email"]]["status"], "duplicate")
        self.assertEqual(entries[suppressed["email"]]["status"], "suppressed")
        self.assertEqual(len(report["recipients"]), len(all_rows))

        for row in rows:
            values = dict(row, campaign="november-news", company="Acme")
            values["help.url"] = "https://acme.example/help"
            local, domain = row["email"].rsplit("@", 1)
            envelope = f"{local}@{domain.encode('idna').decode()}"
            msg = by_rcpt.get(envelope)
            self.assertIsNotNone(msg, f"nothing arrived for {row['email']}")
            to = msg["To"].addresses[0]
            self.assertEqual(to.display_name, row["name"])
            self.assertEqual(to.addr_spec, envelope)
            self.assertEqual(msg["Subject"],
                             f"{row['first_name']}, your November update from {row['city']}")
            self.assertEqual(msg["From"].addresses[0].addr_spec, "news@acme.example")
            # Postfix stores delivered mail with the local LF line ends
            self.assertEqual(msg.get_body(("plain",)).get_content(),
                             harness.render(text_tpl, values))
            self.assertEqual(msg.get_body(("html",)).get_content(),
                             harness.render(html_tpl, values, html=True))
            # lower-case hex digits: SpamAssassin's UNRESOLVED_TEMPLATE scores "%BF"
            quoted = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                            urllib.parse.quote(row["email"], safe=""))
            self.assertIn(f"<https://acme.example/unsubscribe?e={quoted}>",
                          str(msg["List-Unsubscribe"]))
            self.assertEqual(msg["List-Id"], "<november-news.acme.example>")
            self.assertEqual(msg["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
            entry = entries[row["email"]]
            self.assertEqual(entry["status"], "delivered")
            self.assertEqual(entry["code"], 250)
            self.assertEqual(entry["message_id"], msg["Message-ID"])
            received = re.search(r"with ESMTPSA id (\w+)", str(msg["Received"]))
            self.assertIsNotNone(received, "the relay did not record TLS + AUTH")
            self.assertEqual(entry["queue_id"], received.group(1))

    def test_dry_run_connects_to_nothing(self):
        out = os.path.join(self.dir, "out")
        p = harness.run_blast("send", self.campaign, "--dry-run", out, "--report", self.report)
        self.assertEqual(p.returncode, 0, p.stderr)
        emls = sorted(n for n in os.listdir(out) if n.endswith(".eml"))
        self.assertEqual(len(emls), 20)  # 22 rows: a duplicate and a suppressed one skipped
        with open(os.path.join(out, "1.eml"), "rb") as f:
            raw = f.read()
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))
        self.assertEqual(relay.settle(0.5), [])
        report = harness.load_report(self.report)
        self.assertTrue(report["campaign"]["dry_run"])
        self.assertEqual(report["summary"]["by_status"]["rendered"], 20)

    def test_test_send_goes_to_one_mailbox(self):
        p = harness.run_blast("send", self.campaign, "--to", "tester@example.com", "--limit", "3",
                              "--report", self.report,
                              env={"BLAST_DEMO_PASSWORD": relay.password})
        self.assertEqual(p.returncode, 0, p.stderr)
        files = relay.wait_for(3)
        self.assertEqual(len(files), 3)
        for path in files:
            self.assertEqual(harness.parse(path)["Delivered-To"], "tester@example.com")
        report = harness.load_report(self.report)
        self.assertEqual(report["campaign"]["test_to"], "tester@example.com")
        self.assertEqual(report["summary"]["test_to"], "tester@example.com")


class Secrets(unittest.TestCase):
    """The relay's password from a command, and a command that fails."""

    def setUp(self):
        relay.clear()
        self.dir = tempfile.mkdtemp(prefix="blast-secret-")
        self.campaign = harness.copy_example(self.dir, relay)
        self.report = os.path.join(self.dir, "report.json")
        self.secret = os.path.join(self.dir, "secret")
        with open(self.secret, "w") as f:
            f.write(relay.password + "\n")
        os.chmod(self.secret, 0o600)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def use(self, line):
        with open(self.campaign, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("password_env: BLAST_DEMO_PASSWORD", line)
        with open(self.campaign, "w", encoding="utf-8") as f:
            f.write(text)

    def test_password_cmd(self):
        self.use(f"password_cmd: cat {self.secret}")
        p = harness.run_blast("send", self.campaign, "--limit", "2", "--report", self.report,
                              env={"BLAST_DEMO_PASSWORD": ""})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(relay.wait_for(2)), 2)

    def test_password_file(self):
        self.use(f"password_file: {self.secret}")
        p = harness.run_blast("send", self.campaign, "--limit", "1", "--report", self.report)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(relay.wait_for(1)), 1)

    def test_failing_password_cmd(self):
        self.use("password_cmd: echo not-this; exit 3")
        p = harness.run_blast("send", self.campaign, "--report", self.report)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"example\.yml:\d+:\d+: relay 'demo-relay': password_cmd "
                                   r"failed \(exit status 3\)")
        self.assertNotIn("not-this", p.stderr)
        self.assertEqual(relay.settle(), [])


class BadInput(unittest.TestCase):
    """Each bad input: one line naming the place, the documented exit code, nothing sent."""

    def setUp(self):
        relay.clear()
        self.dir = tempfile.mkdtemp(prefix="blast-bad-")
        self.campaign = harness.copy_example(self.dir, relay)
        self.report = os.path.join(self.dir, "report.json")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def edit(self, path, old, new):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new, 1))

    def send(self, password=None):
        return harness.run_blast("send", self.campaign, "--report", self.report,
                                 env={"BLAST_DEMO_PASSWORD": password or relay.password})

    def assertRefused(self, p, code, pattern):
        self.assertEqual(p.returncode, code, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertRegex(lines[0], pattern)
        self.assertFalse(os.path.exists(self.report), "a report was written")
        self.assertEqual(relay.settle(), [], "something was delivered")

    def test_missing_campaign_file(self):
        missing = os.path.join(self.dir, "nope.yml")
        p = harness.run_blast("send", missing, "--report", self.report)
        self.assertRefused(p, 2, r"^blast: .*nope\.yml: cannot open campaign file: No such file")

    def test_yaml_syntax_error(self):
        self.edit(self.campaign, "subject: \"{{first_name}}", "subject: [\"{{first_name}}")
        p = self.send()
        self.assertRefused(p, 2, r"^blast: .*example\.yml:\d+:\d+: YAML syntax error")

    def test_unknown_key(self):
        self.edit(self.campaign, "from:", "form:")
        p = self.send()
        self.assertRefused(p, 2, r"^blast: .*example\.yml:6:1: unknown key 'form' .*did you mean "
                                 r"'from'")

    def test_missing_csv(self):
        os.unlink(os.path.join(self.dir, "campaigns", "recipients.csv"))
        p = self.send()
        self.assertRefused(p, 2, r"^blast: .*example\.yml:\d+:\d+: recipients\.path: .*"
                                 r"recipients\.csv.*No such file")

    def test_csv_without_email_column(self):
        csv = os.path.join(self.dir, "campaigns", "recipients.csv")
        self.edit(csv, "email,first_name", "mail,first_name")
        self.edit(self.campaign, "  email_column: email\n", "")
        p = self.send()
        self.assertRefused(p, 2, r"^blast: .*recipients\.csv:1:1: no 'email' column")

    def test_email_column_named_in_campaign_missing(self):
        self.edit(self.campaign, "email_column: email", "email_column: e_mail")
        p = self.send()
        self.assertRefused(p, 2, r"^blast: .*example\.yml:\d+:\d+: .*has no column 'e_mail'")

    def test_relay_refuses_password(self):
        p = self.send(password="not-the-password")
        self.assertRefused(p, 4, r"^blast: .*example\.yml:\d+:\d+: relay 'demo-relay' .*"
                                 r"authentication refused: 535")
        self.assertNotIn("not-the-password", p.stderr)

    def test_password_variable_unset(self):
        p = harness.run_blast("send", self.campaign, "--report", self.report,
                              env={"BLAST_DEMO_PASSWORD": ""})
        self.assertRefused(p, 2, r"^blast: .*example\.yml:\d+:\d+: relay 'demo-relay': "
                                 r"environment variable BLAST_DEMO_PASSWORD is empty")

    def test_unknown_placeholder(self):
        tpl = os.path.join(self.dir, "templates", "news.txt")
        self.edit(tpl, "Hello {{first_name}}", "Hello {{frist_name}}")
        p = self.send()
        self.assertRefused(p, 2, r"^blast: .*news\.txt:1:7: unknown placeholder "
                                 r"'\{\{frist_name\}\}'.*did you mean 'first_name'")

    def test_wrong_certificate_authority(self):
        other = os.path.join(self.dir, "other-ca.pem")
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", other)
        self.edit(self.campaign, relay.ca_file, other)
        p = self.send()
        self.assertRefused(p, 4, r"^blast: .*relay 'demo-relay' .*certificate verification "
                                 r"failed")

    def test_relay_not_listening(self):
        self.edit(self.campaign, f"port: {relay.port}", "port: 1")
        p = self.send()
        self.assertRefused(p, 4, r"^blast: .*relay 'demo-relay' .*cannot connect")


class Cli(unittest.TestCase):
    def test_help_and_version(self):
        p = harness.run_blast("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: blast", p.stdout)
        p = harness.run_blast("send", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--dry-run", p.stdout)
        p = harness.run_blast("help", "send")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--dry-run", p.stdout)
        p = harness.run_blast("version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^blast \d+\.\d+\.\d+")

    def test_usage_errors_exit_2(self):
        for args in ([], ["frobnicate"], ["send"], ["send", "a.yml", "b.yml"],
                     ["send", "--limit", "zero", "a.yml"], ["send", "--bogus", "a.yml"]):
            p = harness.run_blast(*args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertTrue(p.stderr.strip(), args)


if __name__ == "__main__":
    unittest.main()
