import sys, collections
self_c = collections.Counter(); incl = collections.Counter(); total = 0
IDLE = ("EpollSelector.select", "Condition.wait", "Popen.poll", "Queue.get", "select (", "poll (")
for line in open(sys.argv[1]):
    line = line.rstrip()
    if not line: continue
    stack, n = line.rsplit(" ", 1); n = int(n)
    frames = stack.split(";")
    if not any(sys.argv[2] in f for f in frames): continue
    if any(frames[-1].startswith(i) for i in IDLE): continue
    total += n
    self_c[frames[-1]] += n
    for f in set(frames): incl[f] += n
print("total", total)
print("--- self"); [print(f"{c/total*100:5.1f}% {f[:150]}") for f, c in self_c.most_common(30)]
print("--- inclusive"); [print(f"{c/total*100:5.1f}% {f[:150]}") for f, c in incl.most_common(60)]
