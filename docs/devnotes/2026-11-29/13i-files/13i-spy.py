import sys, tempfile, collections
from concurrent.futures import wait
import steerflow as sf
from steerflow.bench.runtime import sleep_for
from steerflow.engines import pool as P
from steerflow import pipelining as PL
from steerflow.task import Function
cnt = collections.Counter()
lb = P.WarmPool.launch_behind
def spy_lb(self, launch, behind):
    r = lb(self, launch, behind); cnt["behind_" + str(r)] += 1; return r
P.WarmPool.launch_behind = spy_lb
lf = P.WarmPool._launch_function
def spy_lf(self, launch):
    cnt["direct"] += 1; return lf(self, launch)
P.WarmPool._launch_function = spy_lf
ra = PL.Pipeline._release_ahead
def spy_ra(self):
    cnt["release_ahead_calls"] += 1; return ra(self)
PL.Pipeline._release_ahead = spy_ra
bh = PL.Pipeline._behind
def spy_bh(self, record, placement, now):
    r = bh(self, record, placement, now); cnt["_behind_" + str(r)] += 1
    if record.id in self._held: cnt["held"] += 1
    return r
PL.Pipeline._behind = spy_bh
c = int(sys.argv[1])
with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp(), max_bypass=None) as rt:
    wait([rt.submit(Function(sleep_for, (0.05,), cores=c)) for _ in range(2)])
    cnt.clear()
    wait([rt.submit(Function(sleep_for, (0.01,), cores=c)) for _ in range(100)])
print(c, dict(cnt))
