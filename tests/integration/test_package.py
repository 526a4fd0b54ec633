"""The Debian package, built, checked, installed, used and purged.

Versions: the VERSION file, debian/changelog's latest entry and NEWS's latest release
name one version, and the changelog and NEWS one day.

The package (root, dpkg-buildpackage, lintian and apt-get needed): the source tree is
copied to a scratch directory (so that nothing the build makes lands in the tree) and
built with `dpkg-buildpackage -us -uc -b`, unit tests included; lintian must find no
error or warning in the .deb; `apt-get install ./blast_VERSION_ARCH.deb` installs it;
the installed /usr/bin/blast sends the installed example campaign to a private Postfix
relay on loopback and reads its report back; `apt-get remove --purge` takes every file
away. A package build takes about a minute on two cores.
"""

import email.utils
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from tests.integration import harness

ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")
INSTALLED = ["/usr/bin/blast", "/usr/share/man/man1/blast.1.gz",
             "/usr/share/man/man5/blast-campaign.5.gz", "/usr/share/man/man5/blast-report.5.gz",
             "/usr/share/bash-completion/completions/blast",
             "/usr/share/zsh/vendor-completions/_blast",
             "/usr/share/doc/blast/copyright",
             "/usr/share/doc/blast/examples/campaigns/example.yml"]
EXAMPLES = "/usr/share/doc/blast/examples"


def version_file():
    with open(os.path.join(harness.ROOT, "VERSION"), encoding="utf-8") as f:
        return f.read().strip()


def run(*cmd, cwd=None, timeout=600, check=True):
    p = subprocess.run(cmd, cwd=cwd, env=ENV, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}:\n{p.stdout[-4000:]}")
    return p


def installed(package):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p.returncode == 0 and p.stdout.startswith("install ok installed")


def copy_tree(dest):
    """The source tree as git sees it (tracked and new files, not what it ignores), or
    without build/ when it is not a git checkout."""
    p = subprocess.run(["git", "-C", harness.ROOT, "ls-files", "-z", "--cached", "--others",
                        "--exclude-standard"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    if p.returncode != 0:
        shutil.copytree(harness.ROOT, dest, symlinks=True,
                        ignore=shutil.ignore_patterns("build", ".git", "__pycache__"))
        return
    for rel in p.stdout.decode().split("\0"):
        src = os.path.join(harness.ROOT, rel)
        if not rel or not os.path.lexists(src):
            continue   # deleted in the work tree but not yet in git
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel), follow_symlinks=False)


