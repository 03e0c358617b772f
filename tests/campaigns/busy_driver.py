"""A driver whose every kind of task is busy: two function workers, a program and a 2-rank MPI job.

Each task writes its pid to DIR/<name>.pid, then runs for an hour. The test SIGKILLs this driver.
"""

import os
import shutil
import sys
import time

import steerflow as sf

directory = sys.argv[1]


def hold(name):
    with open(os.path.join(directory, f"{name}.pid"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(3600)


RANK = ("import os, sys, time; r = os environ".replace(" environ", ".environ") +
        "['STEERFLOW_RANK']; open(os.path.join(sys.argv[1], f'rank{r}.pid'), 'w').write(str(os.getpid())); "
        "time.sleep(3600)")

rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=5), run_dir=os.path.join(directory, "run"))
rt.submit(hold, "fn0")
rt.submit(hold, "fn1")
rt.submit(sf.Executable(["sh", "-c", f"echo $$ > {directory}/exe.pid; exec sleep 3600"]))
if shutil.which("mpirun") and len(sys.argv) > 2:
    rt.submit(sf.Executable([sys.executable, "-c", RANK, directory], ranks=2))
time.sleep(3600)
