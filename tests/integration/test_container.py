"""The Dockerfile's steps, run: the image is built and then used.

Where a Docker daemon answers, `docker build` builds the image and `docker run` runs
it. Where none does (a CI runner, a machine without Docker), the Dockerfile is read
and its instructions carried out one by one as Docker would carry them out, each
stage in a Debian 12 root file system of its own made by debootstrap (minbase, from
the mirror this machine's apt uses): COPY from the build context (the tree as git
sees it, less .dockerignore) or from an earlier stage, RUN by /bin/sh -c in a chroot
in the stage's WORKDIR with the stage's ENV, the rest recorded. An instruction this
reader does not know fails the test, so the Dockerfile cannot drift into steps that
were never run. The image so made must then hold blast from the package and the
CA certificates, have no compiler, run as uid 10001 with its volumes writable by it,
answer `version` and the default `help`, and send the example campaign it carries
through a private Postfix relay on loopback, its journal and report written in its
/work volume.

Minutes, and the network to Debian's mirror: it runs only with BLAST_CONTAINER_TEST=1
(`make container-check`), as root. BLAST_CONTAINER_KEEP=1 keeps the root file systems
and build.log, every step's output.
"""

import fnmatch
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest
import uuid

from tests.integration import harness
from tests.integration.test_package import copy_tree

DOCKERFILE = os.path.join(harness.ROOT, "Dockerfile")
IMAGES = {"debian:12": "bookworm", "debian:12-slim": "bookworm"}
DOCKER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UID = 10001
ENABLED = os.environ.get("BLAST_CONTAINER_TEST") == "1"
WHY = ("set BLAST_CONTAINER_TEST=1 (make container-check) to build the image: minutes, "
       "and Debian's mirror")


def instructions(path=DOCKERFILE):
    """[(INSTRUCTION, text)] with continuation lines joined and comments left out."""
    out, pending = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = pending + line
            pending = ""
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(path=DOCKERFILE):
    """[{"name", "image", "steps"}] of the Dockerfile."""
    out = []
    for word, text in instructions(path):
        if word == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", text, re.I)
            out.append({"image": m.group(1), "name": m.group(2), "steps": []})
        else:
            out[-1]["steps"].append((word, text))
    return out


def dockerignore():
    path = os.path.join(harness.ROOT, ".dockerignore")
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


def context(dest):
    """The build context: the tree as git sees it, less what .dockerignore leaves out."""
    copy_tree(dest)
    patterns = dockerignore()
    for d, dirs, files in os.walk(dest, topdown=True):
        for name in list(dirs) + files:
            rel = os.path.relpath(os.path.join(d, name), dest)
            if any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p.replace("**/", ""))
                   for p in patterns):
                full = os.path.join(d, name)
                if os.path.isdir(full):
                    shutil.rmtree(full)
                    dirs.remove(name)
                else:
                    os.unlink(full)


def mirror():
    """The Debian archive this machine's apt uses (not its security archive)."""
    uris = []
    for path in glob.glob("/etc/apt/sources.list.d/*.sources"):
        with open(path, encoding="utf-8") as f:
            for block in f.read().split("\n\n"):
                fields = dict(re.findall(r"(?m)^(\w[\w-]*):\s*(.*)$", block))
                if "deb" in fields.get("Types", "").split() and \
                        "bookworm" in fields.get("Suites", "").split():
                    uris += fields.get("URIs", "").split()
    for path in ["/etc/apt/sources.list"] + glob.glob("/etc/apt/sources.list.d/*.list"):
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                uris += re.findall(r"(?m)^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", f.read())
    return uris[0] if uris else "http://deb.debian.org/debian"


def mounted_under(root):
    with open("/proc/mounts", encoding="utf-8") as f:
        return [ln.split()[1] for ln in f if ln.split()[1].startswith(root.rstrip("/") + "/")]


