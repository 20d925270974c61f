#!/usr/bin/env bash
# Real-suite benchmark: Offload against the native parallel runner on pinned,
# published test suites (see bench/README.md).
#
#   bench/real-suites.sh [--work DIR] [--rounds N] [--only REGEX] [--fetch-only]
#   bench/real-suites.sh --startup [--only REGEX]    start-up costs, measured directly
#   bench/real-suites.sh --report RUN_DIR [--only REGEX]   the table of an earlier run
#
# 1. fetch   pinned sdists / crates from PyPI and crates.io into the work dir
#            (once; a second call reuses them), one virtualenv per Python suite
# 2. config  one offload.toml per row, as a new user would write it
# 3. run     per round and row, alternately: the native runner, Offload cold
#            (history and output wiped), Offload warm (state kept, primed once)
# 4. report  a Markdown table of medians and ratios, and a check that every run
#            found the same test IDs with the same outcomes as the native runner
#
# Environment: OFFLOAD_BIN (default target/release/offload), PYTHON (python3 to
# build the virtualenvs with).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=/var/tmp/offload-real
ROUNDS=3
ONLY=.
FETCH_ONLY=0
STARTUP=0
REPORT_DIR=
OFFLOAD_BIN=${OFFLOAD_BIN:-$REPO/target/release/offload}
PYTHON=${PYTHON:-python3}
PARALLEL=4

