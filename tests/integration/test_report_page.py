"""The report page (`blast report --format html`) opened in a real browser.

Debian's Chromium, headless, loads each page from a file behind a trap (tests/integration/
browser.py): the DOM it built is read back (--dump-dom) for the sections and figures the
JSON report says, no script may have run, nothing may have been fetched, and a screenshot
must not be blank. Pages: a realistic run (a scripted relay with STARTTLS and AUTH that
refuses and defers some recipients, and smtp-sink, DKIM, a rate), a 100,000-recipient
run, a hostile report (markup, quotes, right-to-left text and 1 MB lines in every field a
list or a server fills), an empty campaign, a dry run and a merged report.

BLAST_PAGE_SCREENSHOT=PATH keeps the realistic run's screenshot (docs/report-page.png).
The page's structure for a fixed report (tests/fixtures/page/report.json) is held to a
golden outline (tests/fixtures/page/report.outline); BLAST_UPDATE_GOLDEN=1 rewrites it
after a deliberate change, to be reviewed in the diff.
"""

import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from tests.integration import browser, harness, servers

BODY = "Hello {{name}},\nthis is row {{row}}.\n"

# a list that looks like one: a few big mailbox providers and a long tail
DOMAINS = [("gmail.com", 180), ("yahoo.com", 90), ("outlook.com", 80), ("hotmail.com", 40),
           ("gmx.de", 30), ("web.de", 25), ("orange.fr", 25), ("mail.ru", 20),
           ("yandex.ru", 20), ("icloud.com", 20), ("acme-corp.example", 15),
           ("example.org", 15), ("t-online.de", 10), ("libero.it", 10), ("free.fr", 10),
           ("seznam.cz", 5), ("naver.com", 5)]


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def campaign_dir(prefix, addresses, relays, extra=""):
    d = tempfile.mkdtemp(prefix=prefix)
    write(os.path.join(d, "list.csv"),
          "email,name\n" + "".join(f"{a},{a.split('@')[0]}\n" for a in addresses))
    write(os.path.join(d, "body.txt"), BODY)
    text = ("name: november-news\nfrom: \"Acme News <news@acme.example>\"\n"
            "subject: \"Hi {{name}}\"\nrecipients: {path: list.csv}\nbody: {text: body.txt}\n"
            + extra + "relays:\n")
    for r in relays:
        text += "  - " + "\n    ".join(f"{k}: {v}" for k, v in r.items()) + "\n"
    write(os.path.join(d, "campaign.yml"), text)
    return d


def sink_relay(sink, name="bulk-plain"):
    return {"name": name, "host": "127.0.0.1", "port": sink.port, "tls": "none",
            "messages_per_connection": 0}


def render(report, out, cwd=None):
    p = harness.run_blast("report", report, "--format", "html", cwd=cwd)
    if p.returncode != 0:
        raise AssertionError(f"blast report --format html exited {p.returncode}: {p.stderr}")
    write(out, p.stdout)
    return p.stdout


class Outline(html.parser.HTMLParser):
    """What a page holds: its sections (by id), the text of each element with an id, the
    rows of its tables, the elements it has, and its title."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.ids, self.stack, self.sections = [], {}, [], []
        self.rows, self.row, self.cell, self.title = [], None, None, None
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "title" and self.title is None:  # the page's, not an SVG element's
            self._in_title, self.title = True, ""
        if tag == "tr":
            self.row = []
        if tag in ("td", "th"):
            self.cell = ""
        if "id" in a:
            self.ids[a["id"]] = ""
        self.stack.append((tag, a.get("id")))

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        if tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self.cell is not None:
            self.cell += data
        for _, i in self.stack:
            if i is not None:
                self.ids[i] += data


def outline(text):
    o = Outline()
    o.feed(text)
    o.close()
    return o


def number(text):
    """'1,234' in a text -> 1234 (the first number)."""
    m = re.search(r"\d[\d,]*", text)
    return int(m.group(0).replace(",", "")) if m else None


FIXTURES = os.path.join(harness.ROOT, "tests", "fixtures", "page")

# elements whose text the outline shows; the rest show their name, id and class only
TEXT_TAGS = {"title", "h1", "h2", "h3", "p", "li", "dt", "dd", "figcaption", "tr"}
OUTLINE_TAGS = TEXT_TAGS | {"header", "main", "footer", "section", "ul", "dl", "table",
                            "figure", "svg"}
VOID = {"meta", "line", "rect", "br", "img", "link"}


class Tree(html.parser.HTMLParser):
    """The page as a tree of [tag, attrs, children, text] lists."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = ["root", {}, [], ""]
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = [tag, dict(attrs), [], ""]
        self.stack[-1][2].append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1][2].append([tag, dict(attrs), [], ""])

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        for node in self.stack:
            if node[0] in ("style",):
                return
        if self.stack[-1][0] in ("td", "th"):
            self.stack[-1][3] += data + "\x1f"
        else:
            self.stack[-1][3] += data
        for node in self.stack[:-1]:
            node[3] += data


