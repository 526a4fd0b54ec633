"""`blast send --metrics` and `blast report --format prometheus` (docs/metrics.md),
against Postfix's smtp-sink and a scripted aiosmtpd.

Every file and output is checked by Prometheus' own `promtool check metrics` and read
back by a parser of the text format written here, to the same figures as the JSON
report: recipients by status and by relay, attempts, messages accepted and their
bytes, the run's messages, start, end and length. A run that fails (exit 2, 4) writes
its exit code and keeps the last success of the run before; names with quotes,
backslashes and line breaks are escaped; no label holds an address.
"""

import datetime
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from tests.integration import harness, servers
from tests.integration.test_delivery import Campaign, relay

PROMTOOL = "/usr/bin/promtool"
STATUSES = ["delivered", "deferred", "failed", "unknown", "suppressed", "invalid", "duplicate",
            "rendered", "bounced", "complained"]
RELAY_STATUSES = ["delivered", "deferred", "failed", "unknown", "bounced", "complained"]


# ---- the text format, read back --------------------------------------------------------------

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _labels(text, i):
    """The labels from text[i] (just after '{') to the closing '}': (dict, index after it)."""
    labels = {}
    while True:
        if text[i] == "}":
            return labels, i + 1
        m = _NAME.match(text, i)
        if m is None or text[m.end():m.end() + 2] != '="':
            raise ValueError(f"bad label at {text[i:i + 30]!r}")
        name, i, value = m.group(0), m.end() + 2, []
        while text[i] != '"':
            if text[i] == "\\":
                if text[i + 1] not in _ESCAPES:
                    raise ValueError(f"bad escape \\{text[i + 1]}")
                value.append(_ESCAPES[text[i + 1]])
                i += 2
            elif text[i] == "\n":
                raise ValueError("a raw line break in a label value")
            else:
                value.append(text[i])
                i += 1
        if name in labels:
            raise ValueError(f"label {name} twice")
        labels[name] = "".join(value)
        i += 1
        if text[i] == ",":
            i += 1
        elif text[i] != "}":
            raise ValueError(f"bad label list at {text[i:i + 30]!r}")


def parse_prometheus(text):
    """The exposition format (0.0.4) as {name: {frozenset(labels): value}}, with
    {name: (type, help)}. Raises ValueError for what is not well formed, a sample
    before its TYPE, or a series twice."""
    samples, families = {}, {}
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            t, h = families.get(name, (None, None))
            families[name] = (rest, h) if kind == "TYPE" else (t, rest)
            continue
        if line.startswith("#") or line == "":
            continue
        m = _NAME.match(line)
        if m is None:
            raise ValueError(f"not a sample: {line!r}")
        name, i, labels = m.group(0), m.end(), {}
        if line[i:i + 1] == "{":
            labels, i = _labels(line, i + 1)
        if line[i:i + 1] != " ":
            raise ValueError(f"no value: {line!r}")
        value = float(line[i + 1:])
        if families.get(name, (None,))[0] is None:
            raise ValueError(f"{name} has no TYPE before its samples")
        key = frozenset(labels.items())
        if key in samples.setdefault(name, {}):
            raise ValueError(f"{name}{labels} twice")
        samples[name][key] = value
    return samples, families


def value(samples, name, **labels):
    return samples[name][frozenset(labels.items())]


