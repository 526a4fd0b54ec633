"""The deployment files of deploy/ (docs/deploy.md): the Kubernetes manifests and the
Slurm scripts a sharded campaign is run with.

The manifests are parsed and held to what blast relies on: an Indexed Job whose
completions are BLAST_SHARD_COUNT, `blast send` of the campaign the ConfigMap mount
provides, the relay password from the Secret, each index's journal and report on
its own directory of the volume, a non-root pod with a read-only root filesystem.
Then the shard Job's container is run as Kubernetes would run it, once per index:
its command, arguments and environment taken from the manifest ($(VAR)s expanded,
JOB_COMPLETION_INDEX set, no --shard), each mount path a directory of its own (the
ConfigMap's files, the volume's subPath and subPathExpr directories), against
Postfix's smtp-sink on loopback; every recipient must arrive exactly once and each
index keep its own journal and report. The merge Job's script is run the same way.

The Slurm scripts are checked with `bash -n` and shellcheck here, and refuse what
they must refuse without Slurm; test_slurm_deploy.py runs them under a real Slurm.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

from tests.integration import harness, servers
from tests.integration.test_shards import shard_of

K8S = os.path.join(harness.ROOT, "deploy", "kubernetes")
SLURM = os.path.join(harness.ROOT, "deploy", "slurm")
SLURM_SCRIPTS = ["submit.sh", "blast-campaign.sbatch", "blast-merge.sbatch"]
INDEX_ENV = "JOB_COMPLETION_INDEX"
INDEX_FIELD = "batch.kubernetes.io/job-completion-index"
BLAST_IN_IMAGE = "/usr/bin/blast"   # the Dockerfile installs the Debian package


# ---- the manifests ----------------------------------------------------------------------

def manifests():
    """{file name: [documents]} of every YAML file under deploy/kubernetes."""
    out = {}
    for path in sorted(glob.glob(os.path.join(K8S, "**", "*.y*ml"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            out[os.path.relpath(path, K8S)] = [d for d in yaml.safe_load_all(f) if d is not None]
    return out


def find(docs, kind, name):
    for f, ds in docs.items():
        for d in ds:
            if d.get("kind") == kind and d.get("metadata", {}).get("name") == name:
                return d
    raise AssertionError(f"no {kind} {name} under deploy/kubernetes")


def only_container(job):
    cs = job["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1, f"{job['metadata']['name']}: one container expected, {len(cs)}"
    return cs[0]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def expand(text, values):
    """Kubernetes' $(VAR) expansion (command, args, subPathExpr): a defined VAR is
    replaced, $$ is a literal $, anything else is left as written."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return values.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, text)