class Builder:
    """Carries out a Dockerfile's stages in chroots under work."""

    def __init__(self, test, work, base_tar):
        self.test, self.work, self.base_tar = test, work, base_tar
        self.roots = {}
        self.log = os.path.join(work, "build.log")

    def run(self, cmd, **kw):
        with open(self.log, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, **kw)
        if p.returncode != 0:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-6000:]
            raise AssertionError(f"{' '.join(cmd)[:200]}: exit {p.returncode}\n{tail}")

    def new_root(self, image):
        self.test.assertIn(image, IMAGES, "a base image this test cannot stand in for")
        root = os.path.join(self.work, f"root-{len(self.roots)}")
        os.makedirs(root)
        self.run(["tar", "-C", root, "-xf", self.base_tar])
        # apt as this machine's apt, a resolver as Docker gives a container
        sources = os.path.join(root, "etc", "apt", "sources.list")
        if os.path.exists(sources):
            os.unlink(sources)
        for path in glob.glob("/etc/apt/sources.list.d/*.sources"):
            shutil.copy(path, os.path.join(root, "etc", "apt", "sources.list.d"))
        if os.path.exists("/etc/apt/sources.list"):
            shutil.copy("/etc/apt/sources.list", sources)
        shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
        return root

    def mount(self, root):
        self.run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")])

    def umount(self, root):
        for m in sorted(mounted_under(root), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)

    def chroot(self, root, command, workdir, env, user=None, capture=False):
        script = f"cd {shlex.quote(workdir)} || exit 1\n{command}"
        cmd = ["chroot"] + ([f"--userspec={user}"] if user else []) + [root, "/bin/sh", "-c",
                                                                       script]
        if capture:
            return subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  timeout=600)
        self.run(cmd, env=env, timeout=3600)
        return None

    def copy(self, src_base, sources, dest):
        for src in sources:
            paths = sorted(glob.glob(os.path.join(src_base, src.lstrip("/"))))
            self.test.assertTrue(paths, f"COPY: nothing matches {src}")
            for path in paths:
                if os.path.isdir(path):
                    shutil.copytree(path, dest, symlinks=True, dirs_exist_ok=True)
                elif dest.endswith("/") or os.path.isdir(dest):
                    os.makedirs(dest, exist_ok=True)
                    shutil.copy2(path, dest)
                else:
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    shutil.copy2(path, dest)

    def build(self, ctx):
        """Every stage; returns the last one's root and its image settings."""
        config = {}
        for stage in stages():
            root = self.new_root(stage["image"])
            config = {"workdir": "/", "env": {"PATH": DOCKER_PATH, "HOME": "/root"},
                      "user": None, "volumes": [], "entrypoint": None, "cmd": None}
            self.mount(root)
            try:
                for word, text in stage["steps"]:
                    self.step(root, config, ctx, word, text)
            finally:
                self.umount(root)
            if stage["name"]:
                self.roots[stage["name"]] = root
        return root, config

    def step(self, root, config, ctx, word, text):
        def inside(path):
            """A path of the stage, relative to its WORKDIR, as a path of this machine."""
            return os.path.join(root, os.path.join(config["workdir"], path).lstrip("/"))

        if word == "WORKDIR":
            config["workdir"] = os.path.join(config["workdir"], text)
            os.makedirs(inside("."), exist_ok=True)
        elif word == "COPY":
            args = shlex.split(text)
            src_base = ctx
            if args[0].startswith("--from="):
                src_base = self.roots[args.pop(0).split("=", 1)[1]]
            *sources, dest = args
            target = inside(dest)
            if dest.endswith("/"):
                target += "/"
            self.copy(src_base, sources, target)
        elif word == "RUN":
            self.test.assertFalse(text.startswith("["), "RUN in exec form")
            self.chroot(root, text, config["workdir"], config["env"])
        elif word == "ENV":
            for item in shlex.split(text):
                k, _, v = item.partition("=")
                config["env"][k] = v
        elif word == "VOLUME":
            config["volumes"] += json.loads(text)
        elif word == "USER":
            config["user"] = text
        elif word in ("ENTRYPOINT", "CMD"):
            config[word.lower()] = json.loads(text)
        else:
            self.test.fail(f"Dockerfile: this test does not know {word}: teach it")


