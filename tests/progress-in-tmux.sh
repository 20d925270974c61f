#!/usr/bin/env bash
# Watch Offload's live progress the way a person does: run a command in a
# tmux window COLUMNS wide, snapshot the pane every half second, and check
# what was on the screen:
#   * within 1 s of the start, the discovery phase (`discovering group ...`);
#   * while the tests run, the done count taking several values before the
#     end (it moves test by test, not only when a batch ends);
#   * every status line keeps its clock or ETA whole (never cut mid-number).
#
# usage: tests/progress-in-tmux.sh [--columns "120 80 60"] [--] [COMMAND...]
# The default command is what `make test-offload` runs:
#   ./target/release/offload run
# (build first: `cargo build --release`). Needs tmux. Exit status 0 when
# every check held at every width; the snapshots are kept in $WORK.
set -euo pipefail

columns="120 80 60"
if [ "${1:-}" = --columns ]; then
    columns=$2
    shift 2
fi
[ "${1:-}" = -- ] && shift
if [ $# -eq 0 ]; then
    set -- ./target/release/offload run
fi
command -v tmux >/dev/null || { echo "tmux is needed (apt-get install tmux)" >&2; exit 2; }

WORK=${WORK:-$(mktemp -d /tmp/offload-progress.XXXXXX)}
failures=0
for width in $columns; do
    session="offload-progress-$$-$width"
    snaps="$WORK/$width"
    mkdir -p "$snaps"
    tmux new-session -d -s "$session" -x "$width" -y 40 \
        "cd $(printf %q "$PWD") && env -u CI $(printf '%q ' "$@"); echo __DONE__ \$?; sleep 30"
    start=$(date +%s.%N)
    i=0
    while :; do
        now=$(date +%s.%N)
        tmux capture-pane -p -t "$session" >"$snaps/$(printf %05d $i).txt" 2>/dev/null || break
        printf '%s\n' "$now" >"$snaps/$(printf %05d $i).at"
        grep -q '^__DONE__' "$snaps/$(printf %05d $i).txt" && break
        i=$((i + 1))
        sleep 0.5
    done
    tmux kill-session -t "$session" 2>/dev/null || true

    # 1. Discovery shown within 1 s.
    first_discovery=""
    for f in "$snaps"/*.txt; do
        if grep -q 'discovering group' "$f"; then
            first_discovery=$(cat "${f%.txt}.at")
            break
        fi
    done
    if [ -z "$first_discovery" ]; then
        echo "$width columns: the discovery phase was never on screen" >&2
        failures=$((failures + 1))
    elif python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) - float(sys.argv[2]) <= 1.0 else 1)" \
        "$first_discovery" "$start"; then
        :
    else
        echo "$width columns: the discovery phase appeared only after 1 s" >&2
        failures=$((failures + 1))
    fi
    # 2. The count took several values below the total; 3. clocks whole.
    python3 - "$snaps" "$width" <<'PY' || failures=$((failures + 1))
import glob, re, sys
snaps, width = sys.argv[1], int(sys.argv[2])
status = re.compile(r"^(\[[#.]+\] )?(\d+)/(\d+)( tests)?\b")
clock = re.compile(r"(ETA (\d+:\d\d(:\d\d)?|--)|\d+:\d\d(:\d\d)?)$")
seen, bad = set(), []
for path in sorted(glob.glob(f"{snaps}/*.txt")):
    lines = [l.rstrip() for l in open(path, encoding="utf-8", errors="replace")]
    live = [l for l in lines if status.match(l)]
    for l in live:
        m = status.match(l)
        done, total = int(m.group(2)), int(m.group(3))
        if done < total:
            seen.add(done)
        if len(l) >= width or not clock.search(l):
            bad.append(l)
ok = True
if len(seen) < 3:
    print(f"{width} columns: the count took only {sorted(seen)} below the total", file=sys.stderr)
    ok = False
if bad:
    print(f"{width} columns: status lines cut: {bad[:3]}", file=sys.stderr)
    ok = False
print(f"{width} columns: {len(seen)} counts seen during the run, {len(bad)} cut lines")
sys.exit(0 if ok else 1)
PY
done
echo "snapshots in $WORK"
exit $((failures > 0))
