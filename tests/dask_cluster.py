"""A real Dask cluster for tests: one `dask scheduler` and N `dask worker` processes on 127.0.0.1.

Random ports (the scheduler writes its address to a scheduler file), bounded waits, every
process started in its own session and killed by pid (with its process group) at the end.
Each worker declares a node: ``--resources cores=C,gpus=G`` and STEERFLOW_NODE_* variables.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from steerflow.engines.dask_batch import QUIET_WORKER

BIN = Path(sys.executable).parent
# util-linux's setpriv sets PR_SET_PDEATHSIG before it execs the command: the kernel kills the
# process when the thread that started it (the test process's main thread) dies
SETPRIV = shutil.which("setpriv")


@dataclass
class DaskCluster:
    directory: Path
    scheduler: subprocess.Popen | None = None
    address: str = ""
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    tls: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # for every worker

    def start_scheduler(self, timeout: float = 60) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        sched_file = self.directory / "scheduler.json"
        cmd = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
               "--scheduler-file", str(sched_file)]
        if self.tls:
            cmd[4:4] = ["--protocol", "tls", "--tls-ca-file", self.tls["ca"], "--tls-cert", self.tls["cert"],
                        "--tls-key", self.tls["key"]]
        self.scheduler = self._spawn(cmd, "scheduler", {})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited: {(self.directory / 'scheduler.log').read_text()}")
            try:
                self.address = json.loads(sched_file.read_text())["address"]
                return self.address
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        raise TimeoutError(f"dask scheduler did not write {sched_file} within {timeout} s")

    def start_worker(self, name: str, cores: int = 2, gpus: int = 0, host: str = "localhost",
                     cpus: str | None = None, gpu_ids: str | None = None) -> subprocess.Popen:
        env = {"STEERFLOW_NODE_NAME": name, "STEERFLOW_NODE_HOST": host, **self.extra_env}
        if cpus:
            env["STEERFLOW_NODE_CPUS"] = cpus
        if gpu_ids:
            env["STEERFLOW_NODE_GPU_IDS"] = gpu_ids
        cmd = [str(BIN / "dask"), "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
               "--worker-class", QUIET_WORKER,  # no HTTP port (Dask's own worker opens one even so)
               "--host", "127.0.0.1", "--name", name, "--resources", f"cores={cores},gpus={gpus}",
               "--death-timeout", "60"]
        if self.tls:
            cmd += ["--tls-ca-file", self.tls["ca"], "--tls-cert", self.tls["cert"], "--tls-key", self.tls["key"]]
        proc = self._spawn(cmd, f"worker-{name}", env)
        self.workers[name] = proc
        return proc

    def _spawn(self, cmd: list[str], label: str, env: dict[str, str]) -> subprocess.Popen:
        if SETPRIV:  # killed with the test process, even by SIGKILL (then no fixture tear-down runs)
            cmd = [SETPRIV, "--pdeathsig", "KILL", *cmd]
        log = open(self.directory / f"{label}.log", "ab")
        full_env = dict(os.environ, **env)
        full_env.pop("STEERFLOW_ENGINE", None)
        try:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=full_env, cwd=self.directory)
        finally:
            log.close()

    def wait_workers(self, n: int, timeout: float = 90) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout, security=self.security()) as client:
            client.wait_for_workers(n, timeout=timeout)

    def security(self):
        if not self.tls:
            return None
        from distributed.security import Security

        return Security(tls_ca_file=self.tls["ca"], tls_client_cert=self.tls["cert"],
                        tls_client_key=self.tls["key"], require_encryption=True)

    def kill_worker(self, name: str) -> None:
        proc = self.workers.pop(name)
        _kill(proc)

    def stop(self) -> None:
        for proc in self.workers.values():
            _kill(proc)
        self.workers.clear()
        if self.scheduler is not None:
            _kill(self.scheduler)
            self.scheduler = None

    def pids(self) -> list[int]:
        out = [p.pid for p in self.workers.values()]
        return out + ([self.scheduler.pid] if self.scheduler else [])


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def make_tls_files(directory: Path) -> dict[str, str]:
    """A CA and one certificate signed by it (for scheduler, workers and the driver), mode 0600."""
    from steerflow.engines.dask_tls import write_certificates

    return write_certificates(directory)
