"""A private Slurm cluster of one node on 127.0.0.1, for the tests of sharding over a
job array (docs/sharding.md).

Debian's slurmctld, slurmd and munge (22.05 in Debian 12) run in a work directory of
their own under a temp dir: slurm.conf, state, spool, logs and pid files there, munged
with a throwaway key on a socket there, slurmctld and slurmd on free loopback ports.
No accounting, no cgroups (proctrack/linuxproc, task/none), so it runs in a container
without systemd. Tests run as root, and so do the daemons (SlurmUser=root; munged
runs as root too, which it allows).

    with Slurm() as slurm:
        job = slurm.sbatch("#!/bin/sh\\n#SBATCH --array=0-3\\ntrue\\n", "--chdir", d)
        tasks = slurm.wait(job, timeout=60)   # {0: Task(state, exit_code, signal), ...}

The exit code of each array task comes from `scontrol show job` (MinJobAge keeps a
finished job's record for an hour) and, when the controller has forgotten a job,
from the job completion log (JobCompType=jobcomp/filetxt), which has a line for every
task that ended.
"""

import atexit
import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from tests.integration.servers import free_port

MUNGED = "/usr/sbin/munged"
SLURMCTLD = "/usr/sbin/slurmctld"
SLURMD = "/usr/sbin/slurmd"
NODE = "localhost"

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT"}

Task = collections.namedtuple("Task", "state exit_code signal")

# Whatever a test forgot to stop is stopped when the interpreter exits.
_running = set()


@atexit.register
def _stop_leftovers():
    for cluster in list(_running):
        with contextlib.suppress(Exception):
            cluster.stop()


class SlurmError(RuntimeError):
    pass


def _tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _hardware():
    """The node's CPUs as slurmd sees them (`slurmd -C`), for its NodeName line."""
    try:
        out = subprocess.run([SLURMD, "-C"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    fields = dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0] if out else ""))
    keep = ["CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore"]
    if all(k in fields for k in keep):
        return " ".join(f"{k}={fields[k]}" for k in keep)
    return f"CPUs={os.cpu_count() or 1}"


