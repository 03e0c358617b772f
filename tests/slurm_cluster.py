"""A real single-node SLURM for tests: munged, slurmctld and slurmd on localhost, all under one directory.

Settings checked on Debian 12's slurm-wlm 22.05 (see CLUSTER.md): munge with its own key and
socket, select/cons_tres, proctrack/linuxproc, task/none, MpiDefault=pmix, no accounting.
Every wait is bounded; the daemons are stopped by pid (TERM, then KILL after a bounded wait).
`why_not()` says exactly why SLURM cannot run here, for the skip message.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "sinfo", "squeue", "scancel")


def why_not() -> str | None:
    """None if a private SLURM can run here, else the reason."""
    missing = [p for p in (*DAEMONS, *CLIENTS) if shutil.which(p) is None]
    if missing:
        return (f"SLURM is not installed ({', '.join(missing)} not found); `bash scripts/bootstrap.sh demo` installs "
                "Debian's slurm-wlm and munge when run as root.")
    if os.geteuid() != 0:
        return "the private SLURM runs its daemons as root (SlurmUser=root); this test is not running as root."
    return None


class SlurmCluster:
    def __init__(self) -> None:
        # a short path: munge's socket path must fit in a sockaddr_un
        self.dir = Path(tempfile.mkdtemp(prefix="sf-slurm-"))
        os.chmod(self.dir, 0o755)  # munged wants every directory above its socket searchable by all
        self.conf = self.dir / "slurm.conf"
        self.host = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    # ---- bring-up ------------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> None:
        self._start_munge()
        self._write_conf()
        for name in ("slurmctld", "slurmd"):
            self._spawn(name, [shutil.which(name), "-D", "-f", str(self.conf)])  # type: ignore[list-item]
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {self.log(name)[-2000:]}")
            try:
                state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True,
                                       timeout=5).stdout.strip()
            except subprocess.TimeoutExpired:
                state = "(sinfo timed out)"
            if state == "idle":
                return
            time.sleep(0.2)
        raise TimeoutError(f"SLURM did not become idle within {timeout} s (sinfo: {state!r}); "
                           f"slurmctld log: {self.log('slurmctld')[-1500:]} slurmd log: {self.log('slurmd')[-1500:]}")

    def _start_munge(self) -> None:
        sock_dir = self.dir / "munge"
        key_dir = self.dir / "munge-key"
        sock_dir.mkdir(mode=0o755)
        key_dir.mkdir(mode=0o700)
        os.chmod(sock_dir, 0o755)
        key = key_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = sock_dir / "munge.socket"
        self._spawn("munged", [shutil.which("munged"), "-F", f"--key-file={key}",  # type: ignore[list-item]
                               f"--socket={self.munge_socket}", f"--pid-file={self.dir / 'munged.pid'}",
                               f"--log-file={self.dir / 'munged.log'}", f"--seed-file={self.dir / 'munged.seed'}"])
        deadline = time.monotonic() + 10
        while not self.munge_socket.exists():
            if self.procs["munged"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"munged did not start: {self.log('munged')}")
            time.sleep(0.05)

    def _write_conf(self) -> None:
        hw = subprocess.run([shutil.which("slurmd"), "-C"], capture_output=True, text=True,  # type: ignore[list-item]
                            timeout=10).stdout
        fields = dict(re.findall(r"(\w+)=(\S+)", hw.splitlines()[0]))
        for sub in ("state", "spool", "logs"):
            (self.dir / sub).mkdir()
        s = self.dir
        node = (f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={fields['CPUs']} "
                f"SocketsPerBoard={fields['SocketsPerBoard']} CoresPerSocket={fields['CoresPerSocket']} "
                f"ThreadsPerCore={fields['ThreadsPerCore']} RealMemory={fields['RealMemory']} State=UNKNOWN")
        self.cpus = int(fields["CPUs"])
        self.conf.write_text("\n".join([
            "ClusterName=steerflow-test", f"SlurmctldHost={self.host}(127.0.0.1)",
            "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge", f"AuthInfo=socket={self.munge_socket}",
            "CredType=cred/munge", f"StateSaveLocation={s}/state", f"SlurmdSpoolDir={s}/spool",
            f"SlurmctldPidFile={s}/slurmctld.pid", f"SlurmdPidFile={s}/slurmd.pid",
            f"SlurmctldLogFile={s}/logs/slurmctld.log", f"SlurmdLogFile={s}/logs/slurmd.log",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core", "SchedulerType=sched/backfill", "MpiDefault=pmix",
            "ReturnToService=2", "MailProg=/bin/true", "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none", node,
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.dir / f"{name}.out", "ab")
        try:
            self.procs[name] = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()

    def log(self, name: str) -> str:
        text = ""
        for path in (self.dir / f"{name}.out", self.dir / "logs" / f"{name}.log", self.dir / f"{name}.log"):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    # ---- tear-down -----------------------------------------------------------------------------
    def stop(self) -> None:
        try:
            subprocess.run(["scancel", "--user", "root"], env=self.env, capture_output=True, timeout=5)
        except (subprocess.TimeoutExpired, OSError):
            pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # slurmd ignores TERM while it retries a dead controller
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