class Versions(unittest.TestCase):
    """VERSION, debian/changelog and NEWS agree."""

    def changelog(self, field):
        p = subprocess.run(["dpkg-parsechangelog", "-l",
                            os.path.join(harness.ROOT, "debian", "changelog"), "-S", field],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    @unittest.skipUnless(shutil.which("dpkg-parsechangelog"), "dpkg-dev is not installed")
    def test_one_version_and_day(self):
        version = version_file()
        self.assertRegex(version, r"^\d+\.\d+\.\d+$")
        self.assertEqual(self.changelog("Version"), version)   # a native package: no revision
        with open(os.path.join(harness.ROOT, "NEWS"), encoding="utf-8") as f:
            news = f.read()
        m = re.search(r"(?m)^blast (\S+) \((\d{4}-\d\d-\d\d)\)\n=+$", news)
        self.assertIsNotNone(m, "NEWS has no 'blast VERSION (YYYY-MM-DD)' heading")
        self.assertEqual(m.group(1), version, "NEWS's latest release")
        day = email.utils.parsedate_to_datetime(self.changelog("Date")).date().isoformat()
        self.assertEqual(m.group(2), day, "NEWS's and debian/changelog's dates")


@unittest.skipUnless(os.geteuid() == 0, "installs a package: needs root")
@unittest.skipUnless(all(shutil.which(t) for t in ("dpkg-buildpackage", "lintian", "apt-get",
                                                      "fakeroot")),
                     "dpkg-dev, lintian, fakeroot or apt are not installed (scripts/deps.sh)")
class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if installed("blast"):
            raise unittest.SkipTest("a blast package is installed already: not replaced")
        if os.path.exists("/usr/bin/blast"):
            raise unittest.SkipTest("/usr/bin/blast is there already: not replaced")
        cls.work = tempfile.mkdtemp(prefix="blast-package-")
        cls.src = os.path.join(cls.work, "blast")
        copy_tree(cls.src)
        cls.version = version_file()
        arch = run("dpkg", "--print-architecture").stdout.strip()
        options = (ENV.get("DEB_BUILD_OPTIONS", "") + " parallel=2").strip()
        p = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=cls.src,
                           env=dict(ENV, DEB_BUILD_OPTIONS=options),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=1200)
        cls.build_log = p.stdout
        cls.deb = os.path.join(cls.work, f"blast_{cls.version}_{arch}.deb")
        if p.returncode != 0 or not os.path.exists(cls.deb):
            shutil.rmtree(cls.work, ignore_errors=True)
            raise AssertionError(f"dpkg-buildpackage: exit {p.returncode}:\n{p.stdout[-6000:]}")

    @classmethod
    def tearDownClass(cls):
        if installed("blast"):
            run("apt-get", "remove", "--purge", "-y", "-q", "blast", check=False)
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_1_the_build_ran_the_unit_tests_only(self):
        self.assertRegex(self.build_log, r"Synthesis: Tested: \d+ \| Passing: \d+ \| Failing: 0")
        self.assertNotIn("unittest discover", self.build_log)
        # and left nothing in the source tree
        self.assertFalse(os.path.exists(os.path.join(harness.ROOT, "debian", "blast")))

    def test_2_what_the_package_holds(self):
        fields = run("dpkg-deb", "-f", self.deb, "Package", "Version", "Depends").stdout
        self.assertIn(f"Version: {self.version}\n", fields)
        depends = fields.split("Depends:", 1)[1]
        # ${shlibs:Depends}, found by dpkg-shlibdeps from what the program links
        for lib in ("libc6", "libssl3", "libcurl4", "libjansson4", "libyaml-0-2", "libcsv3",
                    "libsqlite3-0", "libidn2-0", "libgmime-3.0-0", "libhiredis", "libsodium23",
                    "libc-ares2", "libpsl5"):
            self.assertIn(lib, depends)
        contents = run("dpkg-deb", "-c", self.deb).stdout
        for path in INSTALLED:
            self.assertIn("." + path + "\n", contents)

    def test_3_lintian_finds_no_error_or_warning(self):
        p = run("lintian", "--fail-on", "error,warning", "--display-level", ">=warning",
                self.deb, check=False)
        problems = [ln for ln in p.stdout.splitlines() if re.match(r"[EW]: ", ln)]
        self.assertEqual(problems, [])
        self.assertEqual(p.returncode, 0, p.stdout)

    def test_4_installed_it_sends_and_purged_it_is_gone(self):
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", self.deb)
        self.assertTrue(installed("blast"))
        for path in INSTALLED:
            self.assertTrue(os.path.exists(path), path)
        p = run("/usr/bin/blast", "version")
        self.assertEqual(p.stdout.splitlines()[0], f"blast {self.version}")
        p = run("man", "-w", "blast-campaign")
        self.assertEqual(p.stdout.strip(), "/usr/share/man/man5/blast-campaign.5.gz")
        p = run("man", "-P", "cat", "blast", check=True)
        self.assertIn("--dry-run", p.stdout)

        relay = harness.Relay()
        work = tempfile.mkdtemp(prefix="blast-package-send-")
        try:
            campaign = harness.copy_example(work, relay, source=EXAMPLES)
            report = os.path.join(work, "report.json")
            p = subprocess.run(["/usr/bin/blast", "send", campaign, "--report", report],
                               env=dict(ENV, BLAST_DEMO_PASSWORD=relay.password),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=180)
            self.assertEqual(p.returncode, 0, p.stderr)
            data = harness.load_report(report)
            self.assertEqual(data["summary"]["by_status"]["delivered"], 20)
            self.assertEqual(len(relay.wait_for(20)), 20, relay.log())
            p = run("/usr/bin/blast", "report", report)
            self.assertRegex(p.stdout, r"delivered\s+20\b")
        finally:
            relay.stop()
            shutil.rmtree(work, ignore_errors=True)

        run("apt-get", "remove", "--purge", "-y", "-q", "blast")
        self.assertFalse(installed("blast"))
        for path in INSTALLED + ["/usr/share/doc/blast"]:
            self.assertFalse(os.path.exists(path), f"{path} is left after the purge")


if __name__ == "__main__":
    unittest.main()
