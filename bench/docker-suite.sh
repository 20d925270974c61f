#!/usr/bin/env bash
# docker-suite.sh: Offload with the Docker provider of examples/docker on a
# synthetic suite, cold (no timing history) and warm (history of the run before),
# against the lower bound LB = max(longest test, sum of durations / P) + one
# container start.
#
#   bench/docker-suite.sh [-n TESTS] [-p CONTAINERS] [-r REPEATS] [-s SEED] [-o DIR]
#
# Defaults: 500 tests, 8 containers, 5 repetitions, seed 1, DIR a fresh
# directory under /var/tmp. OFFLOAD_BIN (default target/release/offload, built
# if missing) is the binary measured. The engine is the one DOCKER_HOST names, or
# the private engine of examples/docker/private-engine.sh, started here (as root)
# and stopped at the end when it was not running before.
#
# Suite: test durations are lognormal (median 40 ms, sigma 0.7, clamped to
# 10..200 ms) plus 1% long tests (600..1500 ms), all passing; a test's ID carries
# its duration (m003/t00042_47ms) and the runner, a busybox sh script in the
# container, sleeps that long and reports the time it measured.
# The config is examples/docker/offload.toml's [provider] as it is, with
# max_parallel = P and the default framework on that runner; the image is the
# example's Dockerfile FROM offload-busybox.
#
# Prints the per-call costs of the engine (median of 5; and P containers created
# at once, median of 3) and, for each kind of run, the median wall time with
# wall/LB. Each repetition runs Docker cold, Docker warm, then the same suite
# with the local provider cold and warm (LB without the container start): what
# the machine itself gives at that moment, since a loaded machine stretches
# every sleep; and the floor, a shell script making the docker calls of a
# perfect warm run with no runner around them. From each run's trace (offload
# run --trace, times from the start of the run's span) it also splits the wall
# time: when the first batch starts (its container is up), when the last batch
# ends, how long the containers take to go after that, and the time outside the
# run's span (process start, discovery, prepare = docker build, writing the
# report). Each run's CPU time is the whole machine's (/proc/stat, so other load
# counts too), against wall x cores: the engine's work for a container is CPU
# (dockerd, containerd, its shims, runc), and the busier the cores, the more the
# containers' start-up and removal hold the run up. The engine's CPU for one
# container's life (run, exec, cp, rm, one after another) is measured alone.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
N=500 P=8 R=5 SEED=1 OUT=""
while (($#)); do
    case $1 in
    -n) N=$2; shift ;;
    -p) P=$2; shift ;;
    -r) R=$2; shift ;;
    -s) SEED=$2; shift ;;
    -o) OUT=$2; shift ;;
    -h | --help) sed -n '2,39p' "$0"; exit 0 ;;
    *) echo "docker-suite.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
