#!/usr/bin/env python3
"""Where an Offload run's time went, batch by batch.

    bench/batch-costs.py OUTPUT_DIR

OUTPUT_DIR is a run's `[report] output_dir` from `offload run --trace` (it needs
trace.json, junit.xml and logs/). For each batch: its tests, the distinct files
(pytest) or test binaries (cargo) they come from, when it started, its wall time,
the sum of its tests' JUnit times, and the difference (the batch's fixed cost:
process start, imports, collection, the runner's bookkeeping). Then the run's wall
time and how much of it passed before the first batch started (discovery and
planning) and after the last one ended.
"""

import json
import os
import re
import sys
import xml.etree.ElementTree as ET


def source_of(test_id):
    """The file (pytest node ID) or test binary (cargo `binary test`) of a test."""
    if ".py::" in test_id:
        return test_id.split("::", 1)[0]
    return test_id.split(" ", 1)[0]


def main(out_dir):
    events = json.load(open(os.path.join(out_dir, "trace.json")))
    events = events["traceEvents"] if isinstance(events, dict) else events
    run = next(e for e in events if e.get("name") == "run" and e.get("ph") == "X")
    batches = sorted(
        (e for e in events if e.get("ph") == "X" and "batch" in e.get("args", {})),
        key=lambda e: e["ts"],
    )
    times = {}
    for case in ET.parse(os.path.join(out_dir, "junit.xml")).iter("testcase"):
        times[case.get("name")] = float(case.get("time") or 0)

    print(f"{'batch':>5} {'sandbox':>7} {'tests':>6} {'files':>6} {'start':>7} "
          f"{'wall':>7} {'sum junit':>9} {'fixed':>7} {'runner says':>11} {'outside it':>10}")
    fixed_costs = []
    for e in batches:
        args = e["args"]
        ids = [t["id"] for t in args.get("tests", [])]
        wall = e["dur"] / 1e6
        junit = sum(times.get(i, 0.0) for i in ids)
        fixed_costs.append(wall - junit)
        said = None
        for name in os.listdir(os.path.join(out_dir, "logs")):
            if name.startswith(f"batch-{args['batch']}."):
                text = open(os.path.join(out_dir, "logs", name), errors="replace").read()
                # nextest: "Summary [  12.3s]" (its run, after cargo and listing
                # the binaries); pytest: "=== 217 passed, 15 skipped in 18.86s ==="
                m = re.findall(r"Summary \[\s*([0-9.]+)s\]", text) or re.findall(r" in ([0-9.]+)s =", text)
                said = float(m[-1]) if m else None
        print(f"{args['batch']:>5} {args.get('sandbox', ''):>7} {len(ids):>6} "
              f"{len({source_of(i) for i in ids}):>6} {e['ts'] / 1e6:>6.2f}s "
              f"{wall:>6.2f}s {junit:>8.2f}s {wall - junit:>6.2f}s "
              + (f"{said:>10.2f}s {wall - said:>9.2f}s" if said is not None else ""))
    total = run["dur"] / 1e6
    first = batches[0]["ts"] / 1e6 if batches else 0.0
    last_end = max((e["ts"] + e["dur"]) / 1e6 for e in batches) if batches else 0.0
    all_sources = {source_of(i) for i in times}
    print(f"\nrun {total:.2f} s; before the first batch {first:.2f} s; "
          f"after the last batch {total - last_end:.2f} s; {len(times)} tests from "
          f"{len(all_sources)} files/binaries; sum of JUnit times {sum(times.values()):.2f} s")
    if fixed_costs:
        fixed_costs.sort()
        print(f"fixed cost per batch: median {fixed_costs[len(fixed_costs) // 2]:.2f} s, "
              f"min {fixed_costs[0]:.2f} s, max {fixed_costs[-1]:.2f} s")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip())
    main(sys.argv[1])
