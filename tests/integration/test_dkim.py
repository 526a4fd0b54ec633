"""DKIM signatures checked by an independent verifier: Debian's python3-dkim (dkimpy).

Keys are throwaway keys made here with the openssl command (RSA-2048 and Ed25519).
The public key records are the ones `blast check` prints, handed to dkimpy through
its dnsfunc, so the test also checks what a user would publish. Messages come from
the shapes of the MIME matrix (text only; text and HTML; attachments and an inline
image with List-Unsubscribe one-click and Feedback-ID), over rows with non-ASCII
subjects and display names and a line of 2,000 characters, rendered by
`send --dry-run`, by `preview`, and sent to smtp-sink. Every signature must
verify; one changed byte, or a List-Unsubscribe-Post added afterwards, must not.
"""

import csv
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import dkim

from tests.integration import harness, servers
from tests.integration.test_mime import PNG, ROWS

TEXT = "Hello {{first}},\n.a line that starts with a dot\nCity: {{city}}   \n\n\n"
HTML = "<p>Hello {{first}} from <b>{{city}}</b></p>\n<img src=\"cid:logo\" alt=\"logo\">\n"

SHAPES = {
    "text": "body:\n  text: body.txt\n",
    "html": "body:\n  text: body.txt\n  html: body.html\n",
    "full": """body:
  text: body.txt
  html: body.html
attachments:
  - {path: prices.pdf, name: "Prix d'été.pdf"}
inline:
  - {path: logo.png, cid: logo}
headers:
  X-Campaign: "dkim {{note}}"
list_unsubscribe:
  url: "https://acme.example/u?e={{email}}"
  mailto: unsubscribe@acme.example
  one_click: true
feedback_id: "dkim:{{campaign}}:acme"
""",
}

SIGNERS = {
    "rsa": "dkim: {domain: acme.example, selector: rsa2026, key: rsa.pem}\n",
    "ed25519": "dkim: {domain: acme.example, selector: ed2026, key: ed.pem, "
               "algorithm: ed25519-sha256}\n",
    "both": """dkim:
  - {domain: acme.example, selector: rsa2026, key: rsa.pem}
  - {domain: mail.acme.example, selector: ed2026, key: ed.pem, algorithm: ed25519-sha256}
""",
}


def campaign(name, shape, signer, port=2525):
    return (f"name: {name}\n"
            "from: \"Acme Ñews <news@acme.example>\"\n"
            "reply_to: help@acme.example\n"
            "subject: \"{{first}}, news for {{city}} ✓\"\n"
            "recipients: {path: list.csv, name_column: name}\n"
            + SHAPES[shape] + SIGNERS[signer] +
            f"relays: [{{host: 127.0.0.1, port: {port}, tls: none}}]\n")


def signatures(raw):
    """How many DKIM-Signature fields the message has."""
    return len(re.findall(rb"(?mi)^DKIM-Signature:", raw))


