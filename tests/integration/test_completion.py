"""The shell completions of completions/, run by the shells themselves.

bash: completions/blast.bash is sourced after bash-completion's own bash_completion
(as bash-completion loads it), COMP_WORDS and COMP_CWORD are set as readline would set
them, _blast is called and COMPREPLY printed. zsh: an interactive `zsh -f` on a
pseudo-terminal with completions/ in its fpath and compinit run, is sent the words and
a TAB; a compadd that prints what it is given before it adds it shows the matches.

Both are held to the program: the commands `blast help` lists, each command's long
options as its --help defines them, every fixed set of values a --help shows
(`--format text|json|...`), and files where a file is expected.
"""

import os
import pty
import re
import select
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.integration import harness
from tests.integration.test_manpages import HELP_DEF, commands, defined

COMPLETIONS = os.path.join(harness.ROOT, "completions")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
FILES = ["news.yml", "old.yaml", "report.json", "notes.txt"]
DIRS = ["out"]
CLASSES = {"manual", "hard", "soft", "complaint", "unsubscribe"}
ACTIONS = {"list", "export", "add", "remove", "import"}


def value_sets():
    """{(command, option): {values}} for every `--option a|b|c` a --help text shows; an
    option that takes the same values in every command that has it (--log-format) counts
    for each of them."""
    out, by_option = {}, {}
    helps = {c: harness.run_blast(c, "--help").stdout for c in commands()}
    for c, text in helps.items():
        for m in re.finditer(r"--([a-z-]+) ([a-z]+(?:\|[a-z]+)+)", text):
            out[(c, m.group(1))] = set(m.group(2).split("|"))
            by_option.setdefault(m.group(1), set()).add(frozenset(out[(c, m.group(1))]))
    for option, sets in by_option.items():
        if len(sets) != 1:
            continue   # --format: each command its own
        for c, text in helps.items():
            if option in defined(text, HELP_DEF):
                out.setdefault((c, option), set(next(iter(sets))))
    return out


