#!/usr/bin/env bash
# End-of-session measurements, one at a time, from a fresh clone of main with its CI venv: $1 = clone dir, $2 = start sha
set -u
d=$1; start=$2; cd $d
tag=2026-11-29
out=/work/notes/endbench.log
echo "== $(date -u +%H:%M) start $(git rev-parse --short HEAD) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out
echo "-- bench runtime $(date -u +%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out
.venv/bin/steerflow bench runtime --json benchmarks/results/runtime-$tag-idle.json >> $out 2>&1
echo "-- mixed rounds x4 $(date -u +%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out
.venv/bin/python benchmarks/bench_mixed_reservation.py 4 > /work/notes/mixed-idle.out 2>&1; echo "mixed rc=$?" >> $out
tail -8 /work/notes/mixed-idle.out >> $out
echo "-- bench runtime dask $(date -u +%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out
.venv/bin/steerflow bench runtime --engine dask --json benchmarks/results/runtime-dask-$tag-idle.json >> $out 2>&1
echo "-- dask A/B $start vs here $(date -u +%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out
rm -rf /tmp/old-tree && mkdir -p /tmp/old-tree && git archive $start | tar -x -C /tmp/old-tree
.venv/bin/python benchmarks/bench_dask_ab.py /tmp/old-tree . --rounds 2 --json /work/notes/dask-ab-idle.json >> $out 2>&1
echo "-- demo $(date -u +%H:%M)" >> $out
/usr/bin/time -v .venv/bin/steerflow run examples/01-active-learning-ip/campaign.py > /work/notes/demo.log 2>&1; echo "demo rc=$?" >> $out
tail -25 /work/notes/demo.log >> $out
echo "-- example 03 $(date -u +%H:%M)" >> $out
/usr/bin/time -v .venv/bin/python examples/03-molecular-design/campaign.py --budget 400 > /work/notes/ex03.log 2>&1; echo "ex03 rc=$?" >> $out
tail -30 /work/notes/ex03.log >> $out
echo "== done $(date -u +%H:%M)" >> $out