def text_of(node):
    if node[0] == "tr":
        cells = [" ".join(c[3].replace("\x1f", " ").split()) for c in node[2]
                 if c[0] in ("td", "th")]
        return " | ".join(cells)
    return " ".join(node[3].replace("\x1f", " ").split())


def structure(page):
    """The page's outline: one line per structural element, indented by depth, with its
    id and class, its text where it is a heading, a paragraph, a list item or a table row,
    and for a chart how many bars, lines and labels it draws."""
    t = Tree()
    t.feed(page)
    t.close()
    lines = []

    def walk(node, depth):
        for child in node[2]:
            tag, attrs = child[0], child[1]
            if tag in OUTLINE_TAGS:
                name = tag + (f"#{attrs['id']}" if "id" in attrs else "") + \
                    (f".{attrs['class']}" if "class" in attrs and tag != "svg" else "")
                if tag == "svg":
                    counts = {}

                    def count(n):
                        for c in n[2]:
                            counts[c[0]] = counts.get(c[0], 0) + 1
                            count(c)
                    count(child)
                    line = name + " " + " ".join(f"{k}={counts[k]}" for k in sorted(counts))
                elif tag in TEXT_TAGS:
                    line = f"{name}: {text_of(child)}"
                else:
                    line = name
                lines.append("  " * depth + line.rstrip())
                if tag not in TEXT_TAGS or tag == "li":
                    walk(child, depth + 1)
            else:
                walk(child, depth)
    walk(t.root, 0)
    return "\n".join(lines) + "\n"


class Golden(unittest.TestCase):
    def test_fixed_report_structure(self):
        p = harness.run_blast("report", "report.json", "--format", "html", "--no-db",
                              cwd=FIXTURES)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(harness.ROOT, "VERSION"), encoding="utf-8") as f:
            version = f.read().strip()
        got = structure(p.stdout).replace(f"blast {version}", "blast VERSION")
        golden = os.path.join(FIXTURES, "report.outline")
        if os.environ.get("BLAST_UPDATE_GOLDEN"):
            write(golden, got)
        with open(golden, encoding="utf-8") as f:
            want = f.read()
        self.assertEqual(got, want, "the page's structure changed (BLAST_UPDATE_GOLDEN=1 "
                         "rewrites tests/fixtures/page/report.outline; review the diff)")

    def test_same_report_same_page(self):
        """No clock, no randomness: a report gives one page."""
        args = ("report", os.path.join(FIXTURES, "report.json"), "--format", "html", "--no-db")
        self.assertEqual(harness.run_blast(*args).stdout, harness.run_blast(*args).stdout)


SECTIONS = ["outcome", "run", "timeline", "domains", "relays", "failures", "retries",
            "bounces", "security"]