class Slurm:
    """One slurmctld and one slurmd (node `localhost`, 127.0.0.1), with their munged."""

    def __init__(self, start_timeout=30.0):
        self.work = tempfile.mkdtemp(prefix="blast-slurm-")
        # munged wants every directory above its socket open to all (execute)
        os.chmod(self.work, 0o755)
        self.procs = {}
        self.stopped = False
        _running.add(self)
        try:
            self._layout()
            self._start(start_timeout)
        except BaseException:
            self.stop()
            raise

    # ---- files ---------------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def _layout(self):
        for d, mode in (("munge", 0o700), ("run", 0o755), ("state", 0o700),
                        ("spool", 0o755), ("log", 0o755)):
            os.makedirs(self.path(d), mode=mode)
            os.chmod(self.path(d), mode)
        self.key = self.path("munge", "munge.key")
        with open(os.open(self.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400), "wb") as f:
            f.write(os.urandom(1024))
        self.socket = self.path("run", "munge.socket")
        self.ctld_port = free_port()
        self.slurmd_port = free_port()
        self.conf = self.path("slurm.conf")
        self.jobcomp = self.path("log", "jobcomp.txt")
        with open(self.path("plugstack.conf"), "w") as f:
            f.write("# no SPANK plugins\n")
        self.conf_text = f"""\
# a private one-node cluster for blast's integration tests (tests/integration/slurm.py)
ClusterName=blasttest
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
StateSaveLocation={self.path("state")}
SlurmdSpoolDir={self.path("spool")}
SlurmctldPidFile={self.path("run", "slurmctld.pid")}
SlurmdPidFile={self.path("run", "slurmd.pid")}
SlurmctldLogFile={self.path("log", "slurmctld.log")}
SlurmdLogFile={self.path("log", "slurmd.log")}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={self.path("plugstack.conf")}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
KillWait=2
InactiveLimit=0
MessageTimeout=10
SlurmdTimeout=300
SlurmctldTimeout=120
NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={NODE} {_hardware()} State=UNKNOWN
PartitionName=test Nodes={NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""
        with open(self.conf, "w") as f:
            f.write(self.conf_text)
        # every process of this cluster (daemons, slurmstepd, the jobs: sbatch passes
        # the environment on) carries this, which is how stop() finds stragglers
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        for k in list(self.env):
            if k.startswith(("SLURM_", "SBATCH_", "SALLOC_", "SRUN_")) and k != "SLURM_CONF":
                del self.env[k]

    # ---- daemons --------------------------------------------------------------------

    def _spawn(self, name, cmd):
        out = open(self.path("log", f"{name}.out"), "wb")
        try:
            self.procs[name] = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                                                stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        finally:
            out.close()

    def _alive(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            raise SlurmError(f"{name} exited ({p.returncode if p else 'not started'})\n"
                             + self.log())

    def _until(self, what, check, deadline, daemons):
        while True:
            for d in daemons:
                self._alive(d)
            with contextlib.suppress(Exception):
                if check():
                    return
            if time.monotonic() > deadline:
                raise SlurmError(f"Slurm did not start: {what}\n" + self.log())
            time.sleep(0.1)

    def _start(self, timeout):
        deadline = time.monotonic() + timeout
        self._spawn("munged", [MUNGED, "--foreground", f"--socket={self.socket}",
                               f"--key-file={self.key}",
                               f"--log-file={self.path('log', 'munged.log')}",
                               f"--pid-file={self.path('run', 'munged.pid')}",
                               f"--seed-file={self.path('munge', 'munged.seed')}"])

        def munge_works():
            cred = subprocess.run(["munge", "-S", self.socket, "-n"], capture_output=True,
                                  timeout=5)
            return cred.returncode == 0 and subprocess.run(
                ["unmunge", "-S", self.socket], input=cred.stdout, capture_output=True,
                timeout=5).returncode == 0
        self._until("munged does not answer", munge_works, deadline, ["munged"])

        self._spawn("slurmctld", [SLURMCTLD, "-D", "-i", "-f", self.conf])
        self._until("slurmctld does not answer `scontrol ping`",
                    lambda: "is UP" in self.run("scontrol", "ping", timeout=5).stdout,
                    deadline, ["munged", "slurmctld"])

        self._spawn("slurmd", [SLURMD, "-D", "-f", self.conf, "-N", NODE])

        def node_idle():
            out = self.run("sinfo", "-h", "-N", "-n", NODE, "-o", "%T", timeout=5).stdout
            return out.strip().rstrip("*") == "idle"
        self._until(f"node {NODE} does not come up idle", node_idle, deadline,
                    ["munged", "slurmctld", "slurmd"])

    # ---- clients --------------------------------------------------------------------

    def run(self, *cmd, timeout=20, env=None, input=None):
        """A Slurm client command against this cluster (bounded)."""
        full = dict(self.env)
        full.update(env or {})
        return subprocess.run(list(cmd), env=full, input=input, capture_output=True, text=True,
                              timeout=timeout)

    def sbatch(self, script_text, *args, env=None, timeout=20):
        """Submit a batch script (its text); return the job id (for an array, the array's)."""
        p = self.run("sbatch", "--parsable", *args, timeout=timeout, env=env, input=script_text)
        if p.returncode != 0:
            raise SlurmError(f"sbatch failed ({p.returncode}): {p.stderr}\n" + self.log())
        return int(p.stdout.strip().split(";")[0])

    def scancel(self, *args, timeout=20):
        return self.run("scancel", *args, timeout=timeout)

    def requeue(self, task, timeout=20.0):
        """Run an ended task ("JOB_I") again in its own array, now: `scontrol requeue`,
        then, once Slurm has held it back with a begin time (it does, for a requeued
        job), `scontrol update StartTime=now`. The task keeps its array's environment
        (SLURM_ARRAY_TASK_COUNT is still the array's)."""
        p = self.run("scontrol", "requeue", str(task), timeout=10)
        if p.returncode != 0:
            raise SlurmError(f"scontrol requeue {task}: {p.stderr}\n" + self.log())
        deadline = time.monotonic() + timeout
        while True:
            recs = self.records(task)
            if recs and (recs[0].get("JobState") != "PENDING"
                         or recs[0].get("Reason") == "BeginTime"):
                break
            if time.monotonic() > deadline:
                raise SlurmError(f"{task} not requeued after {timeout:.0f}s: {recs}\n" + self.log())
            time.sleep(0.2)
        if recs[0].get("JobState") == "PENDING":
            p = self.run("scontrol", "update", f"JobId={task}", "StartTime=now", timeout=10)
            if p.returncode != 0:
                raise SlurmError(f"scontrol update {task} StartTime=now: {p.stderr}")

    def records(self, job_id):
        """`scontrol show job -o JOB`: one dict per record (an array's pending tasks are one
        record whose ArrayTaskId is a range). [] when the controller has no such job."""
        p = self.run("scontrol", "show", "job", "-o", str(job_id), timeout=10)
        if p.returncode != 0:
            if "Invalid job id" in p.stderr:
                return []
            raise SlurmError(f"scontrol show job {job_id}: {p.stderr}")
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in p.stdout.splitlines()
                if line.strip()]

    def completions(self, job_id):
        """Tasks of job_id the job completion log has: {task id (None if no array): Task}."""
        out = {}
        for line in _tail(self.jobcomp, 100000).splitlines():
            f = dict(re.findall(r"(\w+)=(\S*)", line))
            ids = {f.get("JobId"), f.get("ArrayJobId")}
            if str(job_id) not in ids:
                continue
            task = f.get("ArrayTaskId")
            task = int(task) if task and task.isdigit() else None
            out[task] = _task(f.get("JobState", "?"), f.get("ExitCode", "?"))
        return out

    def tasks(self, job_id):
        """({task id: Task} of the tasks known, whether any task is still to end)."""
        recs = self.records(job_id)
        out, open_ = {}, False
        for r in recs:
            state = r.get("JobState", "?")
            tid = r.get("ArrayTaskId")
            if tid is None or not tid.isdigit():
                if tid is not None or state not in TERMINAL:
                    open_ = True   # a pending range, or a job that is not an array
                if tid is None and state in TERMINAL:
                    out[None] = _task(state, r.get("ExitCode", "?"))
                continue
            if state not in TERMINAL:
                open_ = True
            out[int(tid)] = _task(state, r.get("ExitCode", "?"))
        if not recs:
            out = self.completions(job_id)
        return out, open_

    def wait(self, job_id, timeout=60.0):
        """Wait until every task of job_id has ended (bounded); return {task id: Task}
        (task id None for a job that is not an array)."""
        deadline = time.monotonic() + timeout
        while True:
            for d in ("slurmctld", "slurmd"):
                self._alive(d)
            out, open_ = self.tasks(job_id)
            if out and not open_:
                return out
            if time.monotonic() > deadline:
                raise SlurmError(f"job {job_id} still running after {timeout:.0f}s: {out}\n"
                                 + self.run("squeue", "-a").stdout + self.log())
            time.sleep(0.2)

    def log(self, n=25):
        """The tails of the daemons' logs, for a failure's message."""
        out = []
        for name in ("munged.log", "munged.out", "slurmctld.log", "slurmctld.out",
                     "slurmd.log", "slurmd.out"):
            text = _tail(self.path("log", name), n)
            if text.strip():
                out.append(f"--- {name} ---\n{text}")
        return "".join(out)

    # ---- stop -----------------------------------------------------------------------

    def _stragglers(self):
        """Pids of processes (other than the daemons) whose environment is this cluster's:
        slurmstepd and the jobs it runs."""
        mine = f"SLURM_CONF={self.conf}".encode()
        daemons = {p.pid for p in self.procs.values()}
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) in daemons or int(pid) == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if mine in f.read().split(b"\0"):
                        out.append(int(pid))
            except OSError:
                pass
        return out

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        _running.discard(self)
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            with contextlib.suppress(Exception):
                self.run("scancel", "--user", "root", "--full", "--signal", "KILL", timeout=5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for pid in self._stragglers():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _task(state, exit_code):
    rc, _, sig = exit_code.partition(":")
    return Task(state, int(rc) if rc.isdigit() else None, int(sig) if sig.isdigit() else None)