class Completion:
    """What both shells must do; a subclass says how to ask one."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="blast-completion-")
        for name in FILES:
            open(os.path.join(cls.dir, name), "w").close()
        for name in DIRS:
            os.mkdir(os.path.join(cls.dir, name))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def complete(self, *words):
        raise NotImplementedError

    def strip(self, matches):
        # a directory may come with its slash, an option with its '='
        return {m.rstrip("/=") for m in matches}

    def test_a_command_from_its_first_letters(self):
        self.assertEqual(self.complete("blast", "se"), {"send"})
        self.assertEqual(self.complete("blast", "rep"), {"report"})

    def test_every_command(self):
        self.assertEqual(self.complete("blast", ""), set(commands()))
        self.assertEqual(self.complete("blast", "help", ""), set(commands()))

    def test_each_commands_long_options(self):
        for c in commands():
            if c == "help":
                continue
            with self.subTest(command=c):
                want = {"--" + o for o in defined(harness.run_blast(c, "--help").stdout,
                                                  HELP_DEF)}
                self.assertEqual(self.complete("blast", c, "--"), want)
        self.assertEqual(self.complete("blast", "--"), {"--help", "--version"})

    def test_send_options(self):
        got = self.complete("blast", "send", "news.yml", "--")
        self.assertIn("--dry-run", got)
        self.assertIn("--resend-unknown", got)

    def test_fixed_sets_of_values(self):
        sets = value_sets()
        self.assertEqual(sets[("report", "format")], {"text", "json", "csv", "html", "prometheus"})
        self.assertEqual(sets[("send", "log-format")], {"text", "json"})
        for (c, option), values in sorted(sets.items()):
            with self.subTest(command=c, option=option):
                self.assertEqual(self.complete("blast", c, "--" + option, ""), values)
        self.assertEqual(self.complete("blast", "report", "--format", "p"), {"prometheus"})

    def test_suppress_classes_and_actions(self):
        text = harness.run_blast("suppress", "--help").stdout
        for word in CLASSES | ACTIONS:
            self.assertRegex(text, rf"\b{word}\b")
        self.assertEqual(self.complete("blast", "suppress", "--class", ""), CLASSES)
        self.assertEqual(self.complete("blast", "suppress", "db.sqlite", ""), ACTIONS)

    def test_campaign_files(self):
        for c in ("send", "check", "preview", "bounces"):
            with self.subTest(command=c):
                self.assertEqual(self.complete("blast", c, ""), {"news.yml", "old.yaml", "out"})
        self.assertEqual(self.complete("blast", "bounces", "news.yml", ""),
                         {"news.yml", "old.yaml", "out"})

    def test_prune_takes_campaign_files_and_directories(self):
        want = {"news.yml", "old.yaml", "out"}
        self.assertEqual(self.complete("blast", "prune", ""), want)
        # prune's --dry-run takes no value: operands follow it
        self.assertEqual(self.complete("blast", "prune", "--dry-run", ""), want)
        self.assertEqual(self.complete("blast", "prune", "--older-than", "30d", "news.yml", ""),
                         want)

    def test_report_files(self):
        self.assertEqual(self.complete("blast", "report", ""), {"report.json", "out"})
        self.assertEqual(self.complete("blast", "send", "news.yml", "--exclude-report", ""),
                         {"report.json", "out"})

    def test_directories_for_a_dry_run(self):
        self.assertEqual(self.complete("blast", "send", "news.yml", "--dry-run", ""), {"out"})


@unittest.skipUnless(os.path.exists(BASH_COMPLETION) and shutil.which("bash"),
                     "bash-completion is not installed (scripts/deps.sh)")
class Bash(Completion, unittest.TestCase):
    SCRIPT = r'''
source {bash_completion}
source {blast_bash}
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${{#COMP_LINE}}
COMPREPLY=()
complete -p blast >/dev/null || exit 3
_blast blast "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
'''

    def complete(self, *words):
        script = self.SCRIPT.format(bash_completion=BASH_COMPLETION,
                                    blast_bash=os.path.join(COMPLETIONS, "blast.bash"))
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "bash", *words],
                           cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        return self.strip(ln for ln in p.stdout.splitlines() if ln)

    def test_without_bash_completion(self):
        # sourced alone, the script still completes commands and options
        script = (f"source {os.path.join(COMPLETIONS, 'blast.bash')}\n"
                  'COMP_WORDS=(blast send --dr); COMP_CWORD=2\n'
                  '_blast blast --dr send\nprintf "%s\\n" "${COMPREPLY[@]}"\n')
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], cwd=self.dir,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        self.assertEqual((p.returncode, p.stderr, p.stdout), (0, "", "--dry-run\n"))

    def test_shellcheck(self):
        if not shutil.which("shellcheck"):
            self.skipTest("shellcheck is not installed (scripts/deps.sh)")
        p = subprocess.run(["shellcheck", os.path.join(COMPLETIONS, "blast.bash")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(p.returncode, 0, p.stdout)


# An interactive zsh's set-up: completions/ first in fpath, compinit, TAB completes, and
# a compadd that prints each match it is given before adding it. compprefuncs and
# comppostfuncs mark where one completion's matches begin and end.
ZSH_SETUP = r'''
PS1='' RPROMPT=''
fpath=(%(dir)s $fpath)
autoload -Uz compinit && compinit -u -D
bindkey '^I' complete-word
zstyle ':completion:*' insert-tab false
_t_begin() { print -r -- '<<BEGIN>>' }
_t_end() { print -r -- '<<END>>'; exit }
compprefuncs=(_t_begin)
comppostfuncs=(_t_end)
compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
    builtin compadd "$@"
    return
  fi
  local -a _t_hits
  builtin compadd -O _t_hits "$@"
  local h
  for h in $_t_hits; do print -r -- "<<M>>$h"; done
  builtin compadd "$@"
}
print -r -- '<<READY>>'
'''


@unittest.skipUnless(shutil.which("zsh"), "zsh is not installed (scripts/deps.sh)")
class Zsh(Completion, unittest.TestCase):
    def complete(self, *words):
        pid, fd = pty.fork()
        if pid == 0:   # the child: an interactive zsh without start-up files
            try:
                os.chdir(self.dir)
                os.execvpe("zsh", ["zsh", "-f", "-i"], dict(os.environ, TERM="dumb"))
            finally:
                os._exit(127)
        try:
            out = self.read_until(fd, b"", b"<<READY>>\r\n", ZSH_SETUP % {"dir": COMPLETIONS})
            out = self.read_until(fd, b"", b"<<END>>", " ".join(words) + "\t")
        finally:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(fd)
        text = out.decode("utf-8", "replace")
        self.assertNotIn("command not found", text)
        return self.strip(ln.split("<<M>>", 1)[1].strip() for ln in text.splitlines()
                          if "<<M>>" in ln)

    def read_until(self, fd, out, token, send, timeout=20):
        os.write(fd, send.encode())
        deadline = time.monotonic() + timeout
        while token not in out:
            if time.monotonic() > deadline:
                raise AssertionError(f"zsh: no {token!r} in {timeout} s: {out[-2000:]!r}")
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        if token not in out:
            raise AssertionError(f"zsh ended before {token!r}: {out[-2000:]!r}")
        return out

    def test_loads_without_error(self):
        p = subprocess.run(
            ["zsh", "-f", "-c",
             f"fpath=({COMPLETIONS} $fpath); autoload -Uz compinit; compinit -u -D; "
             "autoload -Uz _blast; print -r -- $_comps[blast]"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, timeout=30)
        self.assertEqual((p.returncode, p.stderr, p.stdout), (0, "", "_blast\n"))


if __name__ == "__main__":
    unittest.main()
