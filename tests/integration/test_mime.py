"""Every message blast builds, parsed by an independent parser (Python's email package).

The campaign here uses every part of the MIME builder: text and HTML bodies, an
attachment of 10 MB, a PDF, an inline image, custom headers, List-Unsubscribe with
one-click, Feedback-ID, and rows in many scripts with the awkward cases: a line of
2,000 characters, lines starting with '.', a body holding "\\n.\\n" and a lone CR, and
a display name that tries to add a Bcc header. Each message must parse without a
single defect, and its decoded subject, bodies and attachments must equal what the
templates and files say, byte for byte.
"""

import csv
import email
import email.policy
import os
import re
import shutil
import tempfile
import unittest

from tests.integration import harness

ROWS = [
    # email, name, first, city, note
    ("ivan@example.com", "Иван Петров", "Иван", "Москва", "plain"),
    ("mei@example.org", "王美", "美", "北京", "cjk"),
    ("sam@example.net", "Sam 🚀 Rivera", "Sam 🎉", "Austin", "emoji"),
    ("noa@example.com", "נועה כהן", "נועה", "תל אביב", "rtl"),
    ("omar@example.org", "عمر الخيام", "عمر", "نيشابور", "rtl-arabic"),
    ("mallory@example.net", "Mallory\r\nBcc: x@evil.example", "Mal\r\nBcc: y@evil.example",
     "Nowhere", "injection"),
    ("long@example.com", "Long Line", "L" * 2000, "Far", "long"),
    ("dots@example.org", "Dot Person", ".", "\n.\n", "dots"),
    ("cr@example.net", "Carriage Return", "a\rb", "c\rd", "lone-cr"),
    ("plain@example.com", "Plain Ascii", "Plain", "Springfield", "ascii"),
]

TEXT = ("Hello {{first}},\n"
        ".a line that starts with a dot\n"
        "..and one with two\n"
        "City: {{city}}\n"
        "{{#vip}}You are a VIP.\n{{/vip}}"
        "{{^vip}}You are not a VIP.\n{{/vip}}"
        "{{> footer}}")
FOOTER_TXT = "-- \n{{company}} · {{address.city}}\n"
HTML = ("<p>Hello {{first}} from <b>{{city}}</b></p>\n"
        "<img src=\"cid:logo\" alt=\"logo\">\n"
        "{{#links}}<a href=\"{{url}}\">{{title}}</a>\n{{/links}}"
        "{{> footer}}")
FOOTER_HTML = "<footer>{{company}} &amp; friends, {{address.city}}</footer>\n"
CAMPAIGN = """name: mime-matrix
from: "Acme Ñews <news@acme.example>"
reply_to: help@acme.example
subject: "{{first}}, news for {{city}} ✓"
recipients:
  path: list.csv
  name_column: name
body:
  text: body.txt
  html: body.html
attachments:
  - big.bin
  - {path: prices.pdf, name: "Prix d'été.pdf"}
inline:
  - {path: logo.png, cid: logo}
headers:
  X-Campaign: "mime-matrix {{note}}"
  X-Greeting: "{{first}}"
list_unsubscribe:
  url: "https://acme.example/u?e={{email}}&c={{campaign}}"
  mailto: unsubscribe@acme.example
  one_click: true
feedback_id: "mime:{{campaign}}:acme"
vars:
  company: Acme
  address: {city: Springfield}
  links:
    - {url: "https://acme.example/a?x=1&y=2", title: "A & B"}
    - {url: "https://acme.example/b", title: "C"}
relays:
  - host: 127.0.0.1
    port: 2525
    tls: none
"""

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000105e1d7b50000000049454e44ae426082")


def header_safe(s):
    """What a header shows of a value: a CRLF becomes one space, other controls a space."""
    s = s.replace("\r\n", " ")
    return re.sub(r"[\x00-\x1f\x7f]", " ", s).strip(" ")