def docker_answers():
    if not shutil.which("docker"):
        return False
    p = subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p.returncode == 0


class Dockerfile(unittest.TestCase):
    """What can be seen without building: quick, always run."""

    def test_the_reader_knows_every_instruction(self):
        known = {"FROM", "WORKDIR", "COPY", "RUN", "ENV", "VOLUME", "USER", "ENTRYPOINT",
                 "CMD"}
        self.assertEqual({w for w, _ in instructions()} - known, set())
        self.assertEqual([s["image"] for s in stages()], ["debian:12", "debian:12-slim"])

    def test_one_list_of_build_dependencies(self):
        # the build stage installs debian/control's Build-Depends, and names no package
        # itself; the runtime stage names only ca-certificates beside the .deb
        build, runtime = stages()
        runs = " ".join(t for w, t in build["steps"] if w == "RUN")
        self.assertIn("apt-get build-dep", runs)
        self.assertIn("dpkg-buildpackage", runs)
        self.assertNotRegex(runs, r"apt-get install")
        installs = [t for w, t in runtime["steps"] if w == "RUN" and "apt-get install" in t]
        self.assertEqual(len(installs), 1)
        named = [w for w in installs[0].split("apt-get install", 1)[1].split()
                 if not w.startswith("-") and w not in ("&&", "\\")]
        self.assertEqual(named[:2], ["ca-certificates", "/tmp/deb/blast_*.deb"])

    def test_runs_as_its_own_user_with_volumes(self):
        runtime = stages()[-1]["steps"]
        users = [t for w, t in runtime if w == "USER"]
        self.assertEqual(users, [f"{UID}:{UID}"])
        volumes = [json.loads(t) for w, t in runtime if w == "VOLUME"]
        self.assertEqual(volumes, [["/work", "/var/lib/blast"]])
        self.assertIn(("ENTRYPOINT", '["/usr/bin/blast"]'), runtime)


