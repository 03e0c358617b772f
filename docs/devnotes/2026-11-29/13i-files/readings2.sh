#!/bin/bash
# 10 readings of the mixed rows on the final code (main 093a5e3 in /work/wt-13i), normal priority.
cd /tmp
for i in $(seq 1 ${N:-10}); do
  echo "NEW $i $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  /work/wt-13i/.venv/bin/python /work/wt-13i/benchmarks/bench_mixed_reservation.py 1
done
echo "END $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
