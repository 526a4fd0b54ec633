#!/usr/bin/python3
"""Make the raw seed inputs of the fuzz harnesses from the project's own test data.

    tests/fuzz/seeds.py OUT

writes OUT/NAME/* for each harness: the campaign files of campaigns/ and
tests/fixtures/, the CSV lists, the templates and the Mustache specification's
tests (with their partials), the addresses, replies and reports written in the unit
tests and docs, the returned messages of tests/fixtures/bounces, and SMTP server transcripts of whole sessions. `make fuzz-seeds`
then keeps the inputs that add coverage (libFuzzer's -merge=1) in
tests/fuzz/corpus/NAME, which is committed.
"""

import glob
import hashlib
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def out(base, name, data):
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def c_strings(path):
    """The string literals of a C file, adjacent ones joined, escapes decoded."""
    text = read(path).decode("utf-8")
    lit = r'"(?:[^"\\\n]|\\.)*"'
    for m in re.finditer(r"(?:%s\s*)+" % lit, text):
        parts = re.findall(lit, m.group(0))
        raw = "".join(p[1:-1] for p in parts)
        try:
            yield raw.encode("latin-1", "backslashreplace").decode("unicode_escape").encode(
                "latin-1", "replace")
        except (UnicodeDecodeError, UnicodeEncodeError):
            continue


def campaign(base):
    for p in sorted(glob.glob(os.path.join(ROOT, "campaigns", "*.yml")) +
                    glob.glob(os.path.join(ROOT, "tests", "fixtures", "**", "*.yml"),
                              recursive=True)):
        out(base, "campaign", read(p))


def csv(base):
    files = glob.glob(os.path.join(ROOT, "tests", "fixtures", "**", "*.csv"), recursive=True)
    files += glob.glob(os.path.join(ROOT, "tests", "fixtures", "csv", "*.tsv"))
    files += glob.glob(os.path.join(ROOT, "campaigns", "*.csv"))
    for p in sorted(files):
        data = read(p)
        # options byte: the delimiter (0 ',', 1 ';', 2 tab), small limits for a few
        delim = 2 if p.endswith(".tsv") else 1 if b";" in data.split(b"\n")[0] else 0
        out(base, "csv", bytes([delim]) + data)
        out(base, "csv", bytes([delim | 4]) + data)


def template(base):
    files = glob.glob(os.path.join(ROOT, "templates", "*"))
    files += glob.glob(os.path.join(ROOT, "tests", "fixtures", "**", "*.txt"), recursive=True)
    files += glob.glob(os.path.join(ROOT, "tests", "fixtures", "**", "*.html"), recursive=True)
    for p in sorted(files):
        mode = 1 if p.endswith(".html") else 0
        out(base, "template", bytes([mode | 4]) + read(p))
    for p in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "mustache", "*.json"))):
        with open(p, encoding="utf-8") as f:
            spec = json.load(f)
        for t in spec.get("tests", []):
            partials = t.get("partials", {})
            names = list(partials)
            # the harness's partials are named p and q: rename the test's first two
            text = t["template"]
            for new, old in zip(("p", "q"), names):
                text = re.sub(r"(\{\{>\s*)%s(\s*\}\})" % re.escape(old), r"\g<1>%s\2" % new, text)
            data = bytes([0]) + text.encode("utf-8")
            for old in names[:2]:
                data += b"\0" + partials[old].encode("utf-8")
            out(base, "template", data)
            out(base, "template", bytes([1]) + data[1:])


def address(base):
    for s in c_strings("tests/unit/test_address.c"):
        if 0 < len(s) < 300:
            out(base, "address", s)
    for s in c_strings("tests/unit/test_screen.c"):
        if b"@" in s and len(s) < 300:
            out(base, "address", s)


def classify(base):
    # the status, action and diagnostic texts of test_classify.c, NUL-separated
    strings = [x for x in c_strings("tests/unit/test_classify.c") if len(x) < 400]
    for i in range(0, len(strings) - 2, 2):
        out(base, "classify", b"\0".join(strings[i:i + 3]))
    for s in strings:
        out(base, "classify", b"\0failed\0" + s)


