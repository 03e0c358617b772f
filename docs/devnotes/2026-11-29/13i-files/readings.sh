#!/bin/bash
# 10 readings of the mixed rows (new design, new code), at normal priority, with 5 readings of the old design on
# the session-start code (4fa63d2, by PYTHONPATH) interleaved in the same minutes.
cd /tmp
for i in 1 2 3 4 5 6 7 8 9 10; do
  echo "NEW $i $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  /work/wt-13i/.venv/bin/python /work/wt-13i/benchmarks/bench_mixed_reservation.py 1
  if [ $i -le 5 ]; then
    echo "OLD $i $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    PYTHONPATH=/tmp/13i-oldtree /work/wt-13i/.venv/bin/python /tmp/13i-oldtree/benchmarks/bench_mixed_reservation.py 1
  fi
done
echo "END $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
