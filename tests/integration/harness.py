"""Shared pieces of the integration tests: a real Postfix relay, blast runs, mail checks.

Everything listens on 127.0.0.1 only. The relay is a private Postfix instance started
by scripts/localrelay.py (STARTTLS required, SASL AUTH, delivery into one Maildir);
it is started once per test module and stopped at the end.
"""

import email
import email.policy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import localrelay  # noqa: E402

BLAST = os.environ.get("BLAST") or os.path.join(ROOT, "build", "blast")
# No recipient domain is looked up in DNS unless a test points blast at its own server
# on loopback (docs/campaign.md, "Providers"): the tests' domains are fictional, and no
# query may leave the machine.
os.environ.setdefault("BLAST_DNS_SERVERS", "off")
SCHEMA = os.path.join(ROOT, "docs", "report.schema.json")
_validator = None


def check_report(report):
    """Raise AssertionError unless report (a parsed report) follows docs/report.schema.json
    and its summary agrees with its recipients."""
    global _validator
    import jsonschema
    if _validator is None:
        with open(SCHEMA, encoding="utf-8") as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        _validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(_validator.iter_errors(report), key=lambda e: list(e.absolute_path))
    if errors:
        raise AssertionError("report does not follow the schema: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]))
    recipients, summary = report["recipients"], report["summary"]
    if summary["total"] != len(recipients):
        raise AssertionError(f"summary total {summary['total']} != {len(recipients)} recipients")
    counts, rows = {}, set()
    for e in recipients:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
        if e["row"] in rows:
            raise AssertionError(f"row {e['row']} twice in the report")
        rows.add(e["row"])
        if e["attempts"] < len(e["history"]):
            raise AssertionError(f"row {e['row']}: more history than attempts")
    for status, n in summary["by_status"].items():
        if counts.get(status, 0) != n:
            raise AssertionError(f"summary says {n} {status}, the recipients {counts.get(status, 0)}")
    if [e["row"] for e in recipients] != sorted(rows):
        raise AssertionError("recipients are not in row order")


def load_report(path):
    """A report file, parsed and checked (check_report)."""
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    check_report(report)
    return report


class Relay:
    """A throwaway Postfix relay on loopback (see scripts/localrelay.py)."""

    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="blast-relay-")
        self.info = localrelay.start(self.work)
        self.port = self.info["port"]
        self.password = self.info["password"]
        self.user = self.info["user"]
        self.ca_file = self.info["ca_file"]
        self.maildir = self.info["maildir"]

    def stop(self):
        localrelay.stop(self.work)
        shutil.rmtree(self.work, ignore_errors=True)

    def clear(self):
        """Forget what was delivered so far."""
        for f in glob.glob(os.path.join(self.maildir, "new", "*")):
            os.unlink(f)

    def delivered(self):
        return localrelay.delivered(self.work)

    def wait_for(self, count, timeout=30.0):
        """Wait until at least count messages are delivered (bounded); return their paths."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = self.delivered()
            if len(files) >= count:
                # a moment more, so that a duplicate would have time to land too
                time.sleep(0.5)
                return self.delivered()
            time.sleep(0.1)
        return self.delivered()

    def settle(self, seconds=1.5):
        """Give the queue a moment, then return what was delivered (for 'nothing sent')."""
        time.sleep(seconds)
        return self.delivered()

    def log(self):
        return localrelay.tail(self.info["log"], 200)


def parse(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def run_blast(*args, env=None, timeout=180, cwd=None):
    cmd = [BLAST, *args]
    if os.environ.get("BLAST_VALGRIND"):
        cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
               "--errors-for-leak-kinds=definite", "-q", *cmd]
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(cmd, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def copy_example(dest, relay, source=ROOT):
    """Copy the example campaign, its list and templates into dest, pointed at relay.

    source holds campaigns/ and templates/: the source tree, or the examples directory
    of an installed blast. Only the relay's port and CA file change: the rest is the
    campaign as shipped. Returns the path of the copied campaign file.
    """
    os.makedirs(os.path.join(dest, "campaigns"), exist_ok=True)
    shutil.copytree(os.path.join(source, "templates"), os.path.join(dest, "templates"),
                    dirs_exist_ok=True)
    for name in ("recipients.csv", "unsubscribed.txt"):
        shutil.copy(os.path.join(source, "campaigns", name),
                    os.path.join(dest, "campaigns", name))
    with open(os.path.join(source, "campaigns", "example.yml"), encoding="utf-8") as f:
        text = f.read()
    text, n1 = re.subn(r"(?m)^(\s*port:\s*)2525\b", rf"\g<1>{relay.port}", text)
    text, n2 = re.subn(r"(?m)^(\s*ca_file:\s*)\S+", rf"\g<1>{relay.ca_file}", text)
    assert n1 == 1 and n2 == 1, "campaigns/example.yml no longer has the demo relay's port/ca_file"
    path = os.path.join(dest, "campaigns", "example.yml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def read_csv(path):
    import csv
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def render(template, values, html=False):
    """What blast's {{name}} substitution must produce (Mustache escaping in HTML)."""
    def value(m):
        v = values.get(m.group(1), "")
        if html:
            v = (v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                 .replace('"', "&quot;").replace("'", "&#39;"))
        return v
    return re.sub(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}", value, template)


def all_defects(msg):
    out = list(msg.defects)
    for part in msg.walk():
        out.extend(part.defects)
    return out


def read_template(name):
    """A template of templates/, with its {{> partial}} lines expanded (one level)."""
    base = os.path.join(ROOT, "templates")
    with open(os.path.join(base, name), encoding="utf-8") as f:
        text = f.read()
    ext = os.path.splitext(name)[1]

    def partial(m):
        with open(os.path.join(base, m.group(1) + ext), encoding="utf-8") as f:
            return f.read()
    return re.sub(r"\{\{>\s*([A-Za-z0-9_-]+)\s*\}\}\n?", partial, text)


def crlf(text):
    """Text as a message carries it: every line end a CRLF."""
    return re.sub(r"\r?\n", "\r\n", text)
