"""`blast version`: blast's version from VERSION, and each library's version as built and as
loaded, held to what dpkg says is installed (the -dev package for the headers blast was
built with, the library's package for the one it runs with)."""

import os
import re
import shutil
import subprocess
import unittest

from tests.integration import harness

# name in the output -> (the package of the headers, the package of the shared library);
# None where that side is not reported ('-')
PACKAGES = {
    "OpenSSL": ("libssl-dev", "libssl3"),
    "libcurl": ("libcurl4-openssl-dev", "libcurl4"),
    "jansson": ("libjansson-dev", "libjansson4"),
    "libyaml": (None, "libyaml-0-2"),
    "libcsv": ("libcsv-dev", None),
    "SQLite": ("libsqlite3-dev", "libsqlite3-0"),
    "libidn2": ("libidn2-dev", "libidn2-0"),
    "GMime": ("libgmime-3.0-dev", "libgmime-3.0-0"),
    "GLib": ("libglib2.0-dev", "libglib2.0-0"),
    "hiredis": ("libhiredis-dev", None),
    "libsodium": ("libsodium-dev", "libsodium23"),
    "zlib": ("zlib1g-dev", "zlib1g"),
    "c-ares": ("libc-ares-dev", "libc-ares2"),
    "libpsl": ("libpsl-dev", "libpsl5"),
}


def upstream(package):
    """The upstream part of an installed package's version: 1:3.0.19-1~deb12u2 -> 3.0.19,
    3.0.3+dfsg-6 -> 3.0.3, 1:1.2.13.dfsg-1 -> 1.2.13."""
    p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if p.returncode != 0 or not p.stdout:
        return None
    v = p.stdout.split(":", 1)[-1]
    v = v.rsplit("-", 1)[0] if "-" in v else v
    return re.split(r"[+~]|\.dfsg", v)[0]


def versions():
    p = harness.run_blast("version")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    table = {}
    for ln in lines[2:]:
        name, built, running = ln.split()
        table[name] = (built, running)
    return lines, table


class Version(unittest.TestCase):
    def test_first_line_is_the_version_file(self):
        with open(os.path.join(harness.ROOT, "VERSION"), encoding="utf-8") as f:
            want = f.read().strip()
        for args in (["version"], ["--version"]):
            p = harness.run_blast(*args)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.splitlines()[0], f"blast {want}", args)
        self.assertEqual(harness.run_blast("version").stdout,
                         harness.run_blast("--version").stdout)

    def test_every_library_is_named_once_with_its_versions(self):
        lines, table = versions()
        self.assertEqual(lines[1].split(), ["library", "built", "with", "running", "with"])
        self.assertEqual(sorted(table), sorted(PACKAGES))
        self.assertEqual(len(lines), 2 + len(PACKAGES))
        for name, (built, running) in table.items():
            dev, lib = PACKAGES[name]
            for side, value, package in (("built", built, dev), ("running", running, lib)):
                if package is None:
                    self.assertEqual(value, "-", (name, side))
                else:
                    self.assertRegex(value, r"^\d+(\.\d+)+$", (name, side))

    @unittest.skipUnless(shutil.which("dpkg-query"), "dpkg-query is Debian's: not here")
    def test_versions_match_the_installed_packages(self):
        _, table = versions()
        for name, (built, running) in table.items():
            dev, lib = PACKAGES[name]
            for value, package in ((built, dev), (running, lib)):
                if package is None:
                    continue
                want = upstream(package)
                if want is None:
                    continue   # a build that found the headers elsewhere
                self.assertEqual(value, want, f"{name}: {package} is {want}")

    def test_help_and_bad_use(self):
        for args in (["version", "--help"], ["help", "version"]):
            p = harness.run_blast(*args)
            self.assertEqual(p.returncode, 0, args)
            self.assertIn("usage: blast version", p.stdout)
        for args in (["version", "extra"], ["version", "--bogus"]):
            p = harness.run_blast(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertRegex(p.stderr, r"^blast: version: ")
            self.assertEqual(p.stdout, "")


if __name__ == "__main__":
    unittest.main()