class Page(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.browser = browser.Browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.stop()

    def tmp(self):
        d = tempfile.mkdtemp(prefix="blast-page-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def open_page(self, page, marker=None):
        """The page in Chromium: its DOM outline, after checking that no script ran and
        nothing the page names was fetched."""
        before = len(self.browser.requests)
        dom, urls = self.browser.dump_dom(page)
        o = outline(dom)
        self.assertNotIn("script", o.tags, "a <script> element in the DOM")
        for tag in ("img", "iframe", "object", "embed", "link", "form", "base", "meta"):
            if tag in ("meta", "link"):
                continue
            self.assertNotIn(tag, o.tags, f"a <{tag}> element in the DOM")
        page_urls = [u for u in urls if not u.startswith("file:") and
                     not re.match(r"https?://[^/]*\b(google|googleapis|gstatic|gvt1)\.com[:/]", u)]
        self.assertEqual(page_urls, [], "the page asked for something")
        caught = self.browser.requests[before:]
        if marker is not None:
            self.assertFalse([r for r in caught if marker in r], caught)
            self.assertFalse([u for u in urls if marker in u], urls)
        return o, dom

    def shot(self, page, name):
        png = os.path.join(os.path.dirname(page), name)
        self.browser.screenshot(page, png)
        colours, inked = browser.not_blank(png)
        self.assertGreater(colours, 20, "the screenshot is (nearly) one colour")
        self.assertGreater(inked, 0.02, "the screenshot is (nearly) blank")
        return png

    def check_figures(self, o, report):
        """The page's figures are the JSON report's."""
        self.assertEqual(o.sections, SECTIONS)
        total = len(report["recipients"])
        self.assertIn(f"{total:,} recipients", o.ids["outcome"])
        counts = {}
        for e in report["recipients"]:
            counts[e["status"]] = counts.get(e["status"], 0) + 1
        for status, n in counts.items():
            self.assertEqual(number(o.ids[f"status-{status}"]), n, status)
        for status in ("delivered", "deferred", "failed", "unknown"):
            if not report["campaign"]["dry_run"]:
                self.assertEqual(number(o.ids[f"status-{status}"]), counts.get(status, 0))
        # relays: the table's total and delivered columns
        rows = {r[0]: r for r in o.rows if len(r) == 8}
        by_relay = {}
        for e in report["recipients"]:
            if e.get("relay"):
                by_relay.setdefault(e["relay"], {}).setdefault(e["status"], 0)
                by_relay[e["relay"]][e["status"]] += 1
        for relay, c in by_relay.items():
            self.assertIn(relay, rows)
            self.assertEqual(number(rows[relay][2]), sum(c.values()), relay)
            self.assertEqual(number(rows[relay][3]), c.get("delivered", 0), relay)

    # ---- a realistic run ------------------------------------------------------------------

    def test_realistic_run(self):
        d = self.tmp()
        certs = servers.certificates(d)
        addresses = []
        for dom, n in DOMAINS:
            addresses += [f"reader{i:03d}@{dom}" for i in range(n)]
        script = servers.Script(
            rcpt={**{f"reader{i:03d}@gmail.com": "550 5.1.1 <reader%03d@gmail.com>: user unknown"
                     % i for i in range(0, 180, 23)},
                  **{f"reader{i:03d}@yahoo.com": "554 5.7.1 Message rejected under policy"
                     for i in range(0, 90, 30)},
                  **{f"reader{i:03d}@mail.ru": "550 5.2.1 Mailbox disabled"
                     for i in range(0, 20, 9)}},
            defer_first={**{f"reader{i:03d}@outlook.com": 2 for i in range(0, 80, 7)},
                         **{f"reader{i:03d}@gmx.de": 9 for i in range(0, 30, 10)}},
            defer_reply={**{f"reader{i:03d}@outlook.com": "450 4.2.1 Mailbox busy, try later"
                            for i in range(0, 80, 7)},
                         **{f"reader{i:03d}@gmx.de": "451 4.3.0 Temporary local problem"
                            for i in range(0, 30, 10)}})
        tls = servers.Scripted(script, tls=certs["good"], password="relay-secret")
        self.addCleanup(tls.stop)
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        for name, alg in (("dkim-throwaway-rsa.pem", ["-algorithm", "RSA", "-pkeyopt",
                                                       "rsa_keygen_bits:2048"]),
                          ("dkim-throwaway-ed.pem", ["-algorithm", "ED25519"])):
            subprocess.run(["openssl", "genpkey", *alg, "-out", os.path.join(d, name)],
                           check=True, capture_output=True)
        extra = ("rate: 60/s\nretry: {attempts: 3, initial: 1s, max: 2s, window: 1m}\n"
                 "dkim:\n  - {domain: acme.example, selector: nov2026, key: dkim-throwaway-rsa.pem}\n"
                 "  - {domain: acme.example, selector: ed2026, key: dkim-throwaway-ed.pem, "
                 "algorithm: ed25519-sha256}\n")
        cdir = campaign_dir("blast-page-run-", addresses, [
            {"name": "smarthost-tls", "host": "127.0.0.1", "port": tls.port, "tls": "starttls",
             "ca_file": certs["ca"], "username": "blast", "password_env": "RELAY_PASSWORD",
             "connections": 2, "messages_per_connection": 0},
            sink_relay(sink)], extra)
        self.addCleanup(shutil.rmtree, cdir, True)
        shutil.copy(os.path.join(d, "dkim-throwaway-rsa.pem"), cdir)
        shutil.copy(os.path.join(d, "dkim-throwaway-ed.pem"), cdir)
        report = os.path.join(cdir, "november-news.json")
        p = harness.run_blast("send", "campaign.yml", "--report", "november-news.json",
                              "--quiet", env={"RELAY_PASSWORD": "relay-secret"}, timeout=300,
                              cwd=cdir)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        r = harness.load_report(report)
        page = os.path.join(cdir, "november-news.html")
        text = render("november-news.json", page, cwd=cdir)
        self.assertLess(len(text), 200_000)

        o, _ = self.open_page(page)
        self.check_figures(o, r)
        self.assertEqual(o.title, "november-news: delivery report")
        # the run: pace against the configured rate, drawn as a line
        self.assertIn("configured rate", o.ids["run"])
        self.assertIn("60 a second", o.ids["rate"])
        self.assertIn("timeline-chart", o.ids)
        self.assertIn("rate-line", o.ids)
        # failures grouped by reason, most frequent first, with the server's text
        reasons = [row for row in o.rows if len(row) == 4 and row[0] != "recipients"]
        # which refusals a run meets depends on which relay each recipient went to: the
        # page must list exactly the report's, each with the server's own text
        failed = [e for e in r["recipients"] if e["status"] == "failed"]
        self.assertTrue(failed, "the scripted relay refused nobody")
        self.assertEqual({row[2] for row in reasons},
                         {f"{e['code']} {e['enhanced_code']}" for e in failed})
        for e in failed:
            text = re.sub(r"<[^>]*>", "<>", e["reply"])
            self.assertTrue(any(text in row[3] for row in reasons), (text, reasons))
        counts = [number(row[0]) for row in reasons if number(row[0]) is not None]
        self.assertEqual(counts, sorted(counts, reverse=True))
        # retries: the attempts per recipient as the report has them (a deferred
        # recipient may be retried on either relay, so how many took two or three
        # attempts varies from run to run; a dozen were deferred by the TLS relay)
        attempts = {}
        for e in r["recipients"]:
            attempts[e["attempts"]] = attempts.get(e["attempts"], 0) + 1
        self.assertGreater(max(attempts), 1, attempts)
        rows = {row[0]: row for row in o.rows if len(row) == 3 and row[0].isdigit()}
        # the page lists every count from 1 to the highest, those no recipient took too
        self.assertEqual({int(k): number(v[1]) for k, v in rows.items() if number(v[1])},
                         attempts)
        # DKIM and TLS facts
        self.assertIn("nov2026", o.ids["dkim"])
        self.assertIn("ed25519-sha256", o.ids["dkim"])
        tls_attempts = sum(1 for e in r["recipients"] for a in e["history"] if a.get("tls"))
        self.assertEqual(number(o.ids["tls-share"]), tls_attempts)
        self.assertIn("TLSv1.3", o.ids["tls-versions"])
        # domains: the busiest first
        self.assertIn("gmail.com", o.ids["domains"])
        self.shot(page, "run.png")
        # on a phone: the narrow layout still draws every section
        phone = os.path.join(cdir, "phone.png")
        self.browser.screenshot(page, phone, width=390, height=2400)
        colours, inked = browser.not_blank(phone)
        self.assertGreater(inked, 0.02)
        # printed: a PDF of several pages
        pdf = self.browser.print_pdf(page, os.path.join(cdir, "run.pdf"))
        with open(pdf, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"%PDF-"), data[:20])
        self.assertGreaterEqual(len(re.findall(rb"/Type\s*/Page\b", data)), 2)
        keep = os.environ.get("BLAST_PAGE_SCREENSHOT")
        if keep:
            self.browser.screenshot(page, keep, width=1000, height=3600)
            browser.trim(keep)

    # ---- 100,000 recipients ---------------------------------------------------------------

    def test_hundred_thousand_recipients(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        n = 100_000
        addresses = [f"subscriber.{i:06d}@mail{i % 300:03d}.example.com" for i in range(n)]
        cdir = campaign_dir("blast-page-100k-", addresses,
                            [dict(sink_relay(sink), connections=4)],
                            "retry: {attempts: 1}\n")
        self.addCleanup(shutil.rmtree, cdir, True)
        report = os.path.join(cdir, "r.json")
        p = harness.run_blast("send", os.path.join(cdir, "campaign.yml"), "--report", report,
                              "--quiet", timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        page = os.path.join(cdir, "r.html")
        text = render(report, page)
        # aggregates, not a row per recipient
        self.assertLess(len(text), 100_000)
        o, _ = self.open_page(page)
        self.assertEqual(o.sections, SECTIONS)
        self.assertIn("100,000 recipients", o.ids["outcome"])
        self.assertEqual(number(o.ids["status-delivered"]), n)
        self.assertIn("(15 of 300)", o.ids["domains"])
        self.assertIn("285 other domains", o.ids["domains"])
        # the link to every row
        self.assertIn("r.csv", o.ids["rows"])
        self.shot(page, "100k.png")

    # ---- a hostile report -----------------------------------------------------------------

    def test_hostile_report(self):
        d = self.tmp()
        marker = "fetch-marker.invalid"
        evil = [f"<script>document.title='pwned'</script>",
                f"\"><img src=\"http://{marker}/img\" onerror=\"document.title='pwned'\">",
                f"<iframe src=\"http://{marker}/frame\"></iframe>",
                f"</style><style>body{{background:url(http://{marker}/css)}}</style>",
                f"<link rel=stylesheet href=\"http://{marker}/link\">",
                f"<meta http-equiv=refresh content=\"0;url=http://{marker}/meta\">",
                f"<base href=\"http://{marker}/\"><form action=\"http://{marker}/f\">",
                "\u202eevil-right-to-left\u202c \u05e9\u05dc\u05d5\u05dd 'single' \"double\"",
                "\x7f\u0085<svg onload=\"document.title='pwned'\">"]
        long_line = "<script>x</script>" + "A" * 1_000_000
        stamp = "2026-12-05T10:00:00.000Z"
        recipients = []
        for i in range(60):
            text = evil[i % len(evil)]
            status = ["failed", "deferred", "delivered", "unknown", "bounced"][i % 5]
            entry = {
                "email": f"r{i}@{text.replace('@', '')[:200]}.example" if i % 3 else f"r{i}@x.example",
                "row": i + 1, "status": status, "code": 550 if status == "failed" else 250,
                "enhanced_code": "5.1.1", "reply": long_line if i == 0 else text,
                "step": "RCPT TO", "detail": text, "relay": text[:100], "attempts": 1,
                "message_id": f"<m{i}@acme.example>", "queue_id": text[:50], "size": 1000,
                "first_attempt": stamp, "last_attempt": stamp,
                "history": [{"time": stamp, "status": "failed" if status == "failed" else "delivered",
                             "relay": text[:100], "host": "127.0.0.1", "port": 25,
                             "tls": "TLSv1.3", "cipher": text[:60], "step": "RCPT TO",
                             "code": 550, "enhanced_code": "5.1.1", "reply": text,
                             "queue_id": None, "detail": None}],
            }
            if status == "bounced":
                entry["bounce"] = {"kind": "dsn", "class": "hard", "rule": text[:100],
                                   "status": "5.1.1", "diagnostic": text, "source": text,
                                   "time": stamp}
            recipients.append(entry)
        report = {"schema_version": 1,
                  "campaign": {"name": evil[0] + evil[7], "file": evil[1], "dry_run": False,
                               "test_to": None, "suppression_db": evil[2],
                               "fingerprint": evil[3], "shard": None,
                               "rate_per_second": 10,
                               "dkim": [{"domain": evil[1], "selector": evil[4],
                                         "algorithm": evil[5]}]},
                  "recipients": recipients,
                  "summary": {"total": 60, "start": evil[6], "end": evil[0],
                              "duration_seconds": 1.0, "messages_this_run": 12}}
        path = os.path.join(d, "hostile.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write('{"schema_version": 1,\n"campaign": ' + json.dumps(report["campaign"]) +
                    ',\n"recipients": [\n' + ",\n".join(json.dumps(e) for e in recipients) +
                    '\n],\n"summary": ' + json.dumps(report["summary"]) + "}\n")
        page = os.path.join(d, "hostile.html")
        text = render(path, page)
        self.assertLess(len(text), 200_000, "a 1 MB line reached the page")
        self.assertNotIn("<script", text)
        self.assertNotIn("<img", text)
        o, dom = self.open_page(page, marker)
        self.assertEqual(o.sections, SECTIONS)
        self.assertNotEqual(o.title, "pwned")
        self.assertIn("<script>document.title='pwned'</script>", o.title)
        self.assertNotIn("pwned", o.title.replace("document.title='pwned'", ""))
        self.assertIn("60 recipients", o.ids["outcome"])
        # right-to-left text stays isolated in <bdi>
        self.assertIn("<bdi>\u202eevil-right-to-left", dom)
        self.shot(page, "hostile.png")

    # ---- empty, dry run, merged -----------------------------------------------------------

    def test_empty_dry_run_and_merged(self):
        sink = servers.Sink()
        self.addCleanup(sink.stop)
        addresses = [f"user{i}@example.com" for i in range(40)]
        cdir = campaign_dir("blast-page-kinds-", addresses, [sink_relay(sink)])
        self.addCleanup(shutil.rmtree, cdir, True)
        camp = os.path.join(cdir, "campaign.yml")

        # a dry run
        dry = os.path.join(cdir, "dry.json")
        p = harness.run_blast("send", camp, "--dry-run", os.path.join(cdir, "out"),
                              "--report", dry, "--quiet")
        self.assertEqual(p.returncode, 0, p.stderr)
        page = os.path.join(cdir, "dry.html")
        render(dry, page)
        o, _ = self.open_page(page)
        self.check_figures(o, harness.load_report(dry))
        self.assertIn("dry run", o.ids["mode"])
        self.assertEqual(number(o.ids["status-rendered"]), 40)

        # two shards, merged
        shards = []
        for i in range(2):
            rep = os.path.join(cdir, f"shard{i}.json")
            p = harness.run_blast("send", camp, "--shard", f"{i}/2", "--report", rep, "--quiet")
            self.assertEqual(p.returncode, 0, p.stderr)
            shards.append(rep)
        merged = os.path.join(cdir, "merged.json")
        p = harness.run_blast("report", "--merge", *shards, "-o", merged)
        self.assertEqual(p.returncode, 0, p.stderr)
        page = os.path.join(cdir, "merged.html")
        render(merged, page)
        o, _ = self.open_page(page)
        self.check_figures(o, harness.load_report(merged))
        self.assertIn("2 shard reports", o.ids["merged"])
        shard_rows = [r for r in o.rows if len(r) == 5 and r[0] in ("0", "1")]
        self.assertEqual(sum(number(r[1]) for r in shard_rows), 40)
        # one shard's own page says which it is
        page = os.path.join(cdir, "shard1.html")
        render(shards[1], page)
        o, _ = self.open_page(page)
        self.assertIn("1 of 2", o.ids["shard"])

        # a campaign with nobody to send to: every row is on the suppression list
        empty = campaign_dir("blast-page-empty-", addresses[:5], [sink_relay(sink)],
                             "suppression: [unsubscribed.txt]\n")
        self.addCleanup(shutil.rmtree, empty, True)
        write(os.path.join(empty, "unsubscribed.txt"), "\n".join(addresses[:5]) + "\n")
        rep = os.path.join(empty, "r.json")
        p = harness.run_blast("send", os.path.join(empty, "campaign.yml"), "--report", rep,
                              "--quiet")
        self.assertEqual(p.returncode, 0, p.stderr)
        page = os.path.join(empty, "r.html")
        render(rep, page)
        o, _ = self.open_page(page)
        self.check_figures(o, harness.load_report(rep))
        self.assertEqual(number(o.ids["status-suppressed"]), 5)
        self.assertIn("No attempt was made.", o.ids["timeline"])

        # a report without a recipient (what a merge of nothing would be): every section
        # still there, and says so
        with open(rep, encoding="utf-8") as f:
            r = json.load(f)
        r["recipients"] = []
        r["summary"].update(total=0, by_status={}, by_domain={}, by_relay={}, by_code={},
                            top_failures=[], messages_this_run=0)
        nothing = os.path.join(empty, "nothing.json")
        write(nothing, json.dumps(r))
        page = os.path.join(empty, "nothing.html")
        render(nothing, page)
        o, _ = self.open_page(page)
        self.assertEqual(o.sections, SECTIONS)
        self.assertIn("0 recipients", o.ids["outcome"])
        self.assertIn("no recipients", o.ids["outcome"])
        self.shot(page, "nothing.png")


if __name__ == "__main__":
    unittest.main()
