"""`make install` and `make uninstall` into a DESTDIR: every file where Debian's tools look
for it, with its mode; the installed program, pages and completions work from there; and
uninstall takes away every file install put there."""

import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from tests.integration import harness

BUILD = os.path.dirname(os.path.abspath(harness.BLAST))


def expected(prefix):
    """{path under DESTDIR: mode} of what make install PREFIX=prefix puts there."""
    zsh = ("share/zsh/vendor-completions" if prefix == "/usr"
           else "share/zsh/site-functions")
    files = {"bin/blast": 0o755,
             "share/man/man1/blast.1": 0o644,
             "share/man/man5/blast-campaign.5": 0o644,
             "share/man/man5/blast-report.5": 0o644,
             "share/bash-completion/completions/blast": 0o644,
             f"{zsh}/_blast": 0o644}
    docs = ["README.md", "NEWS", "report.schema.json", "report-page.png"]
    docs += [n for n in os.listdir(os.path.join(harness.ROOT, "docs")) if n.endswith(".md")]
    for name in docs:
        files[f"share/doc/blast/{name}"] = 0o644
    for name in ("example.yml", "recipients.csv", "unsubscribed.txt"):
        files[f"share/doc/blast/examples/campaigns/{name}"] = 0o644
    for name in os.listdir(os.path.join(harness.ROOT, "templates")):
        files[f"share/doc/blast/examples/templates/{name}"] = 0o644
    return {os.path.join(prefix.lstrip("/"), k): v for k, v in files.items()}


def tree(root):
    """Every file under root, relative to it."""
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


@unittest.skipUnless(os.path.isdir(os.path.join(BUILD, "obj")),
                     f"{harness.BLAST} is not a build of this tree (no {BUILD}/obj)")
class Install(unittest.TestCase):
    def make(self, target, destdir, prefix, *extra):
        p = subprocess.run(["make", "-s", "--no-print-directory", "-C", harness.ROOT,
                            f"BUILD={BUILD}", f"DESTDIR={destdir}", f"PREFIX={prefix}",
                            *extra, target],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)

    def setUp(self):
        self.dest = tempfile.mkdtemp(prefix="blast-install-")
        self.addCleanup(shutil.rmtree, self.dest, True)

    def test_install_then_uninstall(self):
        for prefix in ("/usr", "/usr/local", "/opt/blast"):
            with self.subTest(prefix=prefix):
                want = expected(prefix)
                self.make("install", self.dest, prefix)
                self.assertEqual(tree(self.dest), set(want))
                for path, mode in want.items():
                    st = os.stat(os.path.join(self.dest, path))
                    self.assertEqual(stat.S_IMODE(st.st_mode), mode, path)
                with open(os.path.join(harness.ROOT, "man", "blast.1"), "rb") as f:
                    page = f.read()
                installed = os.path.join(self.dest, prefix.lstrip("/"), "share/man/man1/blast.1")
                with open(installed, "rb") as f:
                    self.assertEqual(f.read(), page)
                self.make("uninstall", self.dest, prefix)
                self.assertEqual(tree(self.dest), set(), "files left after uninstall")
                self.assertFalse(os.path.exists(
                    os.path.join(self.dest, prefix.lstrip("/"), "share/doc/blast")))

    def test_each_place_may_be_set(self):
        self.make("install", self.dest, "/usr", "BINDIR=/usr/sbin",
                  "ZSHCOMPDIR=/usr/share/zsh/site-functions")
        files = tree(self.dest)
        self.assertIn("usr/sbin/blast", files)
        self.assertIn("usr/share/zsh/site-functions/_blast", files)
        self.assertNotIn("usr/bin/blast", files)
        self.make("uninstall", self.dest, "/usr", "BINDIR=/usr/sbin",
                  "ZSHCOMPDIR=/usr/share/zsh/site-functions")
        self.assertEqual(tree(self.dest), set())

    def test_what_is_installed_works(self):
        self.make("install", self.dest, "/usr")
        usr = os.path.join(self.dest, "usr")
        p = subprocess.run([os.path.join(usr, "bin", "blast"), "version"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, harness.run_blast("version").stdout)
        # man finds the pages by name in the installed tree
        if shutil.which("man"):
            for name, section in (("blast", "1"), ("blast-campaign", "5"),
                                  ("blast-report", "5")):
                p = subprocess.run(["man", "-M", os.path.join(usr, "share", "man"), "-w",
                                    section, name], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertTrue(p.stdout.strip().startswith(usr), p.stdout)
        # bash-completion's loader finds the completion by the command's name
        loader = "/usr/share/bash-completion/bash_completion"
        if os.path.exists(loader):
            script = (f"source {loader}\n"
                      "__load_completion blast || exit 3\n"
                      "complete -p blast\n")
            p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script],
                               env=dict(os.environ, XDG_DATA_DIRS=os.path.join(usr, "share"),
                                        BASH_COMPLETION_USER_DIR="/nonexistent"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual((p.returncode, p.stdout), (0, "complete -F _blast blast\n"),
                             p.stderr)
        # the example campaign checks from where it was installed
        examples = os.path.join(usr, "share", "doc", "blast", "examples")
        p = subprocess.run([os.path.join(usr, "bin", "blast"), "check",
                            os.path.join(examples, "campaigns", "example.yml")],
                           env=dict(os.environ, BLAST_DEMO_PASSWORD="x"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("result      ok", p.stdout)


if __name__ == "__main__":
    unittest.main()
