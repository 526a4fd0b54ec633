"""Send windows (docs/campaign.md, "window"): recipients in three time zones (a column of
the list), runs at fixed instants of the campaign clock (BLAST_NOW) send only those whose
window is open, the others stay deferred with the reason and when it opens; the next
runs send them as their windows open; daylight-saving edges are read on the zone's own
wall clock; an unknown zone name is refused by check and send, naming the row."""

import os
import time
import unittest

from tests.integration import harness, servers
from tests.integration.test_delivery import Campaign, relay

ZONES = {"ny": "America/New_York", "paris": "Europe/Paris", "tokyo": "Asia/Tokyo"}


class Windows(unittest.TestCase):
    def setUp(self):
        self.sink = servers.Sink()
        self.addCleanup(self.sink.stop)

    def campaign(self, rows, window="{days: mon-fri, hours: \"09:00-17:00\", zone_column: tz}",
                 timezone="UTC"):
        c = Campaign(0, [relay(self.sink.port)], addresses=[r[0] for r in rows],
                     extra=f"window: {window}\ntimezone: {timezone}\n")
        self.addCleanup(c.remove)
        with open(os.path.join(c.dir, "list.csv"), "w", encoding="utf-8") as f:
            f.write("email,name,tz\n")
            for email, tz in rows:
                f.write(f"{email},{email.split('@')[0]},{tz}\n")
        return c

    def send(self, c, now, *args):
        return c.send(*args, env=dict(os.environ, BLAST_NOW=now))

    def by_status(self, c):
        out = {}
        for e in c.entries():
            out.setdefault(e["status"], []).append(e["email"].split("@")[0])
        return {k: sorted(v) for k, v in out.items()}

    def three_zones(self):
        rows = []
        for key, zone in ZONES.items():
            rows += [(f"{key}{i}@example.com", zone) for i in range(3)]
        return rows

    def test_three_zones_at_fixed_instants(self):
        c = self.campaign(self.three_zones())
        # Monday 7 December 2026, 09:30 UTC: 10:30 in Paris, 04:30 in New York, 18:30 in Tokyo
        p = harness.run_blast("check", c.path, env=dict(os.environ, BLAST_NOW="2026-12-07T09:30:00Z"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("window      Mon-Fri 09:00-17:00, each recipient's zone from column 'tz' "
                      "(else UTC): open now for 3 of 9 valid recipients", p.stdout)
        p = self.send(c, "2026-12-07T09:30:00Z")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("held back on purpose: 6 outside their send window", p.stderr)
        st = self.by_status(c)
        self.assertEqual(st["delivered"], ["paris0", "paris1", "paris2"])
        self.assertEqual(len(st["deferred"]), 6)
        details = {e["email"].split("@")[0]: e["detail"] for e in c.entries()}
        self.assertEqual(details["ny0"],
                         "send window: closed in America/New_York (Mon-Fri 09:00-17:00); opens "
                         "2026-12-07 09:00 EST (2026-12-07T14:00:00Z)")
        self.assertEqual(details["tokyo0"],
                         "send window: closed in Asia/Tokyo (Mon-Fri 09:00-17:00); opens "
                         "2026-12-08 09:00 JST (2026-12-08T00:00:00Z)")
        summary = harness.load_report(c.report)["summary"]
        self.assertEqual(summary["held"], {"window": 6, "warmup": 0})
        text = harness.run_blast("report", c.report, "--no-db")
        self.assertIn("held        6 outside their send window", text.stdout)
        page = harness.run_blast("report", c.report, "--format", "html", "--no-db")
        self.assertEqual(page.returncode, 0, page.stderr)
        self.assertIn('<dt>held by the send window</dt><dd id="held-window">6 deferred', page.stdout)
        # 15:00 UTC: 10:00 in New York, midnight in Tokyo
        p = self.send(c, "2026-12-07T15:00:00Z")
        self.assertEqual(p.returncode, 1, p.stderr)
        st = self.by_status(c)
        self.assertEqual(st["delivered"], ["ny0", "ny1", "ny2", "paris0", "paris1", "paris2"])
        self.assertEqual(st["deferred"], ["tokyo0", "tokyo1", "tokyo2"])
        # Tuesday 01:00 UTC: 10:00 in Tokyo
        p = self.send(c, "2026-12-08T01:00:00Z")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.by_status(c)["delivered"]), 9)
        self.assertEqual(len(self.sink.messages()), 9, "nobody twice")
        self.assertNotIn("held", harness.load_report(c.report)["summary"])

    def test_weekend_and_an_empty_zone_cell(self):
        c = self.campaign([("a@example.com", "Europe/Paris"), ("b@example.com", "")],
                          timezone="Asia/Tokyo")
        # Saturday 12 December, 10:00 UTC: closed everywhere until Monday
        p = self.send(c, "2026-12-12T10:00:00Z")
        self.assertEqual(p.returncode, 1, p.stderr)
        details = {e["email"]: e["detail"] for e in c.entries()}
        self.assertIn("opens 2026-12-14 09:00 CET", details["a@example.com"])
        # no zone of its own: the campaign's
        self.assertIn("closed in Asia/Tokyo", details["b@example.com"])
        self.assertIn("opens 2026-12-14 09:00 JST", details["b@example.com"])
        self.assertEqual(self.sink.messages(), [])

    def test_daylight_saving_edges(self):
        rows = [("p@example.com", "Europe/Paris")]
        # 06:30 UTC: 07:30 CET on Saturday 28 March 2027, 08:30 CEST on Monday 29 March
        c = self.campaign(rows, window="{hours: \"08:00-09:00\", zone_column: tz}")
        p = self.send(c, "2027-03-27T06:30:00Z")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("opens 2027-03-27 08:00 CET (2027-03-27T07:00:00", c.entries()[0]["detail"])
        # the clocks go forward on the 28th: the same UTC instant is an hour later on the wall
        p = self.send(c, "2027-03-29T06:30:00Z")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(self.sink.messages()), 1)

    def test_a_window_inside_the_spring_gap_opens_at_its_end(self):
        # New York skips 02:00-03:00 on 8 March 2026: the window opens at 03:00 EDT
        c = self.campaign([("n@example.com", "America/New_York")],
                          window="{hours: \"02:00-03:00\", zone_column: tz}")
        p = self.send(c, "2026-03-08T06:30:00Z")  # 01:30 EST
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("opens 2026-03-08 03:00 EDT (2026-03-08T07:00:00", c.entries()[0]["detail"])
        p = self.send(c, "2026-03-08T07:30:00Z")  # 03:30 EDT
        self.assertEqual(p.returncode, 0, p.stderr)
        # and on the night the clocks go back, 01:30 happens twice: both are in the window
        c = self.campaign([("f@example.com", "America/New_York")],
                          window="{hours: \"01:00-02:00\", zone_column: tz}")
        p = self.send(c, "2026-11-01T06:30:00Z")  # 01:30 EST, the second time
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_a_window_that_closes_while_recipients_wait(self):
        # Monday 16:59:52 UTC, 40 recipients at 3 a second: every one is handed over while
        # the window is open, but the window closes 7 to 8 s into the run; those whose turn
        # comes after 17:00 are not sent, they wait for Tuesday 09:00, and their warm-up
        # counts go back
        addresses = [f"u{i:02d}@example.com" for i in range(40)]
        c = Campaign(0, [relay(self.sink.port)], addresses=addresses,
                     extra="window: {days: mon-fri, hours: \"09:00-17:00\"}\ntimezone: UTC\n"
                           "rate: 3/s\nwarmup: {daily: [100]}\n")
        self.addCleanup(c.remove)
        p = self.send(c, "2026-12-07T16:59:52Z")
        self.assertEqual(p.returncode, 1, p.stderr)
        st = self.by_status(c)
        sent, held = st.get("delivered", []), st.get("deferred", [])
        self.assertEqual(len(sent) + len(held), 40)
        # 7 to 8 s at 3 a second (and the limiter's burst): the window's close cut it short
        self.assertGreater(len(sent), 0, p.stderr)
        self.assertLess(len(sent), 35, p.stderr)
        for e in c.entries():
            if e["status"] == "deferred":
                self.assertEqual(e["detail"],
                                 "send window: closed in UTC (Mon-Fri 09:00-17:00); opens "
                                 "2026-12-08 09:00 UTC (2026-12-08T09:00:00Z)")
                self.assertEqual(e["attempts"], 0)
        self.assertIn(f"held back on purpose: {len(held)} outside their send window", p.stderr)
        summary = harness.load_report(c.report)["summary"]
        self.assertEqual(summary["held"], {"window": len(held), "warmup": 0})
        self.assertEqual(summary["warmup"]["providers"]["other"]["sent"], len(sent))
        # Tuesday morning: the rest, nobody twice
        p = self.send(c, "2026-12-08T09:00:00Z")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.by_status(c), {"delivered": sorted(a.split("@")[0] for a in addresses)})
        received = self.sink.recipients()
        self.assertEqual(sorted(received), addresses)
        self.assertEqual(set(received.values()), {1})

    def test_a_retry_due_after_the_window_closed_waits_for_it_to_open(self):
        # user1 is answered 451 at 16:59:52; its retry, 15 s later (give or take a fifth),
        # falls after 17:00: it is held then and there, not waited for
        server = servers.Scripted(servers.Script(defer_first={"user1@example.com": 1}))
        self.addCleanup(server.stop)
        c = Campaign(2, [relay(server.port, connections=1)],
                     extra="window: {days: mon-fri, hours: \"09:00-17:00\"}\ntimezone: UTC\n"
                           "retry: {attempts: 5, initial: 15s, max: 15s}\n"
                           "warmup: {daily: [100]}\n")
        self.addCleanup(c.remove)
        started = time.monotonic()
        p = self.send(c, "2026-12-07T16:59:52Z")
        self.assertEqual(p.returncode, 1, p.stderr)
        # waiting would take 12 s at least
        self.assertLess(time.monotonic() - started, 11.5, "the run waited for a retry it would hold")
        e = c.by_email()["user1@example.com"]
        self.assertEqual((e["status"], e["code"], e["attempts"]), ("deferred", 451, 1), e)
        self.assertEqual(e["detail"], "send window: closed in UTC (Mon-Fri 09:00-17:00); opens "
                                      "2026-12-08 09:00 UTC (2026-12-08T09:00:00Z)")
        self.assertEqual(c.by_email()["user2@example.com"]["status"], "delivered")
        summary = harness.load_report(c.report)["summary"]
        self.assertEqual(summary["held"]["window"], 1)
        # it was tried today: its warm-up count stays
        self.assertEqual(summary["warmup"]["providers"]["other"]["sent"], 2)
        # Saturday: held again when handed over; its attempt and reply go on
        p = self.send(c, "2026-12-12T10:00:00Z")
        self.assertEqual(p.returncode, 1, p.stderr)
        e = c.by_email()["user1@example.com"]
        self.assertEqual((e["status"], e["code"], e["attempts"]), ("deferred", 451, 1), e)
        self.assertTrue(e["detail"].endswith("opens 2026-12-14 09:00 UTC (2026-12-14T09:00:00Z)"), e)
        self.assertEqual(len(e["history"]), 1, e)
        p = self.send(c, "2026-12-14T09:00:00Z")
        self.assertEqual(p.returncode, 0, p.stderr)
        e = c.by_email()["user1@example.com"]
        self.assertEqual((e["status"], e["attempts"]), ("delivered", 2), e)

    def test_no_session_is_opened_only_to_hold_recipients(self):
        # one message each 10 s from 16:59:56: the first goes, its connection closes when
        # idle (5 s), and when the next one's turn comes at 17:00:06 the window has closed:
        # the rest are held without a connection opened for them
        c = Campaign(5, [relay(self.sink.port, connections=1)],
                     extra="window: {days: mon-fri, hours: \"09:00-17:00\"}\ntimezone: UTC\n"
                           "rate: 6/m\n")
        self.addCleanup(c.remove)
        p = self.send(c, "2026-12-07T16:59:56Z", "-v")
        self.assertEqual(p.returncode, 1, p.stderr)
        st = self.by_status(c)
        self.assertEqual((len(st["delivered"]), len(st["deferred"])), (1, 4), p.stderr)
        self.assertIn("1 sessions, 1 messages", p.stderr)
        self.assertIn("held back on purpose: 4 outside their send window", p.stderr)

    def test_unknown_zone_is_refused_naming_the_row(self):
        c = self.campaign([("a@example.com", "Europe/Paris"), ("b@example.com", "Mars/Olympus")])
        p = harness.run_blast("check", c.path)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("list.csv:3: row 2, column 'tz': unknown time zone 'Mars/Olympus'", p.stderr)
        p = self.send(c, "2026-12-07T09:30:00Z")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("list.csv:3: row 2, column 'tz': unknown time zone 'Mars/Olympus'", p.stderr)
        self.assertEqual(self.sink.messages(), [])

    def test_a_tz_the_c_library_takes_blocks_no_plain_campaign(self):
        c = Campaign(2, [relay(self.sink.port)])
        self.addCleanup(c.remove)
        env = dict(os.environ, TZ="Mars/Olympus")
        p = c.send(env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = harness.run_blast("check", c.path, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # a campaign with a window needs its zone: the system's here, which is not one
        c = self.campaign([("a@example.com", "")], timezone="")
        with open(c.path) as f:
            text = f.read()
        with open(c.path, "w") as f:
            f.write(text.replace("timezone: \n", ""))
        p = c.send(env=env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("Mars/Olympus", p.stderr)

    def test_campaign_errors_have_places(self):
        c = self.campaign([("a@example.com", "UTC")], window="{days: funday}")
        p = harness.run_blast("check", c.path)
        self.assertEqual(p.returncode, 2)
        self.assertIn("campaign.yml:6:16: 'window': 'days': unknown day 'funday'", p.stderr)
        c = self.campaign([("a@example.com", "UTC")], window="{zone_column: zone}")
        p = self.send(c, "2026-12-07T09:30:00Z")
        self.assertEqual(p.returncode, 2)
        self.assertIn("'window': 'zone_column': the list", p.stderr)
        self.assertIn("has no column 'zone'", p.stderr)
        c = self.campaign([("a@example.com", "UTC")], timezone="Europe/Pariss")
        p = self.send(c, "2026-12-07T09:30:00Z")
        self.assertEqual(p.returncode, 2)
        self.assertIn("'timezone': unknown time zone 'Europe/Pariss'", p.stderr)


if __name__ == "__main__":
    unittest.main()
