#!/usr/bin/env python3
"""sleep-suite.py OUT N SEED: the synthetic suite of docker-suite.sh and
shards.sh. Writes OUT/tests.txt (one ID per line, m003/t00042_47ms: the ID
carries its duration) and OUT/expected.env (SUM_MS, MAX_MS). Durations are
lognormal (median 40 ms, sigma 0.7, clamped to 10..200 ms) plus 1% long tests
of 600..1500 ms, the same for the same seed."""
import math
import random
import sys

out, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
ms = [int(min(max(round(40 * math.exp(rng.gauss(0.0, 0.7))), 10), 200)) for _ in range(n)]
for i in rng.sample(range(n), max(1, round(n / 100))):
    ms[i] = rng.randint(600, 1500)
with open(out + "/tests.txt", "w") as f:
    for i, m in enumerate(ms):
        f.write("m%03d/t%05d_%dms\n" % (i // 50, i, m))
with open(out + "/expected.env", "w") as f:
    f.write("SUM_MS=%d\nMAX_MS=%d\n" % (sum(ms), max(ms)))