# Pinned versions: the suites and everything their tests import.
NETWORKX=3.4.2
NUMPY=2.2.6
ATTRS=25.3.0
HYPOTHESIS=6.131.0
CLOUDPICKLE=3.1.1
PYTEST=8.4.2
XDIST=3.8.0
ITERTOOLS=0.14.0

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
        --work) WORK=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --fetch-only) FETCH_ONLY=1; shift ;;
        --startup) STARTUP=1; shift ;;
        --report) REPORT_DIR=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case $WORK in /*) ;; *) WORK=$PWD/$WORK ;; esac
mkdir -p "$WORK/downloads"

log() { printf '[real-suites] %s\n' "$*" >&2; }

# timed DIR OUT CMD: runs CMD (bash) in DIR with stdout/stderr in OUT/; prints
# "wall_seconds exit_code cpu_seconds". Wall time from time.monotonic around the
# child; CPU time (user + system of the child and all its descendants) from
# getrusage, which a busy machine disturbs far less than wall time.
timed() {
    local dir=$1 out=$2 cmd=$3
    mkdir -p "$out"
    printf '%s\n' "$cmd" >"$out/command"
    python3 - "$dir" "$out" "$cmd" <<'EOF'
import resource, subprocess, sys, time
dir, out, cmd = sys.argv[1:]
with open(f"{out}/stdout", "wb") as so, open(f"{out}/stderr", "wb") as se:
    start = time.monotonic()
    code = subprocess.call(["bash", "-c", cmd], cwd=dir, stdout=so, stderr=se, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.2f} {code} {usage.ru_utime + usage.ru_stime:.2f}")
EOF
}

# ---------------------------------------------------------------------------
# 1. Fetch (idempotent: each step is skipped when its result exists)
# ---------------------------------------------------------------------------

# make_venv DIR PACKAGE==VERSION...: a virtualenv with exactly these packages.
make_venv() {
    local dir=$1; shift
    # The marker holds the requirements: a changed pin rebuilds the venv.
    [ "$(cat "$dir/.complete" 2>/dev/null)" = "$*" ] && return 0
    log "creating $dir"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install -q "$@"
    echo "$*" >"$dir/.complete"
}

# fetch_sdist NAME VERSION: PyPI's source distribution, unpacked to $WORK/NAME-VERSION.
fetch_sdist() {
    local name=$1 version=$2
    [ -d "$WORK/$name-$version" ] && return 0
    log "downloading the $name $version sdist"
    "$PYTHON" -m pip download -q --no-deps --no-binary :all: -d "$WORK/downloads" "$name==$version"
    tar -xzf "$WORK/downloads/$name-$version.tar.gz" -C "$WORK"
}

fetch_networkx() {
    fetch_sdist networkx "$NETWORKX"
    make_venv "$WORK/venv-networkx" "numpy==$NUMPY" "pytest==$PYTEST" "pytest-xdist==$XDIST"
    # Editable, so that the tests import the unpacked source and the package's
    # entry points (its test backend) are registered.
    if ! "$WORK/venv-networkx/bin/pip" show -q networkx 2>/dev/null; then
        "$WORK/venv-networkx/bin/pip" install -q --no-deps -e "$WORK/networkx-$NETWORKX"
    fi
}

fetch_attrs() {
    fetch_sdist attrs "$ATTRS"
    make_venv "$WORK/venv-attrs" "hypothesis==$HYPOTHESIS" "cloudpickle==$CLOUDPICKLE" "pytest==$PYTEST" "pytest-xdist==$XDIST"
    # hypothesis depends on attrs and brought the newest: replace it with the
    # unpacked source under test (editable).
    if ! "$WORK/venv-attrs/bin/pip" show attrs 2>/dev/null | grep -q "^Editable project location: $WORK/attrs-$ATTRS\$"; then
        "$WORK/venv-attrs/bin/pip" install -q --no-deps -e "$WORK/attrs-$ATTRS"
    fi
}

# itertools from crates.io with cargo alone: a throwaway crate depends on it,
# `cargo vendor` brings its published source, which then becomes a workspace of
# its own. The published crate ships its Cargo.lock, which pins the
# dev-dependencies (`--locked`).
fetch_itertools() {
    local dir=$WORK/itertools-$ITERTOOLS
    if [ ! -d "$dir" ]; then
        log "downloading itertools $ITERTOOLS from crates.io"
        local tmp=$WORK/downloads/itertools-vendor
        rm -rf "$tmp"
        mkdir -p "$tmp/src"
        printf '[package]\nname = "vendor-itertools"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nitertools = "=%s"\n\n[workspace]\n' \
            "$ITERTOOLS" >"$tmp/Cargo.toml"
        : >"$tmp/src/lib.rs"
        (cd "$tmp" && cargo vendor -q vendor >/dev/null)
        cp -r "$tmp/vendor/itertools" "$dir.partial"
        rm -f "$dir.partial/.cargo-checksum.json"
        printf '\n[workspace]\n' >>"$dir.partial/Cargo.toml"
        mv "$dir.partial" "$dir"
        rm -rf "$tmp"
    fi
    # Build once, so that every timed run (native or Offload) reuses the build.
    log "building itertools' tests (once)"
    (cd "$dir" && cargo nextest list --locked >/dev/null 2>"$WORK/downloads/itertools-build.log") || {
        cat "$WORK/downloads/itertools-build.log" >&2
        exit 1
    }
}

# ---------------------------------------------------------------------------
# 2. The rows: name, kind, directory, native command, Offload [framework] lines
# ---------------------------------------------------------------------------

# Subpackages chosen for the sizes of issue 10's rows (tests collected with
# --doctest-modules: generators 603, readwrite 323, classes 1,477, utils 143,
# algorithms/flow 99).
NX_2PKG="networkx/generators networkx/readwrite"
NX_5PKG="$NX_2PKG networkx/classes networkx/utils networkx/algorithms/flow"

ROWS=(networkx-2pkg networkx-5pkg attrs itertools)

# row_info ROW: sets KIND DIR LABEL, the NATIVE command, the Offload FRAMEWORK
# lines, and for --startup ONE_TEST (one trivial test) and COLLECT (list them all).
row_info() {
    case $1 in
        networkx-2pkg|networkx-5pkg)
            local paths=$NX_2PKG
            [ "$1" = networkx-5pkg ] && paths=$NX_5PKG
            KIND=pytest
            DIR=$WORK/networkx-$NETWORKX
            local py="$WORK/venv-networkx/bin/python -m pytest --doctest-modules"
            NATIVE="$py -n $PARALLEL -o junit_family=xunit1 --junitxml=\$JUNIT $paths"
            FRAMEWORK="type = \"pytest\"
command = \"$py\"
paths = [$(printf '"%s", ' $paths | sed 's/, $//')]"
            LABEL="networkx $NETWORKX, \`--doctest-modules\` $(echo "$paths" | wc -w) subpackages"
            ONE_TEST="$py networkx/generators/tests/test_classic.py::TestGeneratorClassic::test_complete_digraph"
            COLLECT="$py --collect-only -q $paths"
            ;;
        attrs)
            KIND=pytest
            DIR=$WORK/attrs-$ATTRS
            NATIVE="$WORK/venv-attrs/bin/python -m pytest -n $PARALLEL -o junit_family=xunit1 --junitxml=\$JUNIT tests"
            FRAMEWORK="type = \"pytest\"
command = \"$WORK/venv-attrs/bin/python -m pytest\"
paths = [\"tests\"]"
            LABEL="attrs $ATTRS (hypothesis $HYPOTHESIS)"
            ONE_TEST="$WORK/venv-attrs/bin/python -m pytest tests/test_version_info.py::TestVersionInfo::test_suffix_is_preserved"
            COLLECT="$WORK/venv-attrs/bin/python -m pytest --collect-only -q tests"
            ;;
        itertools)
            KIND=cargo
            DIR=$WORK/itertools-$ITERTOOLS
            # nextest with its default thread count; a tool config adds a profile
            # that writes JUnit (the project's own config stays in force).
            NATIVE="cargo nextest run --no-fail-fast --tool-config-file bench:$WORK/nextest-junit.toml --profile bench"
            FRAMEWORK='type = "cargo"'
            LABEL="itertools $ITERTOOLS"
            ONE_TEST="cargo nextest run -E 'binary_id(itertools::zip) & test(=zip_longest_fused)'"
            COLLECT="cargo nextest list"
            ;;
        *) echo "error: unknown row $1" >&2; exit 2 ;;
    esac
}

# write_config ROW VARIANT: $DIR/offload-ROW-VARIANT.toml, as a new user would
# write it. Cold and warm differ only in their file name, hence their history
# file (offload-ROW-VARIANT.history.tsv) and output directory.
write_config() {
    local row=$1 variant=$2
    row_info "$row"
    cat >"$DIR/offload-$row-$variant.toml" <<EOF
# Written by bench/real-suites.sh: Offload on $LABEL.
[offload]
max_parallel = $PARALLEL
test_timeout_secs = 900

[provider]
type = "local"

[framework]
$FRAMEWORK

[groups.all]
retry_count = 0

[report]
output_dir = "offload-results-$row-$variant"
EOF
}

cat >"$WORK/nextest-junit.toml" <<'EOF'
[profile.bench]
inherits = "default"
[profile.bench.junit]
path = "junit.xml"
EOF

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

selected=()
for row in "${ROWS[@]}"; do
    [[ $row =~ $ONLY ]] && selected+=("$row")
done
[ ${#selected[@]} -gt 0 ] || { echo "error: --only '$ONLY' matches no row of: ${ROWS[*]}" >&2; exit 2; }

for row in "${selected[@]}"; do
    [ -n "$REPORT_DIR" ] && break
    case $row in
        networkx*) fetch_networkx ;;
        attrs) fetch_attrs ;;
        itertools) fetch_itertools ;;
    esac
    write_config "$row" cold
    write_config "$row" warm
done
[ "$FETCH_ONLY" = 1 ] && { log "fetched into $WORK"; exit 0; }

# --startup: what one runner process costs before and around its tests, alone
# on the machine (no other batch at the same time): the median of 5 runs of one
# trivial test, and of listing the whole suite.
if [ "$STARTUP" = 1 ]; then
    out=$WORK/startup/$(date +%Y%m%d-%H%M%S)
    median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
    echo "| suite | one trivial test: wall | CPU | $PARALLEL of them at once: wall | CPU per run |" \
        "list the whole suite: wall | CPU |"
    echo "|---|---|---|---|---|---|---|"
    for row in "${selected[@]}"; do
        row_info "$row"
        one_wall=() one_cpu=() par_wall=() par_cpu=() all_wall=() all_cpu=()
        # $PARALLEL at once is what each of Offload's batches pays when they all start together.
        parallel_one="for i in \$(seq $PARALLEL); do $ONE_TEST & done; wait"
        for i in 1 2 3 4 5; do
            read -r wall code cpu <<<"$(timed "$DIR" "$out/$row/one-$i" "$ONE_TEST")"
            one_wall+=("$wall") one_cpu+=("$cpu")
            [ "$code" = 0 ] || log "warning: $row: '$ONE_TEST' exited $code (see $out/$row/one-$i)"
            read -r wall code cpu <<<"$(timed "$DIR" "$out/$row/parallel-$i" "$parallel_one")"
            par_wall+=("$wall") par_cpu+=("$(python3 -c "print(f'{$cpu / $PARALLEL:.2f}')")")
            read -r wall code cpu <<<"$(timed "$DIR" "$out/$row/list-$i" "$COLLECT")"
            all_wall+=("$wall") all_cpu+=("$cpu")
        done
        echo "| $LABEL | $(median "${one_wall[@]}") s | $(median "${one_cpu[@]}") s |" \
            "$(median "${par_wall[@]}") s | $(median "${par_cpu[@]}") s |" \
            "$(median "${all_wall[@]}") s | $(median "${all_cpu[@]}") s |"
    done
    echo
    echo "Medians of 5; load at the end: $(uptime | sed 's/.*load average: //'); every run under $out"
    exit 0
fi

[ -x "$OFFLOAD_BIN" ] || { echo "error: no Offload binary at $OFFLOAD_BIN: build it (cargo build --release) or set OFFLOAD_BIN" >&2; exit 2; }

# ---------------------------------------------------------------------------
# 3. Run: rounds outside, rows inside, native / cold / warm alternating
# ---------------------------------------------------------------------------

if [ -n "$REPORT_DIR" ]; then
    RUN_DIR=$REPORT_DIR
    [ -f "$RUN_DIR/results.tsv" ] || { echo "error: no results.tsv in $RUN_DIR" >&2; exit 2; }
else
    RUN_DIR=$WORK/runs/$(date +%Y%m%d-%H%M%S)
    mkdir -p "$RUN_DIR"
    RESULTS=$RUN_DIR/results.tsv
    printf 'row\tround\tvariant\twall_s\texit\tcpu_s\n' >"$RESULTS"
    { echo "offload: $OFFLOAD_BIN"; "$OFFLOAD_BIN" --version 2>&1 || true; echo "start: $(uptime)"; } >"$RUN_DIR/machine.txt"

    # run_variant ROW ROUND VARIANT: one measured (or, for round 0, priming) run.
    run_variant() {
        local row=$1 round=$2 variant=$3
        row_info "$row"
        local out=$RUN_DIR/$row/round$round-$variant result wall code cpu
        mkdir -p "$out"
        case $variant in
            native)
                rm -f "$DIR/target/nextest/bench/junit.xml"
                result=$(JUNIT=$out/junit.xml timed "$DIR" "$out" "$NATIVE")
                [ "$KIND" = cargo ] && cp "$DIR/target/nextest/bench/junit.xml" "$out/junit.xml" 2>/dev/null
                ;;
            cold|warm)
                local name=offload-$row-$variant
                if [ "$variant" = cold ] || [ "$round" = 0 ]; then
                    rm -rf "$DIR/offload-results-$row-$variant" "$DIR/$name.history.tsv"
                fi
                result=$(timed "$DIR" "$out" "$OFFLOAD_BIN -c $name.toml run")
                cp -r "$DIR/offload-results-$row-$variant/." "$out/" 2>/dev/null || true
                cp "$DIR/$name.history.tsv" "$out/history.tsv" 2>/dev/null || true
                ;;
        esac
        [ "$round" = 0 ] && variant=warm-priming
        read -r wall code cpu <<<"$result"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$round" "$variant" "$wall" "$code" "$cpu" >>"$RESULTS"
        log "$row round $round $variant: $wall s (CPU $cpu s), exit $code"
    }

    log "results in $RUN_DIR"
    for row in "${selected[@]}"; do
        run_variant "$row" 0 warm
    done
    for round in $(seq 1 "$ROUNDS"); do
        for row in "${selected[@]}"; do
            for variant in native cold warm; do
                run_variant "$row" "$round" "$variant"
            done
        done
    done
    echo "end: $(uptime)" >>"$RUN_DIR/machine.txt"
fi

# ---------------------------------------------------------------------------
# 4. Report: medians, ratios, and the IDs/outcomes check against the native run
# ---------------------------------------------------------------------------

for row in "${selected[@]}"; do
    row_info "$row"
    printf '%s\t%s\t%s\t%s\n' "$row" "$KIND" "$LABEL" "$DIR"
done >"$RUN_DIR/rows.tsv"

python3 - "$RUN_DIR" <<'EOF' | tee "$RUN_DIR/table.md"
import csv, os, statistics, sys
import xml.etree.ElementTree as ET

run_dir = sys.argv[1]

def outcome(case):
    for child in case:
        if child.tag == "failure":
            return "failed"
        if child.tag == "error":
            return "not run" if child.get("type") == "NotRun" else "error"
        if child.tag == "skipped":
            return "skipped"
    return "passed"

def pytest_node_id(case, root):
    """pytest's node ID from an xunit1 testcase. Its classname is the node ID's
    dotted path (module, then classes) and its name the last part. The `file`
    attribute is no help: it names where the function is defined, which for an
    inherited test is another module. The module is the longest prefix of the
    classname that is a file (or a package's __init__.py) under the rootdir."""
    parts, name = case.get("classname", "").split("."), case.get("name", "")
    for cut in range(len(parts), 0, -1):
        path = "/".join(parts[:cut])
        for file in (f"{path}.py", f"{path}/__init__.py"):
            if os.path.isfile(os.path.join(root, file)):
                return "::".join([file] + parts[cut:] + [name])
    return f"{case.get('file', '')}::{name}"

def read_junit(path, native_kind, root=None):
    """{test ID: outcome}; native_kind says how a native runner's IDs are formed."""
    if not os.path.exists(path):
        return None
    results = {}
    for case in ET.parse(path).iter("testcase"):
        skipped = case.find("skipped")
        if skipped is not None and skipped.get("message") == "collection skipped":
            continue  # a module pytest skipped while collecting: not a test
        if native_kind == "pytest":
            key = pytest_node_id(case, root)
        elif native_kind == "cargo":
            key = f"{case.get('classname')} {case.get('name')}"
        else:  # Offload's merged report: the canonical ID is the name
            key = case.get("name")
        results[key] = outcome(case)
    return results

def compare(native, other):
    if native is None or other is None:
        return "no JUnit"
    missing = native.keys() - other.keys()
    extra = other.keys() - native.keys()
    differ = [k for k in native.keys() & other.keys() if native[k] != other[k]]
    if not (missing or extra or differ):
        return None
    examples = sorted(missing)[:2] + sorted(extra)[:2] + sorted(differ)[:2]
    return (f"{len(missing)} missing, {len(extra)} extra, {len(differ)} other outcome "
            f"(e.g. {'; '.join(examples)})")

rows = [line.rstrip("\n").split("\t") for line in open(f"{run_dir}/rows.tsv")]
runs = list(csv.DictReader(open(f"{run_dir}/results.tsv"), delimiter="\t"))
table, cpu_table, paired_table, notes = [], [], [], []
for row, kind, label, root in rows:
    def medians(column):
        return {v: statistics.median([float(r[column]) for r in runs
                                      if r["row"] == row and r["variant"] == v] or [float("nan")])
                for v in ("native", "cold", "warm")}
    med, cpu = medians("wall_s"), medians("cpu_s")

    def paired(column, variant):
        """Median over rounds of that round's Offload / native: runs next to each
        other share the machine's load, so this ratio is steadier."""
        by_round = {}
        for r in runs:
            if r["row"] == row and r["round"] != "0":
                by_round.setdefault(r["round"], {})[r["variant"]] = float(r[column])
        ratios = [v[variant] / v["native"] for v in by_round.values() if variant in v and "native" in v]
        return statistics.median(ratios) if ratios else float("nan")
    paired_table.append(f"| {label} | {paired('wall_s', 'cold'):.2f} | {paired('wall_s', 'warm'):.2f} | "
                        f"{paired('cpu_s', 'cold'):.2f} | {paired('cpu_s', 'warm'):.2f} |")
    native_exit = {r["round"]: r["exit"] for r in runs if r["row"] == row and r["variant"] == "native"}
    for r in runs:
        if r["row"] == row and r["variant"] in ("cold", "warm") and r["exit"] != native_exit.get(r["round"]):
            notes.append(f"{row} round {r['round']} {r['variant']}: exit {r['exit']}, "
                         f"native {native_exit.get(r['round'])}")
    rounds = sorted({r["round"] for r in runs if r["row"] == row and r["round"] != "0"})
    count = "?"
    for rnd in rounds:
        native = read_junit(f"{run_dir}/{row}/round{rnd}-native/junit.xml", kind, root)
        if native is not None:
            count = f"{len(native):,}"
        for variant in ("cold", "warm"):
            other = read_junit(f"{run_dir}/{row}/round{rnd}-{variant}/junit.xml", "offload")
            problem = compare(native, other)
            if problem:
                notes.append(f"{row} round {rnd} {variant} vs native: {problem}")
    baseline = "`pytest -n 4`" if kind == "pytest" else "`cargo nextest run`"
    table.append(f"| {label} ({count} tests) | {baseline} | {med['native']:.1f} s | "
                 f"{med['cold']:.1f} s | {med['warm']:.1f} s | "
                 f"{med['cold'] / med['native']:.2f} | {med['warm'] / med['native']:.2f} |")
    cpu_table.append(f"| {label} | {cpu['native']:.1f} s | {cpu['cold']:.1f} s | {cpu['warm']:.1f} s | "
                     f"{cpu['cold'] / cpu['native']:.2f} | {cpu['warm'] / cpu['native']:.2f} |")

print("| suite | baseline | baseline median | Offload cold median | Offload warm median | cold / baseline | warm / baseline |")
print("|---|---|---|---|---|---|---|")
print("\n".join(table))
print()
print("CPU time (user + system, all processes of the run; less disturbed by other load):")
print()
print("| suite | baseline CPU | cold CPU | warm CPU | cold / baseline | warm / baseline |")
print("|---|---|---|---|---|---|")
print("\n".join(cpu_table))
print()
print("Ratios round by round (median over rounds of Offload / native in the same round):")
print()
print("| suite | wall cold / baseline | wall warm / baseline | CPU cold / baseline | CPU warm / baseline |")
print("|---|---|---|---|---|")
print("\n".join(paired_table))
print()
loads = [line.split("load average:")[-1].strip() for line in open(f"{run_dir}/machine.txt")
         if "load average" in line]
print(f"Medians of {len(rounds)} alternated rounds; load average (1, 5, 15 min) at the start "
      f"and end: {' / '.join(loads)}; every run under {run_dir}.")
print("IDs and outcomes: " + ("every Offload run matched the native runner." if not notes else "mismatches:"))
for note in notes:
    print(f"* {note}")
EOF