def render(template, values, html=False):
    return harness.render(template, values, html)


def sections(text, vip, html=False):
    text = re.sub(r"\{\{#vip\}\}(.*?)\{\{/vip\}\}", lambda m: m.group(1) if vip else "", text,
                  flags=re.S)
    text = re.sub(r"\{\{\^vip\}\}(.*?)\{\{/vip\}\}", lambda m: "" if vip else m.group(1), text,
                  flags=re.S)
    if html:
        text = re.sub(r"\{\{#links\}\}.*?\{\{/links\}\}",
                      '<a href="https://acme.example/a?x=1&amp;y=2">A &amp; B</a>\n'
                      '<a href="https://acme.example/b">C</a>\n', text, flags=re.S)
        return text.replace("{{> footer}}", FOOTER_HTML)
    return text.replace("{{> footer}}", FOOTER_TXT)


class MimeMatrix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="blast-mime-")
        d = cls.dir
        with open(os.path.join(d, "list.csv"), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["email", "name", "first", "city", "note", "vip"])
            for i, r in enumerate(ROWS):
                w.writerow(list(r) + ["yes" if i % 2 == 0 else ""])
        for name, text in (("body.txt", TEXT), ("body.html", HTML), ("campaign.yml", CAMPAIGN)):
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        os.mkdir(os.path.join(d, "templates"))
        with open(os.path.join(d, "templates", "footer.txt"), "w", encoding="utf-8") as f:
            f.write(FOOTER_TXT)
        with open(os.path.join(d, "templates", "footer.html"), "w", encoding="utf-8") as f:
            f.write(FOOTER_HTML)
        cls.big = os.urandom(10 * 1024 * 1024)
        with open(os.path.join(d, "big.bin"), "wb") as f:
            f.write(cls.big)
        cls.pdf = b"%PDF-1.4\n% not really a PDF\n" + bytes(range(256)) * 40
        with open(os.path.join(d, "prices.pdf"), "wb") as f:
            f.write(cls.pdf)
        with open(os.path.join(d, "logo.png"), "wb") as f:
            f.write(PNG)
        cls.out = os.path.join(d, "out")
        p = harness.run_blast("send", "campaign.yml", "--dry-run", cls.out, "--report",
                              "report.json", cwd=d, timeout=600)
        cls.result = p

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_dry_run_renders_every_row(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        self.assertEqual(sorted(os.listdir(self.out)),
                         sorted([".blast-dry-run"] + [f"{i}.eml" for i in range(1, len(ROWS) + 1)]))

    def test_every_message_parses_and_round_trips(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        for i, row in enumerate(ROWS, start=1):
            addr, name, first, city, note = row
            with self.subTest(row=i, note=note):
                with open(os.path.join(self.out, f"{i}.eml"), "rb") as f:
                    raw = f.read()
                self.check_wire_form(raw)
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                self.assertEqual(harness.all_defects(msg), [])
                values = {"email": addr, "name": name, "first": first, "city": city,
                          "note": note, "campaign": "mime-matrix", "company": "Acme",
                          "address.city": "Springfield"}
                vip = (i - 1) % 2 == 0
                self.assertEqual(msg["Subject"], header_safe(f"{first}, news for {city} ✓"))
                self.assertEqual(msg["To"].addresses[0].display_name, header_safe(name))
                self.assertEqual(msg["To"].addresses[0].addr_spec, addr)
                self.assertIsNone(msg["Bcc"])
                self.assertEqual(msg["From"].addresses[0].display_name, "Acme Ñews")
                self.assertEqual(msg["X-Campaign"], header_safe(f"mime-matrix {note}"))
                self.assertEqual(msg["X-Greeting"], header_safe(first))
                self.assertEqual(msg["Feedback-ID"], "mime:mime-matrix:acme")
                self.assertEqual(msg["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
                unsub = str(msg["List-Unsubscribe"])
                quoted = addr.replace("@", "%40")
                self.assertIn(f"<https://acme.example/u?e={quoted}&c=mime-matrix>", unsub)
                self.assertIn("<mailto:unsubscribe@acme.example?subject=unsubscribe>", unsub)
                self.assertEqual(msg.get_content_type(), "multipart/mixed")

                text = msg.get_body(("plain",)).get_content()
                want = render(sections(TEXT, vip), values)
                # the message carries CRLF line ends; a lone CR stays data
                self.assertEqual(text, re.sub(r"\r?\n", "\r\n", want))
                html = msg.get_body(("html",)).get_content()
                self.assertEqual(html, re.sub(r"\r?\n", "\r\n",
                                              render(sections(HTML, vip, html=True), values,
                                                     html=True)))
                related = msg.get_body(("related",))
                self.assertIsNotNone(related)
                images = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
                self.assertEqual(len(images), 1)
                self.assertEqual(images[0]["Content-ID"], "<logo>")
                self.assertEqual(images[0].get_content(), PNG)

                atts = list(msg.iter_attachments())
                self.assertEqual([a.get_filename() for a in atts], ["big.bin", "Prix d'été.pdf"])
                self.assertEqual(atts[0].get_content_type(), "application/octet-stream")
                self.assertEqual(atts[0].get_content(), self.big)
                self.assertEqual(atts[1].get_content_type(), "application/pdf")
                self.assertEqual(atts[1].get_content(), self.pdf)

    def check_wire_form(self, raw):
        """CRLF only, no line over 998 octets, headers folded at 78 where they can be."""
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))
        self.assertNotIn(b"\r", raw.replace(b"\r\n", b""))
        head, _, body = raw.partition(b"\r\n\r\n")
        for line in raw.split(b"\r\n"):
            self.assertLessEqual(len(line), 998)
        for line in head.split(b"\r\n"):
            if not line.startswith(b"List-Unsubscribe:") and b"https://" not in line:
                self.assertLessEqual(len(line), 78, line)
            self.assertTrue(all(b < 0x80 for b in line), line)
        self.assertTrue(all(b < 0x80 for b in body))


class Preview(unittest.TestCase):
    def test_preview_by_row_and_email(self):
        campaign = os.path.join(harness.ROOT, "campaigns", "example.yml")
        p = harness.run_blast("preview", campaign, "--row", "7")
        self.assertEqual(p.returncode, 0, p.stderr)
        msg = email.message_from_string(p.stdout, policy=email.policy.default)
        self.assertEqual(msg["To"].addresses[0].addr_spec, "ivan@xn--e1afmkfd.xn--p1ai")
        p2 = harness.run_blast("preview", campaign, "--email", "ivan@пример.рф")
        self.assertEqual(p2.returncode, 0, p2.stderr)
        self.assertEqual(email.message_from_string(p2.stdout, policy=email.policy.default)
                         ["Subject"], msg["Subject"])

    def test_preview_to_a_file(self):
        campaign = os.path.join(harness.ROOT, "campaigns", "example.yml")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "m.eml")
            p = harness.run_blast("preview", campaign, "-o", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out, "rb") as f:
                self.assertTrue(f.read().startswith(b"Date: "))

    def test_preview_errors(self):
        campaign = os.path.join(harness.ROOT, "campaigns", "example.yml")
        p = harness.run_blast("preview", campaign, "--row", "999")
        self.assertEqual(p.returncode, 2)
        self.assertIn("there is no row 999 (the list has 22 rows)", p.stderr)
        p = harness.run_blast("preview", campaign, "--email", "nobody@example.com")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no row has the address nobody@example.com", p.stderr)
        p = harness.run_blast("preview", campaign, "--row", "22")
        self.assertEqual(p.returncode, 0)
        self.assertIn("row 22 is suppressed", p.stderr)


if __name__ == "__main__":
    unittest.main()
