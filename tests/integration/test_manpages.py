"""The manual pages of man/ against the program they describe.

- blast(1) has a subsection for every command `blast help` lists, and each one defines
  exactly the options that command's --help defines (long and short forms); every
  --option the page names anywhere is one that some --help defines, and so is every
  --option a --help text names in passing.
- blast-campaign(5) names every key of the campaign file that core/campaign.c knows;
  blast-report(5) every field of docs/report.schema.json and every status.
- `mandoc -Tlint` finds nothing, down to style, and `man -l` renders each page without a
  warning.

The options are read from the pages as man(1) renders them (man-db and groff, as a user
reads them), not from their source, so a page that renders wrong fails too.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from tests.integration import harness

MAN = os.path.join(harness.ROOT, "man")
PAGES = {"blast.1": "BLAST(1)", "blast-campaign.5": "BLAST-CAMPAIGN(5)",
         "blast-report.5": "BLAST-REPORT(5)"}
# an option as a --help text defines it: "  -o, --output FILE  ..." or "  --limit N  ..."
HELP_DEF = re.compile(r"^  (?:-([A-Za-z]), )?--([a-z][a-z0-9-]*)", re.M)
# as the rendered page defines it: an item of a tagged list, five columns in
MAN_DEF = re.compile(r"^     (?:-([A-Za-z]), )?--([a-z][a-z0-9-]*)", re.M)
# any long option named in running text
ANY_LONG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def blast(*args):
    p = harness.run_blast(*args)
    if p.returncode != 0:
        raise AssertionError(f"blast {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p.stdout


def commands():
    """The commands `blast help` lists, in its order."""
    text = blast("help")
    block = text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [m.group(1) for m in re.finditer(r"^  ([a-z]+)", block, re.M)]


def help_text(command):
    # `blast help --help` is the help itself: the top level's usage
    return blast(command, "--help")


def defined(text, pattern):
    """{long: short or None} for every option defined in text."""
    out = {}
    for m in pattern.finditer(text):
        out[m.group(2)] = m.group(1)
    return out


def render(page, width=200, join=True):
    """The page as man(1) shows it; with join, hyphenated words joined again."""
    env = dict(os.environ, MANWIDTH=str(width), LC_ALL="C.UTF-8", MANPAGER="cat",
               PAGER="cat")
    env.pop("MAN_KEEP_FORMATTING", None)
    p = subprocess.run(["man", "--warnings", "-l", os.path.join(MAN, page)], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    if p.returncode != 0 or p.stderr.strip():
        raise AssertionError(f"man -l {page}: exit {p.returncode}: {p.stderr}")
    return re.sub("\u2010\n +", "", p.stdout) if join else p.stdout


def sections(text):
    """{heading: body} for the subsections of the COMMANDS section of blast(1)."""
    body = text.split("\nCOMMANDS\n", 1)[1]
    body = re.split(r"\n(?=\S)", body, maxsplit=1)[0]
    parts = re.split(r"^   (\S+)\n", body, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def source_words(page, *macros):
    """Every argument of the mdoc macros (Ic, Cm...) wherever they appear in a page's
    source."""
    words = set()
    with open(os.path.join(MAN, page), encoding="utf-8") as f:
        for line in f:
            if not line.startswith("."):
                continue
            tokens = line[1:].split()
            for i, t in enumerate(tokens):
                if t not in macros:
                    continue
                for w in tokens[i + 1:]:
                    if w[:1].isupper() and w.isalpha() and len(w) == 2:
                        break   # the next macro
                    words.add(w.replace("\\-", "-").strip(",.;:()"))
    return words


@unittest.skipUnless(shutil.which("man"), "man-db's man is not installed (scripts/deps.sh)")
class Options(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.commands = commands()
        cls.page = render("blast.1")
        cls.sections = sections(cls.page)
        cls.helps = {c: help_text(c) for c in cls.commands}

    def test_blast_help_lists_the_commands(self):
        self.assertEqual(self.commands, ["send", "check", "preview", "report", "suppress",
                                         "bounces", "journal", "prune", "version", "help"])

    def test_a_subsection_for_every_command(self):
        self.assertEqual(list(self.sections), self.commands)
        for c in self.commands:
            self.assertRegex(self.page, rf"(?m)^     blast {c}\b", f"{c} not in SYNOPSIS")

    def test_each_command_defines_the_options_its_help_defines(self):
        for c in self.commands:
            with self.subTest(command=c):
                want = defined(self.helps[c], HELP_DEF)
                self.assertTrue(want, f"{c} --help defines no option")
                self.assertEqual(defined(self.sections[c], MAN_DEF), want)

    def test_every_option_named_anywhere_is_defined_by_some_help(self):
        known = set()
        for c in self.commands:
            known |= set(defined(self.helps[c], HELP_DEF))
        for where, text in [("blast(1)", self.page)] + [
                (f"blast {c} --help", t) for c, t in self.helps.items()]:
            with self.subTest(where=where):
                named = set(ANY_LONG.findall(text))
                self.assertEqual(named - known, set(), "named but no --help defines them")

    def test_options_render_with_ascii_dashes(self):
        # a hyphen (U+2010) where a minus belongs cannot be copied to a shell
        for line in self.page.splitlines():
            self.assertNotRegex(line, "[\u2010\u2011\u2212]-|[\u2010\u2011\u2212][a-z]+-[a-z]")


@unittest.skipUnless(shutil.which("man"), "man-db's man is not installed (scripts/deps.sh)")
class Contents(unittest.TestCase):
    def test_every_campaign_key_is_in_blast_campaign_5(self):
        with open(os.path.join(harness.ROOT, "core", "campaign.c"), encoding="utf-8") as f:
            source = f.read()
        tables = re.findall(r"const char \*const (\w+)\[\] = \{(.*?)\};", source, re.S)
        keys = {t: re.findall(r'"([a-z0-9_]+)"', body) for t, body in tables
                if t.endswith("_known")}
        self.assertIn("top_known", keys)
        self.assertIn("relay_known", keys)
        documented = source_words("blast-campaign.5", "Ic")
        for table, names in keys.items():
            with self.subTest(table=table):
                self.assertEqual(set(names) - documented, set())
        values = {t: re.findall(r'"([a-z0-9_-]+)"', body) for t, body in tables
                  if t.endswith("_names") and "bounces" in t}
        page = render("blast-campaign.5")
        for table, names in values.items():
            for n in names:
                self.assertRegex(page, rf"\b{re.escape(n)}\b", table)

    def test_every_report_field_is_in_blast_report_5(self):
        with open(harness.SCHEMA, encoding="utf-8") as f:
            schema = json.load(f)
        names, statuses = set(), set()

        def walk(node):
            if isinstance(node, dict):
                names.update(node.get("properties", {}))
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(schema)
        for d in schema["$defs"].values():
            if isinstance(d, dict) and "enum" in d and "delivered" in d["enum"]:
                statuses.update(d["enum"])
        self.assertIn("recipients", names)
        self.assertIn("delivered", statuses)
        self.assertEqual(names - source_words("blast-report.5", "Ic", "Ss"), set())
        self.assertEqual(statuses - source_words("blast-report.5", "Cm"), set())


class Lint(unittest.TestCase):
    @unittest.skipUnless(shutil.which("mandoc"), "mandoc is not installed (scripts/deps.sh)")
    def test_mandoc_lint_is_clean(self):
        # the pages refer to each other: a manual tree of them (and its mandoc.db) lets
        # mandoc find them, as it would once they are installed
        with tempfile.TemporaryDirectory(prefix="blast-man-") as tree:
            for page in PAGES:
                d = os.path.join(tree, "man" + page[-1])
                os.makedirs(d, exist_ok=True)
                shutil.copy(os.path.join(MAN, page), d)
            if shutil.which("makewhatis"):
                subprocess.run(["makewhatis", tree], check=True)
            p = subprocess.run(["mandoc", "-Tlint", "-W", "style",
                                *[os.path.join(MAN, page) for page in PAGES]],
                               env=dict(os.environ, MANPATH=tree), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        self.assertEqual(p.stdout, "")
        self.assertEqual(p.returncode, 0)

    @unittest.skipUnless(shutil.which("man"), "man-db's man is not installed (scripts/deps.sh)")
    def test_man_renders_every_page(self):
        for page, title in PAGES.items():
            with self.subTest(page=page):
                text = render(page, width=80, join=False)
                self.assertTrue(text.startswith(title), text[:80])
                for heading in ("NAME", "DESCRIPTION", "SEE ALSO"):
                    self.assertRegex(text, rf"(?m)^{heading}$")
                self.assertLessEqual(max(len(ln) for ln in text.splitlines()), 80)


if __name__ == "__main__":
    unittest.main()