class Pod:
    """What a container of a Job's pod template sees, on this machine: each mount path
    a directory (a ConfigMap's or Secret's files, a volume's subPath or subPathExpr
    directory under one directory standing for the claim; both shared by the pods),
    its environment, and its command line with the mount paths replaced by those
    directories."""

    def __init__(self, docs, job, root, values, claim_dir=None):
        self.job = job
        self.root = root
        self.container = only_container(job)
        spec = job["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        self.env = {}
        for e in self.container.get("env", []):
            name = e["name"]
            if name in values:
                self.env[name] = str(values[name])
            elif "value" in e:
                self.env[name] = expand(str(e["value"]), self.env)
            elif "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]
                self.env[name] = find(docs, "Secret", ref["name"])["stringData"][ref["key"]]
            else:
                raise AssertionError(f"env {name}: no value for it in this test")
        for k, v in values.items():
            self.env.setdefault(k, str(v))
        self.claim_dir = claim_dir or os.path.join(root, "claim")
        self.mounts = {}   # mount path -> local directory
        for m in self.container.get("volumeMounts", []):
            v = volumes[m["name"]]
            if "configMap" in v or "secret" in v:
                kind, ref = (("ConfigMap", v["configMap"]["name"]) if "configMap" in v
                             else ("Secret", v["secret"]["secretName"]))
                obj = find(docs, kind, ref)
                data = dict(obj.get("data") or {})
                data.update(obj.get("stringData") or {})
                # one directory for every pod: they all mount the same object at the
                # same path (the campaign's fingerprint covers its files' paths too)
                d = os.path.join(os.path.dirname(self.claim_dir), kind.lower(), ref)
                os.makedirs(d, exist_ok=True)
                for key, text in data.items():
                    with open(os.path.join(d, key), "w", encoding="utf-8") as f:
                        f.write(text)
            elif "persistentVolumeClaim" in v:
                sub = m.get("subPath", "")
                if "subPathExpr" in m:
                    sub = expand(m["subPathExpr"], self.env)
                    assert "$(" not in sub, f"{m['subPathExpr']}: left unexpanded"
                d = os.path.join(self.claim_dir, sub)
                os.makedirs(d, exist_ok=True)
            elif "emptyDir" in v:
                d = os.path.join(root, "mounts", m["name"])
                os.makedirs(d, exist_ok=True)
            else:
                raise AssertionError(f"volume {m['name']}: a kind this test does not know")
            self.mounts[m["mountPath"]] = d

    def local(self, text):
        """text with every mount path (as a whole path prefix) replaced by its directory,
        and blast's path in the image by the blast under test."""
        names = sorted(list(self.mounts) + [BLAST_IN_IMAGE], key=len, reverse=True)
        where = dict(self.mounts, **{BLAST_IN_IMAGE: harness.BLAST})
        # one pass, so that a directory put in is never replaced again (/tmp is a mount)
        pattern = r"(?<![\w./-])(" + "|".join(map(re.escape, names)) + r")(?![\w.-])"
        return re.sub(pattern, lambda m: where[m.group(1)], text)

    def argv(self):
        cmd = [expand(a, self.env) for a in
               self.container.get("command", []) + self.container.get("args", [])]
        for a in cmd:
            # ($((i + 1)) in a shell script is no variable: Kubernetes leaves it too)
            assert not re.search(r"\$\([A-Za-z_]", a), f"{a}: a variable left unexpanded"
        return [self.local(a) for a in cmd]

    def environ(self):
        # a container's environment: the manifest's and a PATH, nothing of this machine's
        # (no SLURM_* in particular, which blast would take before JOB_COMPLETION_INDEX)
        return dict(self.env, PATH="/usr/local/bin:/usr/bin:/bin",
                    BLAST_DNS_SERVERS=os.environ["BLAST_DNS_SERVERS"])

    def start(self):
        return subprocess.Popen(self.argv(), env=self.environ(), cwd=self.root,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


class Manifests(unittest.TestCase):
    """deploy/kubernetes holds what blast relies on."""

    @classmethod
    def setUpClass(cls):
        cls.docs = manifests()
        cls.job = find(cls.docs, "Job", "blast-campaign")
        cls.merge = find(cls.docs, "Job", "blast-merge")
        cls.c = only_container(cls.job)
        cls.env = env_of(cls.c)
        cls.pod = cls.job["spec"]["template"]["spec"]
        cls.volumes = {v["name"]: v for v in cls.pod["volumes"]}
        cls.mounts = {m["mountPath"]: m for m in cls.c["volumeMounts"]}

    def campaign(self):
        """The campaign file the shards run, as the ConfigMap holds it, and its mount."""
        path = self.c["args"][1]
        mount = max((mp for mp in self.mounts if path.startswith(mp + "/")), key=len,
                    default=None)
        self.assertIsNotNone(mount, f"{path}: under no mount of the container")
        vol = self.volumes[self.mounts[mount]["name"]]
        self.assertIn("configMap", vol, f"{path}: not on the ConfigMap's mount")
        cm = find(self.docs, "ConfigMap", vol["configMap"]["name"])
        key = os.path.relpath(path, mount)
        self.assertIn(key, cm["data"], f"the ConfigMap has no {key}")
        return yaml.safe_load(cm["data"][key]), mount, cm

    def shard_mount(self):
        """The container's mount whose directory is the index's own (subPathExpr)."""
        ms = [m for m in self.c["volumeMounts"] if f"$({INDEX_ENV})" in m.get("subPathExpr", "")]
        self.assertEqual(len(ms), 1, "one mount whose subPathExpr names the index")
        return ms[0]

    def test_every_file_parses_as_kubernetes_objects(self):
        self.assertTrue(self.docs)
        for f, ds in self.docs.items():
            if f == "kustomization.yaml":
                continue
            self.assertTrue(ds, f"{f}: empty")
            for d in ds:
                for k in ("apiVersion", "kind", "metadata"):
                    self.assertIn(k, d, f"{f}: no {k}")
                self.assertTrue(d["metadata"].get("name"), f"{f}: no name")

    def test_an_indexed_job_of_blast_shard_count_completions(self):
        spec = self.job["spec"]
        self.assertEqual(self.job["apiVersion"], "batch/v1")
        self.assertEqual(spec["completionMode"], "Indexed")
        n = spec["completions"]
        self.assertIsInstance(n, int)
        self.assertIn("BLAST_SHARD_COUNT", self.env)
        self.assertEqual(str(self.env["BLAST_SHARD_COUNT"].get("value")), str(n),
                         "BLAST_SHARD_COUNT must be the Job's completions")
        self.assertTrue(1 <= spec["parallelism"] <= n, spec["parallelism"])
        self.assertEqual(self.pod["restartPolicy"], "Never")
        if INDEX_ENV in self.env:   # written out: it must be what the controller would set
            path = self.env[INDEX_ENV]["valueFrom"]["fieldRef"]["fieldPath"]
            self.assertIn(path, (f"metadata.annotations['{INDEX_FIELD}']",
                                 f"metadata.labels['{INDEX_FIELD}']"))
        # a retry per index, and never two pods of one index at once (the lock's exit 2)
        self.assertTrue(spec.get("backoffLimitPerIndex", 0) >= 1
                        or spec.get("backoffLimit", 0) >= 1)
        self.assertEqual(spec.get("podReplacementPolicy"), "Failed")
        for rule in spec.get("podFailurePolicy", {}).get("rules", []):
            if rule["action"] == "FailIndex":
                self.assertIn("backoffLimitPerIndex", spec, "FailIndex needs backoffLimitPerIndex")
            codes = rule.get("onExitCodes", {})
            if rule["action"] in ("FailIndex", "FailJob") and codes.get("operator") == "In":
                # a shard stopped by a signal (3) resumes; one with no relay (4) may later
                self.assertFalse({0, 3, 4} & set(codes["values"]), rule)
                self.assertEqual(codes.get("containerName", self.c["name"]), self.c["name"])

    def test_the_container_sends_the_campaign_of_the_configmap(self):
        cmd = self.c.get("command", []) + self.c.get("args", [])
        self.assertEqual(cmd[:1], [BLAST_IN_IMAGE], "the image's blast (Dockerfile)")
        self.assertEqual(self.c["args"][0], "send")
        for a in cmd:
            self.assertFalse(a.startswith("--shard"), "the shard comes from the environment")
            self.assertNotIn(a, ("--fresh", "--force", "--resend-unknown"),
                             "a retried pod must resume, never start over")
        campaign, mount, cm = self.campaign()
        self.assertTrue(self.mounts[mount].get("readOnly"), "the ConfigMap is mounted read-only")
        self.assertNotIn("subPath", self.mounts[mount],
                         "the whole ConfigMap, so that the templates are beside the campaign")
        for key in ("text", "html"):
            if key in campaign["body"]:
                self.assertIn(campaign["body"][key], cm["data"],
                              f"body.{key} is not in the ConfigMap")
        self.assertEqual(self.env["BLAST_NAME"]["value"], campaign["name"],
                         "the files are named after the campaign")

    def test_the_recipient_list_is_on_a_read_only_mount(self):
        campaign, mount, cm = self.campaign()
        path = campaign["recipients"]["path"]
        if not os.path.isabs(path):
            self.assertIn(path, cm["data"])
            return
        m = max((mp for mp in self.mounts if path.startswith(mp + "/")), key=len, default=None)
        self.assertIsNotNone(m, f"the list {path} is under no mount")
        self.assertTrue(self.mounts[m].get("readOnly"), f"{m}: the list's mount is read-only")

    def test_the_relay_password_comes_from_the_secret(self):
        campaign, mount, _ = self.campaign()
        secrets = {d["metadata"]["name"] for ds in self.docs.values() for d in ds
                   if d["kind"] == "Secret"}
        for relay in campaign["relays"]:
            if "password_env" in relay:
                var = relay["password_env"]
                self.assertIn(var, self.env, f"{var} is not in the container's env")
                ref = self.env[var]["valueFrom"]["secretKeyRef"]
                secret = find(self.docs, "Secret", ref["name"])
                self.assertIn(ref["key"], secret["stringData"])
            elif "password_file" in relay:
                path = relay["password_file"]
                m = max((mp for mp in self.mounts if path.startswith(mp + "/")), key=len)
                vol = self.volumes[self.mounts[m]["name"]]
                self.assertIn("secret", vol, f"{path} is not on a Secret's mount")
                self.assertIn(vol["secret"]["secretName"], secrets)
            else:
                self.fail(f"relay {relay.get('name')}: no password from the Secret")
            self.assertNotIn("password", relay)

    def test_the_secret_in_the_repository_is_a_placeholder_outside_the_kustomization(self):
        for f, ds in self.docs.items():
            for d in ds:
                if d["kind"] != "Secret":
                    continue
                self.assertIn("example", f, f"{f}: a Secret belongs in an example file")
                for k, v in {**d.get("stringData", {}), **d.get("data", {})}.items():
                    self.assertIn("PLACEHOLDER", v, f"{f}: {k} is not a placeholder")
        kust = self.docs["kustomization.yaml"][0]
        for r in kust["resources"]:
            self.assertNotIn("secret", r, "kubectl apply -k would overwrite the real Secret")

    def test_the_journal_and_the_report_are_on_the_index_own_directory(self):
        m = self.shard_mount()
        self.assertFalse(m.get("readOnly"), "the journal's mount is writable")
        vol = self.volumes[m["name"]]
        self.assertIn("persistentVolumeClaim", vol, "the journal outlives the pod")
        claim = find(self.docs, "PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"])
        self.assertIn("ReadWriteMany", claim["spec"]["accessModes"],
                      "the pods of every index, on any node, and the merge share the claim")
        args = self.c["args"]
        paths = {}
        for flag in ("--journal", "--report"):
            self.assertIn(flag, args)
            paths[flag] = args[args.index(flag) + 1]
            self.assertTrue(paths[flag].startswith(m["mountPath"] + "/"),
                            f"{flag} {paths[flag]} is not on the index's own directory")
            # named with the index and N, as blast names a shard's files: a journal is
            # never resumed by another shard, nor under another N
            self.assertIn(f"shard-$({INDEX_ENV})-of-$(BLAST_SHARD_COUNT)", paths[flag])
        self.assertNotEqual(paths["--journal"], paths["--report"])
        self.assertTrue(paths["--report"].endswith(".json"))

    def test_non_root_read_only_and_bounded(self):
        workloads = [d for ds in self.docs.values() for d in ds if d["kind"] in ("Job", "Pod")]
        self.assertGreaterEqual(len(workloads), 4)
        for w in workloads:
            name = w["metadata"]["name"]
            pod = w["spec"]["template"]["spec"] if w["kind"] == "Job" else w["spec"]
            sc = pod["securityContext"]
            self.assertIs(sc.get("runAsNonRoot"), True, name)
            # the image's user (the Dockerfile's USER 10001:10001), said again so that
            # the volumes' fsGroup and the user agree whatever the image
            self.assertEqual((sc.get("runAsUser"), sc.get("runAsGroup"), sc.get("fsGroup")),
                             (10001, 10001, 10001), name)
            self.assertIs(pod.get("automountServiceAccountToken"), False, name)
            self.assertEqual(len(pod["containers"]), 1, name)
            c = pod["containers"][0]
            csc = c["securityContext"]
            self.assertIs(csc.get("readOnlyRootFilesystem"), True, name)
            self.assertIs(csc.get("allowPrivilegeEscalation"), False, name)
            self.assertEqual(csc.get("capabilities", {}).get("drop"), ["ALL"], name)
            for k in ("requests", "limits"):
                self.assertIn("memory", c["resources"][k], f"{name}: resources.{k}")
            self.assertIn("cpu", c["resources"]["requests"], name)
            volumes = {v["name"] for v in pod["volumes"]}
            for m in c["volumeMounts"]:
                self.assertIn(m["name"], volumes, f"{name}: mount of an unknown volume")
            # the image is the one kustomization.yaml names
            self.assertEqual(c["image"].split(":")[0], "blast", name)

    def test_the_merge_job_reads_every_index_directory(self):
        spec = self.merge["spec"]
        self.assertNotEqual(spec.get("completionMode"), "Indexed")
        self.assertIs(spec.get("suspend"), True, "started by hand once the shards have ended")
        c = only_container(self.merge)
        env = env_of(c)
        self.assertEqual(env["BLAST_SHARD_COUNT"]["value"], self.env["BLAST_SHARD_COUNT"]["value"])
        self.assertEqual(env["BLAST_NAME"]["value"], self.env["BLAST_NAME"]["value"])
        script = " ".join(c["command"] + c.get("args", []))
        self.assertIn(f"{BLAST_IN_IMAGE} report --merge", script)
        # its view of the claim holds each index's directory
        shard = self.shard_mount()
        claim = self.volumes[shard["name"]]["persistentVolumeClaim"]["claimName"]
        mvols = {v["name"]: v for v in self.merge["spec"]["template"]["spec"]["volumes"]}
        parent = shard["subPathExpr"].rsplit("/", 1)[0]
        ms = [m for m in c["volumeMounts"]
              if mvols[m["name"]].get("persistentVolumeClaim", {}).get("claimName") == claim
              and m.get("subPath", "") == parent]
        self.assertEqual(len(ms), 1, f"the merge mounts the claim's {parent}/")
        self.assertTrue(ms[0].get("readOnly"), "the merge only reads the shards' files")

    def test_the_rerun_job_is_the_shard_container_with_the_index_written_in(self):
        rerun = find(self.docs, "Job", "blast-campaign-rerun-RERUN_INDEX")
        self.assertNotEqual(rerun["spec"].get("completionMode"), "Indexed")
        self.assertEqual(rerun["spec"].get("podReplacementPolicy"), "Failed")
        c = only_container(rerun)
        self.assertEqual(env_of(c)[INDEX_ENV], {"name": INDEX_ENV, "value": "RERUN_INDEX"})
        strip = lambda cont: {k: v for k, v in cont.items() if k != "env"}  # noqa: E731
        self.assertEqual(strip(c), strip(self.c), "the rerun's container drifted from job.yaml's")
        others = lambda cont: [e for e in cont["env"] if e["name"] != INDEX_ENV]  # noqa: E731
        self.assertEqual(others(c), others(self.c))
        self.assertEqual(rerun["spec"]["template"]["spec"]["volumes"], self.pod["volumes"])
        self.assertEqual(rerun["spec"]["template"]["spec"]["securityContext"],
                         self.pod["securityContext"])

    def test_the_kustomization(self):
        kust = self.docs["kustomization.yaml"][0]
        res = kust["resources"]
        for r in res:
            self.assertTrue(os.path.exists(os.path.join(K8S, r)), r)
        for f in ("job.yaml", "configmap.yaml", "pvc.yaml", "merge-job.yaml"):
            self.assertIn(f, res)
        self.assertNotIn("rerun-index-job.yaml", res, "it would run at once, with no index")
        self.assertEqual([i["name"] for i in kust["images"]], ["blast"])
        kubectl = shutil.which("kubectl")
        if not kubectl:
            self.skipTest("kubectl is not installed: `kubectl kustomize` not tried")
        p = subprocess.run([kubectl, "kustomize", K8S], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        built = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(p.stdout)}
        job = built[("Job", "blast-campaign")]
        self.assertEqual(only_container(job)["args"], self.c["args"], "kustomize left the args")
        self.assertIn(("Job", "blast-merge"), built)


class Contract(unittest.TestCase):
    """The shard Job's container, run on this machine as Kubernetes would run it."""

    N_ROWS = 400

    def setUp(self):
        self.docs = manifests()
        self.job = find(self.docs, "Job", "blast-campaign")
        self.n = int(self.job["spec"]["completions"])
        self.sink = servers.Sink()
        self.addCleanup(self.sink.stop)
        self.root = tempfile.mkdtemp(prefix="blast-deploy-")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.claim = os.path.join(self.root, "claim")
        self.rows = [f"reader{i}@example.com" for i in range(1, self.N_ROWS + 1)]

    def pod(self, i):
        pod = Pod(self.docs, self.job, os.path.join(self.root, f"pod-{i}"),
                  {INDEX_ENV: i}, claim_dir=self.claim)
        # the ConfigMap's campaign, pointed at smtp-sink instead of the relay, and its
        # absolute paths (the list) at this machine's directories
        cm_mount = next(mp for mp in pod.mounts if pod.container["args"][1].startswith(mp + "/"))
        campaign_file = pod.local(pod.container["args"][1])
        with open(campaign_file, encoding="utf-8") as f:
            campaign = yaml.safe_load(pod.local(f.read()))
        campaign["relays"] = [{"name": "sink", "host": "127.0.0.1", "port": self.sink.port,
                               "tls": "none", "connections": 2, "messages_per_connection": 0}]
        with open(campaign_file, "w", encoding="utf-8") as f:
            yaml.safe_dump(campaign, f)
        self.assertTrue(os.path.isdir(pod.mounts[cm_mount]))
        return pod, campaign

    def write_list(self, campaign):
        path = campaign["recipients"]["path"]
        self.assertTrue(path.startswith(self.claim + "/"), f"{path}: not on the volume")
        with open(path, "w", encoding="utf-8") as f:
            f.write("email,name\n")
            for a in self.rows:
                f.write(f"{a},{a.split('@')[0]}\n")

    def run_pods(self, indexes):
        pods, procs = {}, {}
        for i in indexes:
            pods[i], campaign = self.pod(i)
            if not os.path.exists(campaign["recipients"]["path"]):
                self.write_list(campaign)
        for i in indexes:   # parallelism: all at once
            argv = pods[i].argv()
            self.assertNotIn("--shard", " ".join(argv))
            procs[i] = pods[i].start()
        out = {}
        for i, p in procs.items():
            stdout, stderr = p.communicate(timeout=120)
            out[i] = (p.returncode, stderr)
        return pods, out

    def shard_dir(self, i):
        return os.path.join(self.claim, "shards", str(i))

    def send_all(self):
        """Every index's pod at once; (the files' name, what smtp-sink received)."""
        pods, out = self.run_pods(range(self.n))
        for i in range(self.n):
            self.assertEqual(out[i][0], 0, f"index {i}: {out[i][1]}")
        return pods[0].env["BLAST_NAME"], out

    def test_each_index_sends_its_shard_as_the_manifest_runs_it(self):
        name, out = self.send_all()
        seen = {}
        for i in range(self.n):
            rc, stderr = out[i]
            self.assertEqual(rc, 0, f"index {i}: {stderr}")
            self.assertIn(f"shard {i} of {self.n} (0-based)", stderr)
            files = sorted(os.listdir(self.shard_dir(i)))
            stem = f"{name}.shard-{i}-of-{self.n}"
            self.assertEqual(files, [f"{stem}.journal", f"{stem}.journal.lock", f"{stem}.json"],
                             f"index {i}'s directory")
            report = harness.load_report(os.path.join(self.shard_dir(i), f"{stem}.json"))
            self.assertEqual(report["campaign"]["shard"], {"index": i, "count": self.n})
            self.assertTrue(report["recipients"], f"index {i} had nothing to send")
            for e in report["recipients"]:
                self.assertNotIn(e["email"], seen, "a recipient in two shards")
                seen[e["email"]] = i
                self.assertEqual(shard_of(e["email"], self.n), i)
                self.assertEqual(e["status"], "delivered", e)
        self.assertEqual(sorted(seen), sorted(self.rows))
        received = self.sink.recipients()
        self.assertEqual(sorted(received), sorted(self.rows), "every recipient")
        self.assertEqual(set(received.values()), {1}, "each exactly once")

        # a retried pod of one index resumes its shard: nothing is sent again
        pods2, out2 = self.run_pods([2])
        self.assertEqual(out2[2][0], 0, out2[2][1])
        self.assertEqual(self.sink.recipients(), received)

    def test_the_merge_job_merges_the_index_reports(self):
        name, _ = self.send_all()
        received = self.sink.recipients()
        merge = find(self.docs, "Job", "blast-merge")
        pod = Pod(self.docs, merge, os.path.join(self.root, "merge"), {}, claim_dir=self.claim)
        argv = pod.argv()
        merged = os.path.join(self.claim, "merged", f"{name}.json")

        # one shard's report away: the merge fails, naming it
        r1 = glob.glob(os.path.join(self.shard_dir(1), "*.json"))[0]
        os.rename(r1, r1 + ".away")
        p = subprocess.run(argv, env=pod.environ(), capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0, "a merge with a shard missing succeeded")
        self.assertIn(f"no report for shard 1 of {self.n}", p.stderr)
        os.rename(r1 + ".away", r1)

        p = subprocess.run(argv, env=pod.environ(), capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(merged, encoding="utf-8") as f:
            doc = json.load(f)
        harness.check_report(doc)
        emails = [e["email"] for e in doc["recipients"]]
        self.assertEqual(sorted(emails), sorted(received), "the merge holds every recipient once")
        self.assertEqual({e["status"] for e in doc["recipients"]}, {"delivered"})


class SlurmScripts(unittest.TestCase):
    """deploy/slurm, without Slurm: syntax, shellcheck, and what the scripts refuse."""

    def script(self, name):
        return os.path.join(SLURM, name)

    def test_bash_syntax(self):
        for name in SLURM_SCRIPTS:
            p = subprocess.run(["bash", "-n", self.script(name)], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, f"{name}: {p.stderr}")
            with open(self.script(name)) as f:
                text = f.read()
            self.assertTrue(text.startswith("#!/bin/bash\n"), name)
            self.assertRegex(text, r"(?m)^set -eu$", f"{name}: set -eu")
            self.assertTrue(os.access(self.script(name), os.X_OK), f"{name}: not executable")

    def test_shellcheck(self):
        if not shutil.which("shellcheck"):
            self.skipTest("shellcheck is not installed (scripts/deps.sh installs it)")
        p = subprocess.run(["shellcheck", *[self.script(n) for n in SLURM_SCRIPTS]],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # and the merge Job's script, as the image's /bin/sh (dash) runs it
        c = only_container(find(manifests(), "Job", "blast-merge"))
        self.assertEqual(c["command"][:2], ["/bin/sh", "-c"])
        p = subprocess.run(["shellcheck", "-s", "sh", "-"], input=c["command"][2],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_the_array_header(self):
        with open(self.script("blast-campaign.sbatch")) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^#SBATCH --output=\S*%A_%a\S*$", "a log per task")
        self.assertRegex(text, r'(?m)^exec "\$\{BLAST:-blast\}" send ',
                         "blast's exit code, its signals")
        with open(self.script("submit.sh")) as f:
            text = f.read()
        self.assertIn('--output="$state/logs/$name-%A_%a.out"', text)
        self.assertIn('--dependency="afterany:$shards"', text)

    def env(self, **kw):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SLURM_", "SBATCH_", "BLAST_"))}
        env["BLAST_DNS_SERVERS"] = os.environ["BLAST_DNS_SERVERS"]  # no lookup leaves loopback
        env.update(kw)
        return env

    def test_a_task_without_an_explicit_count_sends_nothing(self):
        # a rerun alone is an array of one (SLURM_ARRAY_TASK_COUNT=1): without
        # BLAST_SHARD_COUNT the task would send the whole list as one shard
        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "blast")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho ran >> \"$0.ran\"\n")
            os.chmod(fake, 0o755)
            base = dict(BLAST=fake, BLAST_CAMPAIGN=os.path.join(d, "c.yml"),
                        BLAST_STATE_DIR=os.path.join(d, "state"),
                        SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_TASK_COUNT="1")
            for drop, says in (("BLAST_SHARD_COUNT", "BLAST_SHARD_COUNT"),
                               ("BLAST_STATE_DIR", "BLAST_STATE_DIR"),
                               ("SLURM_ARRAY_TASK_ID", "not an array task")):
                env = self.env(**base, BLAST_SHARD_COUNT="4")
                del env[drop]
                p = subprocess.run([self.script("blast-campaign.sbatch")], env=env,
                                   capture_output=True, text=True, timeout=30)
                self.assertNotEqual(p.returncode, 0, drop)
                self.assertIn(says, p.stderr)
            self.assertFalse(os.path.exists(fake + ".ran"), "blast ran")
            # with everything: blast's own arguments, the shard's files
            env = self.env(**base, BLAST_SHARD_COUNT="4")
            with open(fake, "w") as f:
                f.write('#!/bin/sh\necho "$BLAST_SHARD_COUNT $*"\nexit 3\n')
            p = subprocess.run([self.script("blast-campaign.sbatch"), "--deadline", "5m"],
                               env=env, capture_output=True, text=True, timeout=30)
            want = ["4", "send", os.path.join(d, "c.yml"),
                    "--journal", os.path.join(d, "state", "journals", "c.shard-2-of-4.journal"),
                    "--report", os.path.join(d, "state", "reports", "c.shard-2-of-4.json"),
                    "--deadline", "5m"]
            self.assertEqual(p.returncode, 3, "blast's exit code is the task's")
            self.assertEqual(p.stdout.split(), want)
            # a campaign given by a relative path goes to blast by its absolute path, as
            # submit.sh gives it: the journal's hash covers the path as written
            env["BLAST_CAMPAIGN"] = "c.yml"
            p = subprocess.run([self.script("blast-campaign.sbatch"), "--deadline", "5m"],
                               env=env, cwd=d, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.stdout.split(), want, p.stderr)

    def test_submit_refuses_before_submitting(self):
        with tempfile.TemporaryDirectory() as d:
            campaign = os.path.join(d, "c.yml")
            with open(campaign, "w") as f:
                f.write("name: c\n")
            # an sbatch that records being called: it must not be
            fake = os.path.join(d, "sbatch")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho called >> \"$0.called\"\necho 1\n")
            os.chmod(fake, 0o755)
            env = self.env(PATH=d + ":" + os.environ["PATH"])
            for args, says in ((["c.yml"], "-n N"),
                               (["-n", "0", "c.yml"], "-n N"),
                               (["-n", "x", "c.yml"], "-n N"),
                               (["-n", "4", "-t", "0", "c.yml"], "-t"),
                               (["-n", "4", "-r", "4", "c.yml"], "0..3"),
                               (["-n", "4", "-r", "1,x", "c.yml"], "0..3"),
                               (["-n", "4", "none.yml"], "no such file"),
                               (["-n", "4", "c.yml", "--deadline"], "usage")):
                p = subprocess.run([self.script("submit.sh"), *args], env=env, cwd=d,
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 2, f"{args}: {p.stderr}")
                self.assertIn(says, p.stderr, args)
            self.assertFalse(os.path.exists(fake + ".called"), "sbatch was called")


if __name__ == "__main__":
    unittest.main()
