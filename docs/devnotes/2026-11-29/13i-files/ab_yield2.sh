#!/bin/bash
# A/B of the precise hand-over yield (the worker runnable on the loop's CPU) in the same minutes: mixed rows, off / on
cd /tmp
for r in 1 2; do
  for y in 0 1; do
    [ $r = 2 ] && y=$((1 - y))
    echo "yield=$y round=$r $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    PYTHONPATH=/tmp/13i-precise STEERFLOW_HANDOVER_YIELD=$y /work/wt-13i/.venv/bin/python /work/wt-13i/benchmarks/bench_mixed_reservation.py 1
  done
done
