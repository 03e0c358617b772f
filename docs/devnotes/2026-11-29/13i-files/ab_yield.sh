#!/bin/bash
# A/B of the hand-over yield in the same minutes: the mixed rows (new design), yield off / on alternating
cd /work/wt-13i
for r in 1 2; do
  for y in 0 1; do
    echo "yield=$y round=$r $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    STEERFLOW_HANDOVER_YIELD=$y .venv/bin/python benchmarks/bench_mixed_reservation.py 1
  done
done
