"""Providers (docs/campaign.md, "Providers"): recipient domains looked up in a real DNS
server on loopback (dnsmasq) before anything is sent. Domains whose MX hosts are one
provider's share its pace, measured from the arrival times at the relay; a domain of
no provider is not held back by it; a null MX (RFC 7505), a name without MX, A or AAAA,
and a name that does not exist fail before any relay is asked, with the enhanced code a
relay would give; a lookup that times out falls back to the domain's own limits; with
BLAST_DNS_SERVERS=off nothing is looked up; a server setting that is not one is refused
with its place."""

import os
import unittest

from tests.integration import harness, servers
from tests.integration.test_delivery import Campaign, relay

RATE = 10  # google's pace in these campaigns, a second


class Providers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(servers.Dnsmasq.BINARY):
            raise unittest.SkipTest("dnsmasq (Debian's dnsmasq-base) is not installed")
        cls.silent = servers.SilentUDP()
        cls.dns = servers.Dnsmasq(
            "--local=/test/",
            # two customers' domains on Google's MX hosts, one of them behind a filter
            "--mx-host=alpha.test,aspmx.l.google.com,10",
            "--mx-host=beta.test,mx.filter.test,5", "--mx-host=beta.test,alt1.aspmx.l.google.com,10",
            # no provider's: an address record only (the implicit MX, RFC 5321 §5.1)
            "--host-record=plain.test,127.0.0.2",
            # a null MX (RFC 7505): preference 0, the root name
            "--dns-rr=nullmx.test,15,000000",
            # a name with a TXT record only: no MX, A or AAAA
            "--txt-record=nomail.test,v=spf1 -all",
            # a name whose server never answers
            f"--server=/slow.example/127.0.0.1#{cls.silent.port}")

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.silent.stop()

    def setUp(self):
        self.relay = servers.Counting()
        self.addCleanup(self.relay.stop)

    def campaign(self, addresses, extra="", dns_timeout="300ms"):
        c = Campaign(0, [relay(self.relay.port, connections=4)], addresses=addresses,
                     extra="retry: {attempts: 1}\n"
                           f"providers: {{google: {{rate: {RATE}/s}}}}\n"
                           f"dns: {{timeout: {dns_timeout}}}\n" + extra)
        self.addCleanup(c.remove)
        return c

    def send(self, c, servers_="", *args):
        env = dict(os.environ, BLAST_DNS_SERVERS=servers_ or self.dns.servers)
        return c.send("-v", *args, env=env, timeout=300)

    def test_one_providers_domains_share_its_pace(self):
        google = [f"g{i}@alpha.test" for i in range(30)] + [f"g{i}@beta.test" for i in range(30)]
        plain = [f"p{i}@plain.test" for i in range(60)]
        # the list interleaved, as a real list's domains are; a slow answer on a loaded
        # machine must not make a domain "not known" here
        c = self.campaign([a for pair in zip(google, plain) for a in pair], dns_timeout="3s")
        p = self.send(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("3 recipient domains looked up: 0 take no mail, 0 not known", p.stderr)
        self.assertIn("alpha.test is google's", p.stderr)
        self.assertIn("beta.test is google's", p.stderr, "the filter in front is passed over")
        got = {}
        for t, rcpts in self.relay.arrivals:
            for r in rcpts:
                got[r] = t
        self.assertEqual(sorted(got), sorted(google + plain))
        g = sorted(got[a] for a in google)
        q = sorted(got[a] for a in plain)
        # the pace allows a burst, then RATE a second: measure past the first quarter
        k = len(g) // 4
        rate = (len(g) - 1 - k) / (g[-1] - g[k])
        self.assertLess(abs(rate - RATE) / RATE, 0.15, f"google's domains at {rate:.2f}/s")
        # the other domain is not held back by google's pace: it is done well before
        self.assertLess(q[-1] - q[0], (g[-1] - g[0]) / 2)
        with open(os.path.join(harness.ROOT, "build", "provider-pace.txt"), "w") as f:
            f.write(f"{len(g)} recipients of two domains on Google's MX hosts at {RATE}/s: "
                    f"{rate:.2f}/s measured at the relay ({(rate - RATE) / RATE * 100:+.1f}%); "
                    f"{len(q)} of a domain of no provider in {q[-1] - q[0]:.2f} s\n")

    def test_check_dns_shows_the_lists_providers(self):
        addrs = ([f"g{i}@alpha.test" for i in range(3)] + ["h@beta.test"]
                 + [f"p{i}@plain.test" for i in range(2)] + ["n@nullmx.test", "m@nomail.test"])
        c = self.campaign(addrs)
        p = harness.run_blast("check", c.path, "--dns", cwd=c.dir,
                              env={"BLAST_DNS_SERVERS": self.dns.servers})
        # the sending domain has no records here: errors of its own, beside the summary
        self.assertIn("providers   google 4 (2 domains), no provider 2 (1 domain)", p.stdout)
        self.assertIn("take no mail: 2 recipients of 2 domains (send fails them):", p.stdout)
        self.assertIn("nullmx.test (null MX", p.stdout)

    def test_domains_that_take_no_mail_fail_before_sending(self):
        addrs = ["a@nullmx.test", "b@nomail.test", "c@nxdomain.test", "d@plain.test",
                 "e@slow.example"]
        c = self.campaign(addrs)
        p = self.send(c)
        self.assertEqual(p.returncode, 1, p.stderr)
        e = c.by_email()
        for a, code, words in (("a@nullmx.test", "5.1.10", "null MX"),
                               ("b@nomail.test", "5.1.2", "no MX, A or AAAA"),
                               ("c@nxdomain.test", "5.1.2", "NXDOMAIN")):
            self.assertEqual(e[a]["status"], "failed", a)
            self.assertEqual(e[a]["enhanced_code"], code, a)
            self.assertIn("takes no mail", e[a]["detail"], a)
            self.assertIn(words, e[a]["detail"], a)
            self.assertEqual(e[a]["attempts"], 0, a)
        # a name DNS could not answer for in time: sent all the same
        self.assertEqual(e["e@slow.example"]["status"], "delivered")
        self.assertEqual(e["d@plain.test"]["status"], "delivered")
        sent = {r for _, rcpts in self.relay.arrivals for r in rcpts}
        self.assertEqual(sent, {"d@plain.test", "e@slow.example"})
        self.assertIn("3 take no mail, 1 not known", p.stderr)

    def test_a_domain_that_stopped_taking_mail_keeps_earlier_attempts(self):
        # tried once without lookups (the relay said 451), then its domain is a null MX
        relay_ = servers.Scripted(servers.Script(defer_first={"a@nullmx.test": 1}))
        self.addCleanup(relay_.stop)
        c = Campaign(0, [relay(relay_.port, connections=1)], addresses=["a@nullmx.test"],
                     extra="retry: {attempts: 5, initial: 10m}\ndns: {timeout: 300ms}\n")
        self.addCleanup(c.remove)
        p = self.send(c, "off", "--deadline", "5s")  # its retry is not waited for
        self.assertEqual(p.returncode, 1, p.stderr)
        e = c.by_email()["a@nullmx.test"]
        self.assertEqual((e["status"], e["code"], e["attempts"]), ("deferred", 451, 1), e)
        p = self.send(c)
        self.assertEqual(p.returncode, 1, p.stderr)
        e = c.by_email()["a@nullmx.test"]
        self.assertEqual((e["status"], e["enhanced_code"], e["attempts"]), ("failed", "5.1.10", 1),
                         e)
        self.assertIsNone(e["code"], e)
        self.assertIn("takes no mail", e["detail"])
        self.assertEqual(len(e["history"]), 1, e)
        self.assertEqual(len(relay_.messages), 0, "nothing was accepted")

    def test_off_looks_nothing_up(self):
        c = self.campaign(["a@nullmx.test", "d@plain.test"])
        p = self.send(c, "off")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("looked up", p.stderr)
        sent = {r for _, rcpts in self.relay.arrivals for r in rcpts}
        self.assertEqual(sent, {"a@nullmx.test", "d@plain.test"})
        # and so does a campaign that says so
        c = self.campaign(["a@nullmx.test"], extra="")
        with open(c.path, encoding="utf-8") as f:
            text = f.read().replace("dns: {timeout: 300ms}", "dns: {lookups: false}")
        with open(c.path, "w", encoding="utf-8") as f:
            f.write(text)
        p = self.send(c)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("looked up", p.stderr)

    def test_a_server_that_is_not_one(self):
        c = self.campaign(["a@plain.test"])
        p = self.send(c, "not-an-address")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("BLAST_DNS_SERVERS: 'not-an-address' is not an IP address", p.stderr)
        self.assertEqual(self.relay.arrivals, [])


if __name__ == "__main__":
    unittest.main()