OFFLOAD_BIN=${OFFLOAD_BIN:-$repo/target/release/offload}
if [[ ! -x $OFFLOAD_BIN ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
OFFLOAD_BIN=$(cd "$(dirname "$OFFLOAD_BIN")" && pwd)/$(basename "$OFFLOAD_BIN")

# ------------------------------------------------------------------ engine
engine=$repo/examples/docker/private-engine.sh
started_engine=0
if [[ -z ${DOCKER_HOST:-} ]]; then
    if ! "$engine" status; then
        "$engine" start
        "$engine" status || { echo "docker-suite.sh: no Docker engine (see above)" >&2; exit 1; }
        started_engine=1
    fi
    eval "$("$engine" env)"
fi
export DOCKER_HOST
cleanup() {
    if ((started_engine)); then "$engine" stop; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
docker image inspect offload-busybox >/dev/null 2>&1 || "$engine" start

# ------------------------------------------------------------------- suite
OUT=${OUT:-$(mktemp -d /var/tmp/offload-docker-bench.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
S=$OUT/suite
rm -rf "$S"
mkdir -p "$S"
python3 "$here/sleep-suite.py" "$S" "$N" "$SEED"
# shellcheck disable=SC1091
source "$S/expected.env"
cat >"$S/run.sh" <<'SH'
#!/bin/sh
# run.sh RESULT_FILE ID...: each test sleeps the milliseconds its ID ends with
# (m003/t00042_47ms) and passes; JUnit with the time measured. Shell built-ins
# only, apart from sleep: no command substitution, so the runner adds little of
# its own per test. The clock is $EPOCHREALTIME (busybox ash, like bash, has it).
out=$1
shift
pad() { # pad WIDTH N: sets $padded to N with leading zeros
    padded=$2
    while [ ${#padded} -lt "$1" ]; do padded=0$padded; done
}
{
    echo '<testsuite name="bench">'
    for id in "$@"; do
        ms=${id##*_}
        ms=${ms%ms}
        pad 3 $((ms % 1000))
        t0=$EPOCHREALTIME
        sleep "$((ms / 1000)).$padded"
        t1=$EPOCHREALTIME
        us=$((${t1%.*}${t1#*.} - ${t0%.*}${t0#*.}))
        pad 6 $((us % 1000000))
        echo "<testcase classname=\"bench\" name=\"$id\" time=\"$((us / 1000000)).$padded\"/>"
    done
    echo '</testsuite>'
} >"$out"
SH
cp "$repo/examples/docker/Dockerfile" "$repo/examples/docker/.dockerignore" "$S/"
provider=$(awk '/^\[provider\]$/ { on = 1 } /^\[framework\]$/ { on = 0 } on' "$repo/examples/docker/offload.toml")
[[ $provider == *docker\ run* ]] || { echo "docker-suite.sh: no [provider] in examples/docker/offload.toml" >&2; exit 1; }
cat >"$S/offload.toml" <<EOF
# Generated by bench/docker-suite.sh: examples/docker/offload.toml's [provider].
[offload]
max_parallel = $P
test_timeout_secs = 300
sandbox_project_root = "/app"

$provider
[framework]
type = "default"
discover_command = "cat tests.txt {filters}"
run_command = "sh run.sh {result_file} {tests}"
test_id_format = "{name}"

[groups.all]
retry_count = 0
EOF
# The same suite with the local provider (the runner with busybox's sh here),
# for what the machine itself gives at the same moment.
cat >"$S/offload-local.toml" <<EOF
# Generated by bench/docker-suite.sh: the same suite with the local provider.
[offload]
max_parallel = $P
test_timeout_secs = 300

[provider]
type = "local"

[framework]
type = "default"
discover_command = "cat tests.txt {filters}"
run_command = "busybox sh run.sh {result_file} {tests}"
test_id_format = "{name}"

[groups.all]
retry_count = 0

[report]
output_dir = "test-results-local"
EOF
export DOCKER_SANDBOX_BASE=offload-busybox
command -v busybox >/dev/null || { echo "docker-suite.sh: busybox is not installed (apt-get install busybox-static)" >&2; exit 1; }

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }
cores=$(nproc)
tick=$(getconf CLK_TCK)
busy() { # CPU ticks the whole machine has spent busy since boot
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}
cpu_since() { # cpu_since TICKS: busy CPU seconds since busy printed TICKS
    awk -v a="$1" -v b="$(busy)" -v t="$tick" 'BEGIN { printf "%.2f\n", (b - a) / t }'
}
timed() { # timed CMD...: seconds the command took (its output discarded)
    local t0
    t0=$(now)
    "$@" >/dev/null 2>&1
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'
}

# ----------------------------------------------------------- per-call costs
image=$(cd "$S" && docker build -q --force-rm --build-arg BASE=$DOCKER_SANDBOX_BASE . 2>/dev/null | tail -1)
: >"$OUT/calls.tsv"
for _ in 1 2 3 4 5; do
    b=$(cd "$S" && timed docker build -q --force-rm --build-arg BASE=$DOCKER_SANDBOX_BASE .)
    t0=$(now)
    c=$(docker run -d --init --rm --label offload-sandbox "$image" sleep infinity)
    r=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }')
    e=$(timed docker exec "$c" sh -c true)
    docker exec "$c" sh -c 'mkdir -p /app/.offload/results && echo "<testsuite/>" >/app/.offload/results/x.xml'
    p=$(timed docker cp "$c:/app/.offload/results/x.xml" "$OUT/x.xml")
    d=$(timed docker rm -f "$c")
    printf '%s\t%s\t%s\t%s\t%s\n' "$b" "$r" "$e" "$p" "$d" >>"$OUT/calls.tsv"
done
rm -f "$OUT/x.xml"
# The engine's CPU for one container's life, with nothing else of ours running.
b0=$(busy)
for _ in 1 2 3 4 5; do
    c=$(docker run -d --init --rm --label offload-sandbox "$image" sleep infinity)
    docker exec "$c" sh -c 'mkdir -p /app/.offload/results && echo "<testsuite/>" >/app/.offload/results/x.xml'
    docker cp "$c:/app/.offload/results/x.xml" "$OUT/x.xml" >/dev/null
    docker rm -f "$c" >/dev/null
done
LIFE_CPU=$(awk -v c="$(cpu_since "$b0")" 'BEGIN { printf "%.2f", c / 5 }')
rm -f "$OUT/x.xml"
# P containers created at once, as a run creates its sandboxes: when each is up.
: >"$OUT/creates.tsv"
for _ in 1 2 3; do
    t0=$(now)
    for ((i = 1; i <= P; i++)); do
        (
            docker run -d --init --rm --label offload-sandbox "$image" sleep infinity >"$OUT/create-$i.id"
            now >"$OUT/create-$i.at"
        ) &
    done
    wait
    cat "$OUT"/create-*.at | awk -v a="$t0" '{ d = $1 - a; s += d; if (d > last) last = d }
        END { printf "%.3f\t%.3f\n", s / NR, last }' >>"$OUT/creates.tsv"
    # shellcheck disable=SC2046 # one word per container ID
    docker rm -f $(cat "$OUT"/create-*.id) >/dev/null
    rm -f "$OUT"/create-*
done
CREATE_MEAN=$(cut -f1 "$OUT/creates.tsv" | median) CREATE_LAST=$(cut -f2 "$OUT/creates.tsv" | median)
col() { cut -f"$1" "$OUT/calls.tsv" | median; }
BUILD=$(col 1) START=$(col 2) EXEC=$(col 3) CP=$(col 4) RM=$(col 5)
LB0=$(awk -v s="$SUM_MS" -v m="$MAX_MS" -v p="$P" \
    'BEGIN { t = s / 1000 / p; if (m / 1000 > t) t = m / 1000; printf "%.3f", t }')
LB=$(awk -v s="$SUM_MS" -v m="$MAX_MS" -v p="$P" -v c="$START" \
    'BEGIN { t = s / 1000 / p; if (m / 1000 > t) t = m / 1000; printf "%.3f", t + c }')

# --------------------------------------------------------------------- runs
# One run: wall time, then the phases from its trace (seconds from the start of
# the run): prepare done, last sandbox ready, last batch done, run end.
run_once() {
    local kind=$1 rep=$2 config results history dir t0 wall
    case $kind in
    docker-*) config=offload.toml results=test-results history=offload.history.tsv ;;
    local-*) config=offload-local.toml results=test-results-local history=offload-local.history.tsv ;;
    esac
    dir=$OUT/runs/$kind-$rep
    mkdir -p "$dir"
    if [[ $kind == *-cold ]]; then
        rm -rf "${S:?}/$results" "$S/$history"
    fi
    b0=$(busy)
    t0=$(now)
    if ! (cd "$S" && "$OFFLOAD_BIN" -c "$config" run --trace >"$dir/stdout" 2>"$dir/stderr"); then
        echo "docker-suite.sh: offload run failed ($dir)" >&2
        tail -20 "$dir/stderr" >&2
        exit 1
    fi
    wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
    cpu=$(cpu_since "$b0")
    grep -q "tests=\"$N\" failures=\"0\" errors=\"0\"" "$S/$results/junit.xml" ||
        { echo "docker-suite.sh: not $N passing tests ($dir)" >&2; exit 1; }
    cp "$S/$results/trace.json" "$S/$history" "$dir/"
    python3 - "$dir/trace.json" "$wall" "$kind" "$rep" "$cpu" <<'PY'
import json, sys
path, wall, kind, rep, cpu = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
doc = json.load(open(path))
events = doc["traceEvents"] if isinstance(doc, dict) else doc
spans = [e for e in events if e.get("ph") == "X"]
t0 = min(e["ts"] for e in spans)
def end(e): return (e["ts"] + e.get("dur", 0) - t0) / 1e6
def start(e): return (e["ts"] - t0) / 1e6
batches = [e for e in spans if e.get("cat") == "batch"]
first_batch = min(start(e) for e in batches)
last_batch = max(end(e) for e in batches)
run_end = max(end(e) for e in spans)
print("%s\t%s\t%.3f\t%d\t%.3f\t%.3f\t%.3f\t%s" % (kind, rep, wall, len(batches), first_batch, last_batch, run_end, cpu))
PY
}

# The floor: what a runner with no cost of its own gets from this engine. A
# shell script makes the same docker calls as one warm Offload run would at
# best: the cached build, then for each container at once `docker run`, one
# `docker exec` of run.sh with its share of a perfect split (LPT over the known
# durations, so every container holds about sum / P), one `docker cp` of the
# result, `docker rm -f`. Offload's wall over the floor's is Offload's own cost.
python3 - "$S/tests.txt" "$P" >"$S/floor-split.txt" <<'PY'
import sys
ids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
p = int(sys.argv[2])
ms = lambda i: int(i.rsplit("_", 1)[1][:-2])
shares = [[0, []] for _ in range(p)]
for i in sorted(ids, key=ms, reverse=True):
    s = min(shares, key=lambda s: s[0])
    s[0] += ms(i)
    s[1].append(i)
for _, share in shares:
    print(" ".join(share))
PY
floor_once() {
    local rep=$1 dir t0 wall image i=0 ids
    dir=$OUT/runs/floor-$rep
    mkdir -p "$dir"
    b0=$(busy)
    t0=$(now)
    image=$(cd "$S" && docker build -q --force-rm --build-arg BASE=$DOCKER_SANDBOX_BASE . 2>/dev/null | tail -1)
    while read -r ids; do
        i=$((i + 1))
        (
            c=$(docker run -d --init --rm --label offload-sandbox "$image" sleep infinity)
            # shellcheck disable=SC2086 # the IDs are one word each
            docker exec "$c" sh -c "cd /app && sh run.sh /tmp/result.xml $ids"
            docker cp "$c:/tmp/result.xml" "$dir/result-$i.xml"
            docker rm -f "$c" >/dev/null
        ) >"$dir/stdout-$i" 2>&1 &
    done <"$S/floor-split.txt"
    wait
    wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
    cpu=$(cpu_since "$b0")
    [[ $(cat "$dir"/result-*.xml | grep -c '<testcase') == "$N" ]] ||
        { echo "docker-suite.sh: the floor's script did not run $N tests ($dir)" >&2; exit 1; }
    printf 'floor\t%s\t%s\t%s\t\t\t\t%s\n' "$rep" "$wall" "$P" "$cpu"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'kind\trep\twall\tbatches\tfirst_batch\tlast_batch\trun_end\tcpu\n' >"$OUT/runs.tsv"
for ((rep = 1; rep <= R; rep++)); do
    for kind in docker-cold docker-warm local-cold local-warm; do
        run_once "$kind" "$rep" >>"$OUT/runs.tsv"
    done
    floor_once "$rep" >>"$OUT/runs.tsv"
done

# ------------------------------------------------------------------ report
report() {
    local kind=$1 lb=$2 w wm
    runcol() { awk -v k="$kind" "\$1 == k { print $1 }" "$OUT/runs.tsv" | median; }
    w=$(awk -v k="$kind" '$1 == k { print $3 }' "$OUT/runs.tsv")
    wm=$(median <<<"$w")
    printf '| %s | %.2f s [%s] | %.2f | %s | %.2f s | %.2f s | %.2f s | %.2f s | %s |\n' "$kind" \
        "$wm" "$(minmax <<<"$w")" \
        "$(awk -v w="$wm" -v lb="$lb" 'BEGIN { print w / lb }')" \
        "$(runcol '$4')" "$(runcol '$5')" "$(runcol '$6')" "$(runcol '$7 - $6')" "$(runcol '$3 - $7')" "$(cpu_share "$kind" "$wm")"
}
cpu_share() { # cpu_share KIND WALL: median CPU seconds of its runs, and their share of WALL x cores
    # Tab-separated: the floor's row has empty fields before its CPU.
    awk -F'\t' -v k="$1" '$1 == k { print $8 }' "$OUT/runs.tsv" | median |
        awk -v w="$2" -v n="$cores" '{ printf "%.2f s (%.0f%%)", $1, 100 * $1 / (w * n) }'
}
{
    echo "## Docker provider: $N tests, $P containers (seed $SEED; $(docker version --format 'engine {{.Server.Version}}'), $cores cores, load average $LOAD_BEFORE before the runs, $(cut -d' ' -f1-3 /proc/loadavg) after)"
    echo
    printf 'Suite: sum %.2f s, longest %.2f s. Per call (median of 5): docker build (cached) %.2f s, docker run -d %.2f s, docker exec %.2f s, docker cp %.2f s, docker rm -f %.2f s.\n' \
        "$(awk -v s="$SUM_MS" 'BEGIN { print s / 1000 }')" "$(awk -v s="$MAX_MS" 'BEGIN { print s / 1000 }')" \
        "$BUILD" "$START" "$EXEC" "$CP" "$RM"
    printf '%d `docker run -d` at once (median of 3): up %.2f s after the start on average, the last after %.2f s.\n' "$P" "$CREATE_MEAN" "$CREATE_LAST"
    printf 'The engine'"'"'s CPU for one container'"'"'s life (docker run, exec, cp, rm -f; mean of 5, whole machine): %.2f s, so %d containers take %.2f s of CPU, %.2f s of wall on %d cores.\n' \
        "$LIFE_CPU" "$P" "$(awk -v c="$LIFE_CPU" -v p="$P" 'BEGIN { print c * p }')" "$(awk -v c="$LIFE_CPU" -v p="$P" -v n="$cores" 'BEGIN { print c * p / n }')" "$cores"
    # The j-th container up waits for the creation work of j containers, the j-th
    # from the end for the removal work of j, both on the machine's cores: summed
    # over the containers, wall >= sum / P + (P + 1) x LIFE_CPU / (2 x cores)
    # (the tests' own CPU and the engine's slowing down under load come on top).
    bound=$(awk -v s="$SUM_MS" -v c="$LIFE_CPU" -v p="$P" -v n="$cores" 'BEGIN { print s / 1000 / p + (p + 1) * c / (2 * n) }')
    printf 'From that CPU alone (the j-th container up waits for j creations, the j-th from the end for j removals, on %d cores): wall >= sum / %d + (%d + 1) x %.2f s / (2 x %d) = %.2f s = %.2f x LB.\n' \
        "$cores" "$P" "$P" "$LIFE_CPU" "$cores" "$bound" "$(awk -v b="$bound" -v lb="$LB" 'BEGIN { print b / lb }')"
    printf 'LB = max(longest, sum / %d) + one container start = %.2f s (for the local provider, without the container start: %.2f s).\n\n' "$P" "$LB" "$LB0"
    echo "| run | wall, median [min-max] of $R | wall / LB | batches | first batch starts | last batch ends | destroy after the last batch | outside the run (start, discovery, prepare, report) | CPU used, machine-wide (share of wall x $cores cores) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    report docker-cold "$LB"
    report docker-warm "$LB"
    report local-cold "$LB0"
    report local-warm "$LB0"
    w=$(awk '$1 == "floor" { print $3 }' "$OUT/runs.tsv")
    wm=$(median <<<"$w")
    printf '| floor: the same docker calls from a shell script, perfect split | %.2f s [%s] | %.2f | %d | | | | | %s |\n' \
        "$wm" "$(minmax <<<"$w")" "$(awk -v w="$wm" -v lb="$LB" 'BEGIN { print w / lb }')" "$P" "$(cpu_share floor "$wm")"
    echo
    echo "Timing history after the last warm run (overheads in ms):"
    grep -E '^(startup|pertest|error)' "$OUT/runs/docker-warm-$R/offload.history.tsv" | sed 's/^/    /'
    echo
    echo "Raw: $OUT/runs.tsv, $OUT/calls.tsv, $OUT/runs/*/"
} | tee "$OUT/results.md"