def bounce(base):
    # the real messages of tests/fixtures/bounces/
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/bounces/*.eml"))):
        out(base, "bounce", read(path))


def reply(base):
    for s in c_strings("tests/unit/test_smtp.c"):
        if re.match(rb"^[2-5][0-9][0-9][ -]", s):
            out(base, "reply", s)
    for t in SESSIONS:
        out(base, "reply", "".join(t[1]).encode("utf-8"))


def report(base):
    for s in c_strings("tests/unit/test_reportread.c"):
        if s.startswith(b"{"):
            out(base, "report", s)
    md = read("docs/report.md").decode("utf-8")
    for block in re.findall(r"```json\n(.*?)```", md, re.S):
        out(base, "report", block)


def jsontape(base):
    # the flags byte (0: an object or an array at the top; 1: any value; 2: NUL allowed),
    # then texts: the unit tests' JSON, report entries and journal records
    texts = []
    for f in ("tests/unit/test_jsontape.c", "tests/unit/test_outcome.c",
              "tests/unit/test_reportread.c", "tests/unit/test_journal.c"):
        texts += [s for s in c_strings(f) if s[:1] in (b"{", b"[", b" ", b"\"")]
    md = read("docs/report.md").decode("utf-8")
    for block in re.findall(r"```json\n(.*?)```", md, re.S):
        texts.append(block.encode("utf-8"))
    for t in texts:
        out(base, "jsontape", b"\x00" + t)
    for t in (b"1", b"-0.5e-3", b"\"a\\u0000b\"", b"null", b"[\"\\ud83d\\ude00\"]"):
        out(base, "jsontape", b"\x01" + t)
        out(base, "jsontape", b"\x03" + t)


GREETING = "220 mx.example.com ESMTP Postfix\r\n"
EHLO_FULL = ("250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
             "250-ETRN\r\n250-AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2\r\n250-ENHANCEDSTATUSCODES\r\n"
             "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n")
EHLO_PLAIN = "250-mx.example.com Hello\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"
MAIL = "250 2.1.0 Ok\r\n"
RCPT = "250 2.1.5 Ok\r\n"
GO = "354 End data with <CR><LF>.<CR><LF>\r\n"
QUEUED = "250 2.0.0 Ok: queued as 7F3A21C0\r\n"
UNKNOWN = "550 5.1.1 <jorg@bucher.example>: unknown\r\n"
BDAT_TXN = "250 2.0.0 Ok\r\n" + MAIL + RCPT + "250 2.0.0 Ok: queued as B1\r\n"
QUIT = "221 2.0.0 Bye\r\n"


def lockstep(*txns):
    """The turns of lock-step transactions (one reply a command): each txn a list of replies."""
    return [r for t in txns for r in t]


def pipelined(*txns):
    """The turns of pipelined transactions: envelope replies, then each end of data with the
    next envelope's replies (RFC 2920: one write a round)."""
    turns, carry = [], ""
    for env, eod in txns:
        turns.append(carry + env)
        carry = eod
    return turns + [carry] if carry else turns


# (options byte, the server's turns): see fuzz_session.c for the options
SESSIONS = [
    (0x00, [GREETING, EHLO_PLAIN] + lockstep([MAIL, RCPT, GO, QUEUED]) + [QUIT]),
    (0x40, [GREETING, EHLO_PLAIN] + lockstep([MAIL, RCPT, GO, QUEUED],
                                             [MAIL, RCPT, UNKNOWN, GO, QUEUED]) + [QUIT]),
    (0xC0, [GREETING, EHLO_FULL] + pipelined((MAIL + RCPT + GO, QUEUED),
                                             (MAIL + RCPT + UNKNOWN + GO, QUEUED),
                                             (MAIL + RCPT + GO, QUEUED),
                                             (MAIL + RCPT + GO, QUEUED)) + [QUIT]),
    (0xC3, [GREETING, EHLO_FULL, "235 2.7.0 Authentication successful\r\n"] +
     pipelined((MAIL + RCPT + GO, QUEUED), (MAIL + RCPT + UNKNOWN + GO, QUEUED),
               (MAIL + RCPT + GO, QUEUED), (MAIL + RCPT + GO, QUEUED)) + [QUIT]),
    (0x05, [GREETING, EHLO_PLAIN, "334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n",
            "235 2.7.0 Authentication successful\r\n"] + lockstep([MAIL, RCPT, GO, QUEUED]) +
     [QUIT]),
    (0x47, [GREETING, EHLO_FULL, "334 PDQxOTI5NDIzNDEuMTI4Mjg0NzJAc291cmNlZm91ci5hbmRyZXcu"
            "Y211LmVkdT4=\r\n", "235 2.7.0 Authentication successful\r\n"] +
     pipelined((MAIL + RCPT + GO, QUEUED), (MAIL + RCPT + UNKNOWN + GO, QUEUED)) + [QUIT]),
    (0x09, [GREETING, EHLO_FULL, "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n", "535 5.7.8 bad token\r\n"]),
    (0x01, [GREETING, EHLO_PLAIN, "535 5.7.8 Authentication credentials invalid\r\n"]),
    (0x0B, [GREETING, EHLO_FULL, "334 \r\n", "501 5.7.0 cancelled\r\n"]),
    (0x05, [GREETING, EHLO_PLAIN, "334 Username:\r\n", "501 5.7.0 cancelled\r\n"]),
    (0xD0, [GREETING, EHLO_FULL, BDAT_TXN * 4, QUIT]),
    (0x70, [GREETING, EHLO_FULL, BDAT_TXN + BDAT_TXN.replace("250 2.1.5", "452 4.5.3"), QUIT]),
    (0xE0, [GREETING, EHLO_FULL] + pipelined((MAIL + RCPT + "354 go\r\n", "250 2.0.0 Ok: queued as X1\r\n"),
                                             (MAIL + RCPT + "550 5.1.1 no\r\n354 go\r\n",
                                              "451 4.3.0 try later\r\n")) + [QUIT]),
    (0x80, [GREETING, EHLO_FULL, MAIL + "421 4.7.0 too many messages\r\n"]),
    (0x40, [GREETING, EHLO_PLAIN] + lockstep([MAIL, RCPT, GO, QUEUED]) + ["421 4.4.2 timeout\r\n"]),
    (0x00, ["554 5.7.1 go away\r\n"]),
    (0x00, [GREETING, "502 5.5.2 EHLO not known\r\n", "250 mx.example.com\r\n"] +
     lockstep([MAIL, RCPT, GO, QUEUED]) + [QUIT]),
    (0x00, ["220-mx.example.com first\r\n220 second\r\n", EHLO_PLAIN,
            "550 5.7.1 sender refused\r\n", "250 2.0.0 reset\r\n", QUIT]),
    (0x80, [GREETING, EHLO_FULL] + pipelined((MAIL + "550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n", ""),
                                             ("250 2.0.0 reset\r\n" + MAIL + RCPT + "354 go\r\n",
                                              "250 2.0.0 Ok\r\n")) + [QUIT]),
    # out of step: a 250 to DATA, a reply too many, a continuation that changes code, two greetings
    (0x40, [GREETING, EHLO_FULL, MAIL + RCPT + "250 2.0.0 Ok\r\n"]),
    (0x40, [GREETING, EHLO_FULL, MAIL + RCPT + GO, QUEUED + MAIL + RCPT + GO + "250 2.0.0 Ok\r\n"]),
    (0x40, [GREETING, EHLO_FULL, MAIL + RCPT + GO, "250-2.0.0 Ok\r\n251 2.0.0 queued\r\n"]),
    (0x00, [GREETING + GREETING, EHLO_PLAIN]),
    (0x00, [GREETING, EHLO_PLAIN, MAIL, RCPT, GO + "250 2.0.0 early\r\n", QUEUED]),
]


def session(base):
    for opts, turns in SESSIONS:
        out(base, "session", bytes([opts]) + "\0".join(turns).encode("utf-8"))


def main():
    base = sys.argv[1]
    campaign(base)
    csv(base)
    template(base)
    address(base)
    classify(base)
    bounce(base)
    reply(base)
    report(base)
    jsontape(base)
    session(base)
    for name in sorted(os.listdir(base)):
        print("seeds: %-9s %d inputs" % (name, len(os.listdir(os.path.join(base, name)))))


if __name__ == "__main__":
    main()