class Dkim(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = d = tempfile.mkdtemp(prefix="blast-dkim-")
        for name, alg in (("rsa.pem", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                          ("ed.pem", ["-algorithm", "ed25519"])):
            subprocess.run(["openssl", "genpkey", *alg, "-out", os.path.join(d, name)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(os.path.join(d, name), 0o600)
        with open(os.path.join(d, "list.csv"), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["email", "name", "first", "city", "note"])
            for r in ROWS:
                w.writerow(list(r))
        for name, text in (("body.txt", TEXT), ("body.html", HTML)):
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        with open(os.path.join(d, "prices.pdf"), "wb") as f:
            f.write(b"%PDF-1.4\n% not really a PDF\n" + bytes(range(256)) * 40)
        with open(os.path.join(d, "logo.png"), "wb") as f:
            f.write(PNG)
        cls.records = {}
        cls.out = {}
        for signer in SIGNERS:
            for shape in SHAPES:
                if signer != "both" and shape != "full":
                    continue
                name = f"{shape}-{signer}"
                path = os.path.join(d, name + ".yml")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(campaign(name, shape, signer))
                p = harness.run_blast("check", path, cwd=d)
                assert p.returncode == 0, p.stdout + p.stderr
                # zone-file form: strings of at most 255 characters, joined by verifiers
                for m in re.finditer(r"(?m)^dkim\s+(\S+) TXT((?: \"[^\"]{1,255}\")+)$", p.stdout):
                    cls.records[m.group(1)] = "".join(re.findall(r"\"([^\"]*)\"", m.group(2)))
                out = os.path.join(d, "out-" + name)
                p = harness.run_blast("send", path, "--dry-run", out, "--report",
                                      os.path.join(d, name + ".json"), cwd=d)
                assert p.returncode == 0, p.stderr
                cls.out[name] = out

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def dns(self, name, timeout=5, **kw):
        name = name.decode() if isinstance(name, bytes) else name
        record = self.records.get(name.rstrip("."))
        return record.encode() if record is not None else None

    def verify_all(self, raw):
        """Each signature's verdict, in order."""
        out = []
        for i in range(signatures(raw)):
            try:
                out.append(dkim.DKIM(raw).verify(idx=i, dnsfunc=self.dns))
            except dkim.ValidationError:
                out.append(False)
        return out

    def messages(self, name):
        out = self.cls_out(name)
        for i in range(1, len(ROWS) + 1):
            with open(os.path.join(out, f"{i}.eml"), "rb") as f:
                yield i, f.read()

    def cls_out(self, name):
        return type(self).out[name]

    def test_check_prints_the_records(self):
        self.assertRegex(self.records["rsa2026._domainkey.acme.example"],
                         r"^v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A[A-Za-z0-9+/=]+$")
        self.assertRegex(self.records["ed2026._domainkey.mail.acme.example"],
                         r"^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$")

    def test_every_shape_verifies_with_both_signatures(self):
        for shape in SHAPES:
            for i, raw in self.messages(f"{shape}-both"):
                with self.subTest(shape=shape, row=i, note=ROWS[i - 1][4]):
                    self.assertEqual(signatures(raw), 2)
                    self.assertEqual(self.verify_all(raw), [True, True])
                    self.assertTrue(raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;"))
                    head = raw.split(b"\r\n\r\n", 1)[0]
                    for line in head.split(b"\r\n"):
                        if line.startswith(b"DKIM-Signature") or line[:1] == b"\t":
                            self.assertLessEqual(len(line), 78, line)

    def test_rsa_alone_and_ed25519_alone(self):
        for signer, alg in (("rsa", b"rsa-sha256"), ("ed25519", b"ed25519-sha256")):
            for i, raw in self.messages(f"full-{signer}"):
                with self.subTest(signer=signer, row=i):
                    self.assertEqual(signatures(raw), 1)
                    self.assertIn(b"a=" + alg + b";", raw)
                    self.assertTrue(dkim.verify(raw, dnsfunc=self.dns))

    def test_one_changed_byte_fails(self):
        _, raw = next(self.messages("full-both"))
        head, body = raw.split(b"\r\n\r\n", 1)
        # in the body: a letter or digit half-way, so that the change is not white space
        k = re.compile(rb"[A-Za-z0-9]").search(body, len(body) // 2).start()
        other = b"x" if body[k:k + 1] != b"x" else b"y"
        bad = head + b"\r\n\r\n" + body[:k] + other + body[k + 1:]
        self.assertEqual(self.verify_all(bad), [False, False])
        # in a signed header field
        bad = raw.replace(b"Message-ID: <", b"Message-ID: <x", 1)
        self.assertNotEqual(bad, raw)
        self.assertEqual(self.verify_all(bad), [False, False])
        # an unsigned field may change: X-Campaign is not in h=
        ok = raw.replace(b"X-Campaign: dkim", b"X-Campaign: dkin", 1)
        self.assertNotEqual(ok, raw)
        self.assertEqual(self.verify_all(ok), [True, True])

    def test_list_unsubscribe_is_signed_and_oversigned(self):
        _, raw = next(self.messages("full-both"))
        for sig in re.findall(rb"(?ms)^DKIM-Signature:.*?(?=^\S)", raw):
            h = re.search(rb"h=([^;]+);", sig).group(1)
            names = [n.strip().lower() for n in re.sub(rb"\s+", b"", h).split(b":")]
            for name in (b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"):
                self.assertEqual(names.count(name), 2, (name, names))
            for name in (b"to", b"date", b"message-id", b"mime-version", b"content-type",
                         b"reply-to", b"feedback-id"):
                self.assertEqual(names.count(name), 1, (name, names))
            for name in (b"received", b"return-path", b"bcc", b"x-campaign"):
                self.assertNotIn(name, names)
        # a second List-Unsubscribe-Post, added after signing, breaks both signatures
        head, body = raw.split(b"\r\n\r\n", 1)
        added = head + b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n" + body
        self.assertEqual(self.verify_all(added), [False, False])

    def test_preview_is_signed(self):
        out = os.path.join(self.dir, "preview.eml")
        p = harness.run_blast("preview", "full-both.yml", "--row", "3", "-o", out, cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            raw = f.read()
        self.assertEqual(self.verify_all(raw), [True, True])

    def test_sent_to_smtp_sink(self):
        sink = servers.Sink()
        try:
            path = os.path.join(self.dir, "sink.yml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(campaign("sink", "full", "both", port=sink.port))
            p = harness.run_blast("send", path, "--fresh", "--journal",
                                  os.path.join(self.dir, "sink.journal"), "--report",
                                  os.path.join(self.dir, "sink.json"), cwd=self.dir)
            self.assertEqual(p.returncode, 0, p.stderr)
            files = sink.messages()
            self.assertEqual(len(files), len(ROWS))
            for path in files:
                with open(path, "rb") as f:
                    dumped = f.read()
                # smtp-sink writes LF line ends and its own X-* and Received fields first
                raw = re.sub(rb"\r?\n", b"\r\n", dumped)
                with self.subTest(file=os.path.basename(path)):
                    self.assertEqual(self.verify_all(raw), [True, True])
        finally:
            sink.stop()

    def test_check_refuses_a_bad_key_with_its_place(self):
        path = os.path.join(self.dir, "bad.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(campaign("bad", "text", "rsa").replace("key: rsa.pem", "key: ed.pem"))
        p = harness.run_blast("check", path, cwd=self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, r"bad\.yml:\d+:\d+: dkim key .*ed\.pem: an Ed25519 key, "
                                   r"but algorithm is rsa-sha256")
        p = harness.run_blast("send", path, "--dry-run", os.path.join(self.dir, "bad-out"),
                              cwd=self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "bad-out", "1.eml")))


if __name__ == "__main__":
    unittest.main()