def epoch(rfc3339):
    return datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Metrics(unittest.TestCase):

    def campaign(self, *a, **kw):
        c = Campaign(*a, **kw)
        self.addCleanup(c.remove)
        return c

    def sink(self, *args):
        s = servers.Sink(*args)
        self.addCleanup(s.stop)
        return s

    def promtool(self, text):
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, f"promtool: {p.stdout}{p.stderr}\n{text}")
        self.assertEqual(p.stdout + p.stderr, "", "promtool has a remark")

    def read(self, path):
        """A metrics file: its mode, no temporary file beside it, promtool, parsed."""
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)
        d = os.path.dirname(path)
        self.assertEqual([f for f in os.listdir(d) if ".prom.tmp" in f], [],
                         "a temporary file left behind")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return self.check_text(text)

    def check_text(self, text):
        self.promtool(text)
        samples, families = parse_prometheus(text)
        for name, (kind, help_) in families.items():
            self.assertTrue(name.startswith("blast_"), name)
            self.assertEqual(kind, "gauge", name)
            self.assertFalse(name.endswith("_total"), f"{name}: a gauge with _total")
            self.assertTrue(help_, f"{name} has no HELP")
        for name, series in samples.items():
            for labels in series:
                for k, v in labels:
                    self.assertNotIn("@", v, f"{name}: label {k}={v!r} holds an address")
        return samples

    def report_prometheus(self, report, *extra):
        p = harness.run_blast("report", report, "--format", "prometheus", *extra)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def assertSameFigures(self, samples, report, **common):
        """The samples hold what the JSON report says, labelled with common."""
        s = report["summary"]
        for st in STATUSES:
            self.assertEqual(value(samples, "blast_recipients", status=st, **common),
                             s["by_status"][st], st)
        self.assertEqual(len(samples["blast_recipients"]), len(STATUSES))
        relays = {}
        for labels, v in samples.get("blast_relay_recipients", {}).items():
            d = dict(labels)
            relays.setdefault(d["relay"], {})[d["status"]] = v
            self.assertEqual({k: d[k] for k in common}, common)
        self.assertEqual(set(relays), set(s["by_relay"]))
        for name, counts in s["by_relay"].items():
            for st in RELAY_STATUSES:
                self.assertEqual(relays[name][st], counts.get(st, 0), f"{name} {st}")
        recipients = report["recipients"]
        self.assertEqual(value(samples, "blast_delivery_attempts", **common), s["attempts"])
        self.assertEqual(s["attempts"], sum(e["attempts"] for e in recipients))
        accepted = [e for e in recipients if e["status"] in ("delivered", "bounced", "complained")]
        self.assertEqual(value(samples, "blast_messages_accepted", **common),
                         s["messages_accepted"])
        self.assertEqual(s["messages_accepted"], len(accepted))
        self.assertEqual(value(samples, "blast_accepted_bytes", **common), s["bytes_accepted"])
        self.assertEqual(s["bytes_accepted"], sum(e["size"] for e in accepted))
        self.assertEqual(value(samples, "blast_run_messages", **common), s["messages_this_run"])
        self.assertAlmostEqual(value(samples, "blast_run_start_timestamp_seconds", **common),
                               epoch(s["start"]), places=3)
        self.assertAlmostEqual(value(samples, "blast_run_end_timestamp_seconds", **common),
                               epoch(s["end"]), places=3)
        self.assertAlmostEqual(value(samples, "blast_run_duration_seconds", **common),
                               s["duration_seconds"], places=6)
        self.assertEqual(value(samples, "blast_build_info", version=self.version(), **common), 1)

    def version(self):
        p = harness.run_blast("version")
        return p.stdout.split()[1]

    # ---- sends ------------------------------------------------------------------------------

    def test_a_send_writes_the_reports_figures(self):
        sink = self.sink()
        c = self.campaign(8, [relay(sink.port, name="sink")], extra="rate: 30/m\n")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out",
                        os.path.join(c.dir, "ed.pem")], check=True, capture_output=True)
        with open(c.path, "a", encoding="utf-8") as f:
            f.write("dkim: {domain: acme.example, selector: ed2026, key: ed.pem, "
                    "algorithm: ed25519-sha256}\n")
        path = os.path.join(c.dir, "blast-delivery.prom")
        p = c.send("--metrics", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        report = harness.load_report(c.report)
        s = report["summary"]
        self.assertEqual(s["by_status"]["delivered"], 8)
        # the campaign's settings, and never the key
        self.assertAlmostEqual(report["campaign"]["rate_per_second"], 0.5)
        self.assertEqual(report["campaign"]["dkim"],
                         [{"domain": "acme.example", "selector": "ed2026",
                           "algorithm": "ed25519-sha256"}])
        self.assertNotIn("ed.pem", json.dumps(report["campaign"]))
        samples = self.read(path)
        self.assertSameFigures(samples, report, campaign="delivery")
        self.assertEqual(value(samples, "blast_run_exit_code", campaign="delivery"), 0)
        # a run that went through its list: the last success is its end
        self.assertEqual(value(samples, "blast_last_success_timestamp_seconds",
                               campaign="delivery"),
                         value(samples, "blast_run_end_timestamp_seconds", campaign="delivery"))

        # blast report: the same figures, without the exit code and the last success
        text = self.report_prometheus(c.report)
        again = self.check_text(text)
        self.assertSameFigures(again, report, campaign="delivery")
        self.assertNotIn("blast_run_exit_code", again)
        self.assertNotIn("blast_last_success_timestamp_seconds", again)
        for name in again:
            self.assertEqual(again[name], samples[name], name)

    def test_refused_recipients_count_and_the_run_still_succeeds(self):
        bad = ["user2@example.com", "user5@example.com"]
        server = servers.Scripted(servers.Script(
            rcpt={a: f"550 5.1.1 <{a}>: Recipient address rejected" for a in bad}))
        self.addCleanup(server.stop)
        c = self.campaign(6, [relay(server.port, name="scripted", connections=1)],
                          extra="retry: {attempts: 1}\n")
        path = os.path.join(c.dir, "m.prom")
        p = c.send("--metrics", path)
        self.assertEqual(p.returncode, 1, p.stderr)
        report = harness.load_report(c.report)
        samples = self.read(path)
        self.assertSameFigures(samples, report, campaign="delivery")
        self.assertEqual(value(samples, "blast_recipients", campaign="delivery",
                               status="failed"), 2)
        self.assertEqual(value(samples, "blast_relay_recipients", campaign="delivery",
                               relay="scripted", status="failed"), 2)
        self.assertEqual(value(samples, "blast_run_exit_code", campaign="delivery"), 1)
        # every real list has some that fail: exit 1 went through it, a success
        self.assertIn(frozenset({("campaign", "delivery")}),
                      samples["blast_last_success_timestamp_seconds"])

    def test_a_failed_run_writes_its_exit_code_and_keeps_the_last_success(self):
        sink = self.sink()
        c = self.campaign(6, [relay(sink.port, name="sink")])
        path = os.path.join(c.dir, "m.prom")
        p = c.send("--metrics", path, "--limit", "3")
        self.assertEqual(p.returncode, 0, p.stderr)
        first = self.read(path)
        success = value(first, "blast_last_success_timestamp_seconds", campaign="delivery")

        # the relay goes away: no session at all, exit 4, no report
        sink.stop()
        os.unlink(c.report)
        p = c.send("--metrics", path)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertFalse(os.path.exists(c.report))
        samples = self.read(path)
        self.assertEqual(value(samples, "blast_run_exit_code", campaign="delivery"), 4)
        self.assertEqual(value(samples, "blast_last_success_timestamp_seconds",
                               campaign="delivery"), success)
        self.assertGreater(value(samples, "blast_run_end_timestamp_seconds",
                                 campaign="delivery"), success)
        # the counts from the journal: the three sent before, the rest deferred
        self.assertEqual(value(samples, "blast_recipients", campaign="delivery",
                               status="delivered"), 3)
        self.assertEqual(value(samples, "blast_recipients", campaign="delivery",
                               status="deferred"), 3)
        self.assertEqual(value(samples, "blast_run_messages", campaign="delivery"), 0)

        # a campaign error after the campaign is loaded: exit 2, no counts, same success
        p = c.send("--metrics", path, "--exclude-report", "missing.json")
        self.assertEqual(p.returncode, 2, p.stderr)
        samples = self.read(path)
        self.assertEqual(value(samples, "blast_run_exit_code", campaign="delivery"), 2)
        self.assertEqual(value(samples, "blast_last_success_timestamp_seconds",
                               campaign="delivery"), success)
        self.assertNotIn("blast_recipients", samples, "no journal: no count samples")
        self.assertIn("blast_run_start_timestamp_seconds", samples)

    def test_names_with_quotes_backslashes_and_line_breaks(self):
        sink = self.sink()
        name = 'we "quote" \\ back\nslash'
        c = self.campaign(3, [relay(sink.port, name=json.dumps(name))])
        path = os.path.join(c.dir, "m.prom")
        p = c.send("--metrics", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.assertIn('relay="we \\"quote\\" \\\\ back\\nslash"', text)
        report = harness.load_report(c.report)
        self.assertEqual(list(report["summary"]["by_relay"]), [name])
        samples = self.read(path)
        self.assertEqual(value(samples, "blast_relay_recipients", campaign="delivery",
                               relay=name, status="delivered"), 3)
        self.assertSameFigures(self.check_text(self.report_prometheus(c.report)), report,
                               campaign="delivery")

    def test_shards_are_labelled_and_their_merge_is_the_campaign(self):
        sink = self.sink()
        c = self.campaign(20, [relay(sink.port, name="sink")], extra="rate: 40/s\n")
        reports = []
        for i in range(2):
            rep = os.path.join(c.dir, f"r{i}.json")
            prom = os.path.join(c.dir, f"m{i}.prom")
            p = subprocess.run([harness.BLAST, "send", "campaign.yml", "--shard", f"{i}/2",
                                "--report", rep, "--metrics", prom], cwd=c.dir,
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            report = harness.load_report(rep)
            self.assertEqual(report["campaign"]["rate_per_second"], 40,
                             "the campaign's rate, not the shard's part")
            samples = self.read(prom)
            self.assertSameFigures(samples, report, campaign="delivery", shard=f"{i}/2")
            reports.append(rep)
        merged = os.path.join(c.dir, "merged.json")
        p = harness.run_blast("report", "--merge", *reports, "-o", merged)
        self.assertEqual(p.returncode, 0, p.stderr)
        report = harness.load_report(merged)
        self.assertEqual(report["campaign"]["rate_per_second"], 40)
        self.assertEqual(report["campaign"]["dkim"], [])
        self.assertEqual(report["summary"]["by_status"]["delivered"], 20)
        samples = self.check_text(self.report_prometheus(merged))
        self.assertSameFigures(samples, report, campaign="delivery")

    def test_an_older_report_is_counted_from_its_recipients(self):
        sink = self.sink()
        c = self.campaign(5, [relay(sink.port, name="sink")])
        p = c.send()
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(c.report, encoding="utf-8") as f:
            report = json.load(f)
        old = json.loads(json.dumps(report))
        for key in ("attempts", "messages_accepted", "bytes_accepted"):
            del old["summary"][key]
        for key in ("rate_per_second", "dkim"):
            del old["campaign"][key]
        harness.check_report(old)  # still a report of schema_version 1
        path = os.path.join(c.dir, "old.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(old, f)
        samples = self.check_text(self.report_prometheus(path))
        self.assertSameFigures(samples, report, campaign="delivery")

        # no summary at all: the counts from the recipients, and no run
        del old["summary"]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(old, f)
        samples = self.check_text(self.report_prometheus(path))
        for name in ("blast_recipients", "blast_relay_recipients", "blast_delivery_attempts",
                     "blast_messages_accepted", "blast_accepted_bytes"):
            self.assertEqual(samples[name], self.check_text(
                self.report_prometheus(c.report))[name], name)
        self.assertNotIn("blast_run_start_timestamp_seconds", samples)

    # ---- what is refused, what is only a warning -------------------------------------------

    def test_not_with_a_dry_run_or_a_test_send(self):
        c = self.campaign(2, [relay(1, name="none")])
        path = os.path.join(c.dir, "m.prom")
        for extra in (["--dry-run", "out"], ["--to", "me@example.com"]):
            p = c.send("--metrics", path, *extra)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("--metrics", p.stderr)
            self.assertFalse(os.path.exists(path))

    def test_a_metrics_file_that_cannot_be_written_is_a_warning(self):
        sink = self.sink()
        c = self.campaign(2, [relay(sink.port, name="sink")])
        p = c.send("--metrics", os.path.join(c.dir, "no", "such", "dir", "m.prom"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"warning: metrics: .*m\.prom: cannot create the metrics "
                                   r"file: .*the run itself is unaffected \(exit code 0\)")
        self.assertEqual(harness.load_report(c.report)["summary"]["by_status"]["delivered"], 2)

    def test_the_parser_of_these_tests_refuses_what_is_wrong(self):
        good = '# TYPE x gauge\nx{a="1\\"\\\\\\n"} 2\n'
        samples, _ = parse_prometheus(good)
        self.assertEqual(value(samples, "x", a='1"\\\n'), 2)
        for bad in ('x 1\n', '# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n',
                    '# TYPE x gauge\nx{a="\\t"} 1\n', '# TYPE x gauge\nx{a=1} 1\n'):
            with self.assertRaises(ValueError, msg=bad):
                parse_prometheus(bad)


if __name__ == "__main__":
    unittest.main()
