#!/usr/bin/env bash
# campaign throughput, old tree vs this clone, alternating, idle: $1 clone, $2 old tree
cd /tmp; V=$1/.venv/bin/python
for i in 1 2 3 4; do
 for t in $2 $1; do
  PYTHONPATH=$t $V -c "
import json,os
from steerflow.bench import floor
import steerflow
r=floor.campaign_throughput(3000)
print('$t'[-12:], round(r['campaign_throughput_tasks_per_s']), round(r['floor_campaign_throughput_tasks_per_s']), round(r['campaign_throughput_tasks_per_s']/r['floor_campaign_throughput_tasks_per_s'],3), os.path.dirname(steerflow.__file__)[-25:], os.getloadavg()[0])
" 2>&1 | tail -1
 done
done
