import sys,json
for l in sys.stdin:
    try: r=json.loads(l)
    except: print(l, end=''); continue
    print(r['arm'], round(r['wall_ms'],1), round(r['efficiency_pct'],2), 'idle',round(r['idle_core_ms'],1),'gaps',r['gaps_sum_ms'],'over',{k:(v['n'],v['sum_ms'],v['per_task_ms']) for k,v in r['overrun'].items()}, 'lead',r['lead_ms'],'tail',r['tail_ms'])
    print('   big', r['gaps_over_2ms'])
    print('   ', {k:(v['n'],v['sum_ms'],v['p50_ms']) for k,v in r['gaps'].items()})