@unittest.skipUnless(ENABLED, WHY)
@unittest.skipUnless(os.geteuid() == 0, "chroot and debootstrap need root")
class Image(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="blast-container-")
        cls.ctx = os.path.join(cls.work, "context")
        context(cls.ctx)

    @classmethod
    def tearDownClass(cls):
        left = mounted_under(cls.work)
        for m in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        if mounted_under(cls.work):
            raise AssertionError(f"still mounted under {cls.work}: not removed")
        if os.environ.get("BLAST_CONTAINER_KEEP") == "1":
            print(f"\nkept: {cls.work} (build.log: every step's output)")
            return
        shutil.rmtree(cls.work, ignore_errors=True)

    def base(self):
        """A Debian 12 minbase root file system as a tar file, made once and kept
        beside the build (BLAST_CONTAINER_CACHE to put it elsewhere)."""
        cache = os.environ.get("BLAST_CONTAINER_CACHE") or os.path.join(
            os.path.dirname(os.path.abspath(harness.BLAST)), "container")
        tar = os.path.join(cache, "bookworm-minbase.tar")
        if os.path.exists(tar):
            return tar
        if not shutil.which("debootstrap"):
            self.skipTest("debootstrap is not installed (scripts/deps.sh)")
        os.makedirs(cache, exist_ok=True)
        root = os.path.join(self.work, "debootstrap")
        p = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", root, mirror()],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=1800)
        self.assertEqual(p.returncode, 0, p.stdout[-4000:])
        subprocess.run(["tar", "-C", root, "-cf", tar + ".part", "."], check=True)
        os.rename(tar + ".part", tar)
        shutil.rmtree(root)
        return tar

    def test_docker_build_and_run(self):
        if not docker_answers():
            self.skipTest("no Docker daemon answers here: the chroot test stands in")
        tag = f"blast-test:{uuid.uuid4().hex[:12]}"
        p = subprocess.run(["docker", "build", "-t", tag, self.ctx], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=3600)
        self.assertEqual(p.returncode, 0, p.stdout[-6000:])
        try:
            p = subprocess.run(["docker", "run", "--rm", tag, "version"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(harness.ROOT, "VERSION"), encoding="utf-8") as f:
                self.assertEqual(p.stdout.splitlines()[0], f"blast {f.read().strip()}")
            p = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", tag],
                               stdout=subprocess.PIPE, text=True)
            self.assertIn(f"uid={UID}(blast) gid={UID}(blast)", p.stdout)
        finally:
            subprocess.run(["docker", "rmi", "-f", tag], stdout=subprocess.DEVNULL)

    def test_the_stages_in_chroots(self):
        builder = Builder(self, self.work, self.base())
        root, config = builder.build(self.ctx)
        self.assertEqual(config["user"], f"{UID}:{UID}")
        env = {"PATH": DOCKER_PATH, "HOME": "/var/lib/blast",
               "BLAST_DNS_SERVERS": os.environ["BLAST_DNS_SERVERS"]}

        def run(*args, env_extra=None):
            cmd = " ".join(shlex.quote(a) for a in config["entrypoint"] + list(args))
            builder.mount(root)
            try:
                return builder.chroot(root, "exec " + cmd, config["workdir"],
                                      dict(env, **(env_extra or {})), user=config["user"],
                                      capture=True)
            finally:
                builder.umount(root)

        # what the image holds, and what it does not
        p = run("version")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(harness.ROOT, "VERSION"), encoding="utf-8") as f:
            self.assertEqual(p.stdout.splitlines()[0], f"blast {f.read().strip()}")
        p = run(*config["cmd"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("usage: blast COMMAND", p.stdout)
        self.assertTrue(os.path.exists(os.path.join(root, "etc/ssl/certs/ca-certificates.crt")))
        self.assertTrue(os.path.exists(os.path.join(root, "var/lib/dpkg/info/blast.list")))
        for tool in ("usr/bin/gcc", "usr/bin/dpkg-buildpackage", "usr/include/openssl"):
            self.assertFalse(os.path.exists(os.path.join(root, tool)), f"{tool} in the image")
        with open(os.path.join(root, "etc/passwd"), encoding="utf-8") as f:
            self.assertRegex(f.read(), rf"(?m)^blast:x:{UID}:{UID}:")
        for volume in config["volumes"]:
            st = os.stat(os.path.join(root, volume.lstrip("/")))
            self.assertEqual((st.st_uid, st.st_gid), (UID, UID), volume)

        # the example campaign it carries, sent from its /work volume
        relay = harness.Relay()
        try:
            work = os.path.join(root, "work")
            examples = os.path.join(root, "usr/share/doc/blast/examples")
            campaign = harness.copy_example(work, relay, source=examples)
            shutil.copy(relay.ca_file, os.path.join(work, "relay-ca.pem"))
            with open(campaign, encoding="utf-8") as f:
                text = f.read()
            text = re.sub(r"(?m)^(\s*ca_file:\s*)\S+", r"\g<1>../relay-ca.pem", text)
            with open(campaign, "w", encoding="utf-8") as f:
                f.write(text)
            for d, dirs, files in os.walk(work):
                for name in dirs + files:
                    os.chown(os.path.join(d, name), UID, UID)
            p = run("send", "campaigns/example.yml",
                    env_extra={"BLAST_DEMO_PASSWORD": relay.password})
            self.assertEqual(p.returncode, 0, p.stderr)
            report = harness.load_report(
                os.path.join(work, "campaigns", "reports", "november-news.json"))
            self.assertEqual(report["summary"]["by_status"]["delivered"], 20)
            self.assertTrue(os.path.exists(
                os.path.join(work, "campaigns", ".blast", "november-news.journal")))
            self.assertEqual(len(relay.wait_for(20)), 20, relay.log())
        finally:
            relay.stop()


if __name__ == "__main__":
    unittest.main()
