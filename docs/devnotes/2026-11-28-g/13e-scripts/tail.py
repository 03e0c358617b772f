import heapq
from steerflow.bench.floor import mixed_set
def greedy_trace(tasks, cores):
    now, free = 0.0, cores; queue = list(enumerate(tasks)); running = []; starts = {}
    while queue or running:
        started = []
        for j, (i, (c, d)) in enumerate(queue):
            if c <= free:
                free -= c; heapq.heappush(running, (now + d, c, i)); starts[i] = now; started.append(j)
        for j in reversed(started): queue.pop(j)
        end, c, i = heapq.heappop(running); now, free = end, free + c
        while running and running[0][0] <= now:
            free += heapq.heappop(running)[1]
    return now, starts
for seed in range(7, 13):
    ts = [(c, d) for _, c, d in mixed_set(seed=seed)]
    mk, starts = greedy_trace(ts, 2)
    last1 = max(starts[i] + ts[i][1] for i in range(len(ts)) if ts[i][0] == 1)
    wide = [i for i in range(len(ts)) if ts[i][0] == 2]
    tail = [i for i in wide if starts[i] >= last1 - 1e-9]
    print(seed, "makespan %.3f" % mk, "2-core tasks", len(wide), "run after the last 1-core ends:", len(tail),
          "tail %.3f s" % (mk - last1))
