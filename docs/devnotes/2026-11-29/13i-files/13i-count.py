import sys, tempfile, collections
from concurrent.futures import wait
import steerflow as sf
from steerflow.bench.runtime import sleep_for
from steerflow.engines import local
from steerflow.task import Function
cnt = collections.Counter()
real = local._preempted_here
def spy(pid):
    r = real(pid); cnt[r] += 1; return r
local._preempted_here = spy
c = int(sys.argv[1])
with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp(), max_bypass=None) as rt:
    wait([rt.submit(Function(sleep_for, (0.05,), cores=c)) for _ in range(2)])
    wait([rt.submit(Function(sleep_for, (0.012,), cores=c)) for _ in range(200)])
print(c, dict(cnt))
