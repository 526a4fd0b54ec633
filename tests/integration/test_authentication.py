"""The sending domain's authentication checked from DNS (docs/authentication.md):
`blast check --dns` against a real DNS server on loopback (dnsmasq with --txt-record,
--ptr-record and --host-record), never a mocked resolver. DKIM published and matching,
another key, a revoked key; DMARC present, p=none, missing, misaligned; SPF pass through
include and redirect, fail, softfail, too many lookups, a loop; PTR matching and not; a
resolver that never answers; the JSON lines; `preflight: dns` in send."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.integration import harness, servers

RELAY_OK = "127.0.0.1"      # relay.test, PTR relay.test
RELAY_NOPTR = "127.0.0.3"   # bare.test, no PTR
RELAY_BADPTR = "127.0.0.4"  # other.test, PTR elsewhere.test (127.0.0.9)


def txt(name, value):
    """A --txt-record option, the value cut into strings of at most 255 characters."""
    parts = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    # no shell between: each comma-separated text is one string, quotes would be data
    return f"--txt-record={name}," + ",".join(parts)


def chain(n):
    """n domains each including the next: more than 10 lookups when n > 10."""
    out = []
    for i in range(n):
        nxt = f"include:c{i + 1}.test" if i + 1 < n else "ip4:127.0.0.0/8"
        out.append(txt(f"c{i}.test", f"v=spf1 {nxt} -all"))
    return out


class Authentication(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(servers.Dnsmasq.BINARY):
            raise unittest.SkipTest("dnsmasq (Debian's dnsmasq-base) is not installed")
        cls.dir = d = tempfile.mkdtemp(prefix="blast-auth-")
        # throwaway keys, made here
        for name in ("key.pem", "other.pem"):
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                            "rsa_keygen_bits:2048", "-out", os.path.join(d, name)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(os.path.join(d, name), 0o600)
        with open(os.path.join(d, "list.csv"), "w") as f:
            f.write("email\nann@example.com\n")
        with open(os.path.join(d, "body.txt"), "w") as f:
            f.write("Hello\n")
        cls.key = cls.record_of("key.pem")
        cls.other = cls.record_of("other.pem")
        revoked = re.sub(r"p=[^;]*$", "p=", cls.key)
        cls.silent = servers.SilentUDP()
        cls.dns = servers.Dnsmasq(
            "--local=/test/", "--local=/127.in-addr.arpa/",
            # the relays' hosts and their reverse names
            # (a host record makes the PTR too; --address makes none)
            f"--host-record=relay.test,{RELAY_OK}", f"--address=/bare.test/{RELAY_NOPTR}",
            f"--address=/other.test/{RELAY_BADPTR}", "--address=/elsewhere.test/127.0.0.9",
            f"--ptr-record=4.0.0.127.in-addr.arpa,elsewhere.test",
            # the relay operator's SPF record, included by its customers
            txt("_spf.relay.test", "v=spf1 ip4:127.0.0.0/8 -all"),
            # good.test: everything right
            txt("s1._domainkey.good.test", cls.key),
            txt("_dmarc.good.test", "v=DMARC1; p=quarantine; rua=mailto:dmarc@good.test"),
            txt("good.test", "v=spf1 include:_spf.relay.test -all"),
            # its bounce domain (return_path) covers the relay too; another's does not
            txt("bounce.good.test", "v=spf1 a:relay.test -all"),
            # redirect.test: SPF through redirect, DMARC p=none
            txt("s1._domainkey.redirect.test", cls.key),
            txt("_dmarc.redirect.test", "v=DMARC1; p=none"),
            txt("redirect.test", "v=spf1 redirect=_spf.relay.test"),
            # otherkey.test: another key published; SPF that fails the relay
            txt("s1._domainkey.otherkey.test", cls.other),
            txt("_dmarc.otherkey.test", "v=DMARC1; p=reject"),
            txt("otherkey.test", "v=spf1 ip4:192.0.2.1 -all"),
            # revoked.test: p= empty; SPF softfail
            txt("s1._domainkey.revoked.test", revoked),
            txt("_dmarc.revoked.test", "v=DMARC1; p=reject"),
            txt("revoked.test", "v=spf1 ip4:192.0.2.1 ~all"),
            # nodmarc.test: no DMARC at all, no DKIM key either; SPF loop
            txt("nodmarc.test", "v=spf1 include:loop.test -all"),
            txt("loop.test", "v=spf1 include:nodmarc.test -all"),
            # toomany.test: eleven includes deep
            txt("s1._domainkey.toomany.test", cls.key),
            txt("_dmarc.toomany.test", "v=DMARC1; p=reject"),
            txt("toomany.test", "v=spf1 include:c0.test -all"), *chain(11),
            # signed.test: its key is good, but the From domain is elsewhere (misaligned)
            txt("s1._domainkey.signed.test", cls.key),
            txt("_dmarc.from.test", "v=DMARC1; p=reject; adkim=r"),
            txt("from.test", "v=spf1 include:_spf.relay.test -all"),
            # bytes.test: a terminal escape in its SPF record, a bad tag in its key record
            txt("s1._domainkey.bytes.test", "v=DKIM1; k=rsa; \x1b[31m=1; p=AAAA"),
            txt("_dmarc.bytes.test", "v=DMARC1; p=reject"),
            txt("bytes.test", "v=spf1 ip4:127.0.0.1 \x1b[2J -all"))

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.silent.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def campaign_text(cls, domain, key="key.pem", relay="relay.test", d=None, extra=""):
        return (f"name: {domain.split('.')[0]}\nfrom: \"Acme <news@{domain}>\"\nsubject: Hi\n"
                "recipients: {path: list.csv}\nbody: {text: body.txt}\n"
                f"dkim: [{{domain: {d or domain}, selector: s1, key: {key}}}]\n"
                # the relay on loopback hands mail on from the outbound address under test
                "relays: [{host: 127.0.0.1, port: 2525, tls: none}]\n"
                f"dns: {{outbound: [{relay}]}}\n" + extra)

    @classmethod
    def write(cls, name, text):
        path = os.path.join(cls.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    @classmethod
    def record_of(cls, key):
        """The DKIM TXT value blast check prints for a key (zone-file strings joined)."""
        path = cls.write("probe.yml", cls.campaign_text("probe.test", key=key))
        p = harness.run_blast("check", path, cwd=cls.dir,
                              env={"BLAST_DNS_SERVERS": "off"})
        m = re.search(r"(?m)^dkim\s+\S+ TXT((?: \"[^\"]*\")+)$", p.stdout)
        assert m, p.stdout + p.stderr
        return "".join(re.findall(r"\"([^\"]*)\"", m.group(1)))

    def check(self, domain, *args, servers_=None, **kw):
        path = self.write(f"{domain}.yml", self.campaign_text(domain, **kw))
        t0 = time.monotonic()
        p = harness.run_blast("check", path, "--dns", *args, cwd=self.dir,
                              env={"BLAST_DNS_SERVERS": servers_ or self.dns.servers})
        p.seconds = time.monotonic() - t0
        return p

    def finding(self, p, level, check, record):
        """The text of the finding, as `blast check --dns` prints it."""
        found = re.findall(rf"(?m)^dns\s+{level}\s+{check}\s+{re.escape(record)}: (.*)$",
                           p.stdout)
        self.assertTrue(found, f"no {level} {check} {record} in:\n{p.stdout}{p.stderr}")
        return "\n".join(found)

    def publish_after(self, p, level, check, record):
        lines = p.stdout.splitlines()
        for i, line in enumerate(lines):
            if re.match(rf"dns\s+{level}\s+{check}\s+{re.escape(record)}:", line):
                m = re.match(r"\s+publish:((?: \"[^\"]*\")+)$", lines[i + 1]) \
                    if i + 1 < len(lines) else None
                # zone-file strings of at most 255 bytes, joined as resolvers join them
                parts = re.findall(r"\"([^\"]*)\"", m.group(1)) if m else None
                assert parts is None or all(len(x) <= 255 for x in parts), parts
                return "".join(parts) if parts else None
        return None

    def test_everything_right(self):
        p = self.check("good.test")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("the published key is the one blast signs with",
                      self.finding(p, "ok", "dkim", "s1._domainkey.good.test"))
        self.assertIn("policy quarantine", self.finding(p, "ok", "dmarc", "_dmarc.good.test"))
        self.assertIn("pass for 127.0.0.1", self.finding(p, "ok", "spf", "good.test"))
        self.assertIn("include:_spf.relay.test", self.finding(p, "ok", "spf", "good.test"))
        self.assertIn("127.0.0.1 is relay.test, which points back to it",
                      self.finding(p, "ok", "ptr", "1.0.0.127.in-addr.arpa"))
        self.assertIn("dns         ", p.stdout)
        self.assertRegex(p.stdout, r"dns\s+\d+ ok, 0 warnings, 0 errors")

    def test_the_envelope_domain_of_return_path(self):
        extra = ("return_path: {address: \"b+{token}@bounce.good.test\", "
                 "secret_env: BLAST_TEST_SECRET}\n")
        path = self.write("rp.yml", self.campaign_text("good.test", extra=extra))
        env = {"BLAST_DNS_SERVERS": self.dns.servers, "BLAST_TEST_SECRET": "x" * 32}
        p = harness.run_blast("check", path, "--dns", cwd=self.dir, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("pass for 127.0.0.1 (outbound): a:relay.test",
                      self.finding(p, "ok", "spf", "bounce.good.test"))
        self.assertIn("pass for 127.0.0.1", self.finding(p, "ok", "spf", "good.test"))
        # a bounce domain without SPF is an error of its own
        path = self.write("rp2.yml", self.campaign_text(
            "good.test", extra=extra.replace("bounce.good.test", "nospf.good.test")))
        p = harness.run_blast("check", path, "--dns", cwd=self.dir, env=env)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("no SPF record", self.finding(p, "error", "spf", "nospf.good.test"))

    def test_redirect_passes_and_p_none_warns(self):
        p = self.check("redirect.test")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("pass for 127.0.0.1", self.finding(p, "ok", "spf", "redirect.test"))
        self.assertIn("p=none", self.finding(p, "warning", "dmarc", "_dmarc.redirect.test"))
        self.assertEqual(self.publish_after(p, "warning", "dmarc", "_dmarc.redirect.test"),
                         "v=DMARC1; p=quarantine")

    def test_another_key_and_spf_fail(self):
        p = self.check("otherkey.test")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("another key", self.finding(p, "error", "dkim", "s1._domainkey.otherkey.test"))
        self.assertEqual(self.publish_after(p, "error", "dkim", "s1._domainkey.otherkey.test"),
                         self.key)
        self.assertIn("fail for 127.0.0.1", self.finding(p, "error", "spf", "otherkey.test"))
        self.assertEqual(self.publish_after(p, "error", "spf", "otherkey.test"),
                         "v=spf1 ip4:127.0.0.1 ip4:192.0.2.1 -all")

    def test_a_revoked_key_and_softfail(self):
        p = self.check("revoked.test")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("revoked", self.finding(p, "error", "dkim", "s1._domainkey.revoked.test"))
        self.assertIn("softfail for 127.0.0.1", self.finding(p, "warning", "spf", "revoked.test"))

    def test_no_dmarc_no_key_and_an_spf_loop(self):
        p = self.check("nodmarc.test")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("no key is published", self.finding(p, "error", "dkim",
                                                          "s1._domainkey.nodmarc.test"))
        self.assertEqual(self.publish_after(p, "error", "dkim", "s1._domainkey.nodmarc.test"),
                         self.key)
        self.assertIn("no DMARC record for nodmarc.test",
                      self.finding(p, "error", "dmarc", "_dmarc.nodmarc.test"))
        self.assertIn("permerror", self.finding(p, "error", "spf", "nodmarc.test"))

    def test_too_many_lookups(self):
        p = self.check("toomany.test")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        text = self.finding(p, "error", "spf", "toomany.test")
        self.assertIn("permerror", text)
        self.assertIn("10", text)

    def test_misaligned_dkim(self):
        p = self.check("from.test", d="signed.test")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("no DKIM signature aligns with the From domain from.test",
                      self.finding(p, "error", "dmarc", "_dmarc.from.test"))

    def test_ptr_missing_and_not_pointing_back(self):
        p = self.check("good.test", relay="bare.test")
        self.assertIn("no PTR name for 127.0.0.3",
                      self.finding(p, "warning", "ptr", "3.0.0.127.in-addr.arpa"))
        p = self.check("good.test", relay="other.test")
        self.assertIn("is named elsewhere.test, which does not point back",
                      self.finding(p, "warning", "ptr", "4.0.0.127.in-addr.arpa"))
        # warnings are no problems
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_a_resolver_that_never_answers(self):
        p = self.check("good.test", servers_=f"127.0.0.1:{self.silent.port}")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertLess(p.seconds, 30, "bounded: one timeout, not one a record")
        self.assertIn("timed out", p.stdout)

    def test_a_relay_on_a_private_address_is_not_taken_for_the_sender(self):
        text = self.campaign_text("good.test").replace("dns: {outbound: [relay.test]}\n", "")
        path = self.write("private.yml", text)
        p = harness.run_blast("check", path, "--dns", cwd=self.dir,
                              env={"BLAST_DNS_SERVERS": self.dns.servers})
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("relay 127.0.0.1 is at 127.0.0.1, a loopback or private address",
                      self.finding(p, "warning", "dns", "127.0.0.1"))
        self.assertIn("not checked: no address mail leaves from is known",
                      self.finding(p, "warning", "spf", "good.test"))

    def test_hostile_bytes_are_escaped(self):
        p = self.check("bytes.test", "--log-format", "json")
        lines = [json.loads(line) for line in p.stderr.splitlines() if line.startswith("{")]
        findings = [x for x in lines if "check" in x]
        errors = [x for x in findings if x["finding"] == "error"]
        # the key record, DMARC's aligned key with it, the SPF record
        self.assertEqual(len(errors), 3, p.stderr)
        self.assertTrue(any("\\x1b" in x["message"] for x in errors), errors)

    def test_lookups_off_is_an_error(self):
        p = self.check("good.test", servers_="off")
        self.assertEqual(p.returncode, 2)
        self.assertIn("BLAST_DNS_SERVERS: off: the DNS checks need lookups", p.stderr)

    def test_json_lines(self):
        p = self.check("otherkey.test", "--log-format", "json")
        lines = [json.loads(line) for line in p.stderr.splitlines() if line.startswith("{")]
        findings = [x for x in lines if "check" in x]
        self.assertTrue(findings, p.stderr)
        dkim = [x for x in findings if x["check"] == "dkim"][0]
        self.assertEqual(dkim["finding"], "error")
        self.assertEqual(dkim["level"], "error")
        self.assertEqual(dkim["record"], "s1._domainkey.otherkey.test")
        self.assertEqual(dkim["publish"], self.key)
        self.assertTrue(all({"time", "message", "finding", "record"} <= set(x) for x in findings))
        self.assertNotIn("dns         error", p.stdout)

    def test_send_with_preflight(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        text = self.campaign_text("otherkey.test", relay="127.0.0.1", extra="preflight: dns\n")
        text = text.replace("port: 2525", f"port: {sink.port}")
        path = self.write("send.yml", text)
        env = {"BLAST_DNS_SERVERS": self.dns.servers}
        p = harness.run_blast("send", path, cwd=self.dir, env=env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("preflight: the DNS checks found", p.stderr)
        self.assertIn("dkim: s1._domainkey.otherkey.test:", p.stderr)
        self.assertEqual(sink.messages(), [])
        p = harness.run_blast("send", path, "--force", cwd=self.dir, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("sending despite", p.stderr)
        self.assertEqual(len(sink.messages()), 1)
        # a campaign whose records are right sends without a word
        text = self.campaign_text("good.test", relay="127.0.0.1", extra="preflight: dns\n")
        path = self.write("send-good.yml", text.replace("port: 2525", f"port: {sink.port}"))
        p = harness.run_blast("send", path, cwd=self.dir, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("DNS checks: ", p.stderr)
        self.assertIn(" 0 errors", p.stderr)


if __name__ == "__main__":
    unittest.main()
