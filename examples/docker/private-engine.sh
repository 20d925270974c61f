#!/usr/bin/env bash
# private-engine.sh: a private Docker engine, for trying examples/docker on a
# machine without one and for Offload's own tests and benchmarks.
#
#   private-engine.sh start      start dockerd (root only) and build the base images
#   private-engine.sh stop       remove leftover containers, stop dockerd by its PID,
#                                check that none of the engine's processes is left
#   private-engine.sh status     exit 0 when the engine answers
#   private-engine.sh env        print `export DOCKER_HOST=...` for the engine
#
# The engine is Debian's docker.io (dockerd, containerd, runc, docker-init) run by
# hand, not by systemd: data root, exec root, socket, pid file and log all live in
# ENGINE_DIR ($OFFLOAD_DOCKER_DIR, default target/docker-engine in the repository),
# nothing in /var/lib/docker or /etc/docker is used, and the engine touches neither
# iptables nor the host's network (--iptables=false --bridge=none --ip-masq=false:
# containers get a loopback interface only). Storage: overlay2 when an overlay mount
# works in ENGINE_DIR, else vfs ($OFFLOAD_DOCKER_STORAGE forces one). The data root
# is kept between runs, so the images below are built once per machine.
#
# Images, built without any registry:
#   offload-busybox        busybox-static installed into an empty root (`docker import`)
#   offload-python-pytest  Debian bookworm minbase + python3-pytest (debootstrap from the
#                          machine's apt mirror); only with OFFLOAD_DOCKER_PYTEST=1
#
# Where the machine cannot run an engine (not root, no dockerd, no storage driver)
# `start` says why and exits 0 without starting anything: the Docker tests then
# skip with that message, or fail when CI=true.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${OFFLOAD_DOCKER_DIR:-$here/../../target/docker-engine}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Unix socket paths are limited to ~108 bytes, and containerd puts its own sockets
# below the exec root: when ENGINE_DIR is deep, the run-time files go to /tmp.
run=$dir/run
if ((${#run} > 60)); then
    run=/tmp/offload-docker-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
fi
sock=$run/docker.sock
pidfile=$run/dockerd.pid
log=$dir/dockerd.log

say() { printf 'private-engine: %s\n' "$*" >&2; }

skip() {
    say "SKIP: $*"
    say "the Docker tests will be skipped (they fail instead when CI=true)"
    rm -f "$dir/docker-host"
    exit 0
}

engine_pid() {
    local pid
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [[ -n $pid && -d /proc/$pid ]] || return 1
    grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

answers() {
    DOCKER_HOST=unix://$sock timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# Every process of the engine: dockerd, its descendants (containerd), and the
# containerd shims, which daemonize away from containerd but name its socket.
engine_processes() {
    local root=$1
    ps -e -o pid=,ppid=,args= | awk -v root="$root" -v run="$run" '
        { pid[NR] = $1; ppid[NR] = $2; line = $0; sub(/^ *[0-9]+ +[0-9]+ +/, "", line); args[NR] = line }
        END {
            keep[root] = 1
            for (changed = 1; changed;) {
                changed = 0
                for (i = 1; i <= NR; i++)
                    if (!(pid[i] in keep) && ((ppid[i] in keep) || index(args[i], run "/"))) {
                        keep[pid[i]] = 1; changed = 1
                    }
            }
            for (p in keep) if (p != "") print p
        }'
}

pick_storage() {
    if [[ -n ${OFFLOAD_DOCKER_STORAGE:-} ]]; then
        echo "$OFFLOAD_DOCKER_STORAGE"
        return
    fi
    local t=$dir/overlay-check
    rm -rf "$t"
    mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
    if grep -qw overlay /proc/filesystems 2>/dev/null || modprobe overlay 2>/dev/null; then
        if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null; then
            umount "$t/merged"
            rm -rf "$t"
            echo overlay2
            return
        fi
    fi
    rm -rf "$t"
    echo vfs
}

build_busybox_image() {
    local bb root
    bb=$(command -v busybox) || skip "busybox is not installed (apt-get install busybox-static)"
    if ldd "$bb" >/dev/null 2>&1; then
        skip "$bb is dynamically linked; the image needs busybox-static (apt-get install busybox-static)"
    fi
    root=$(mktemp -d "$dir/busybox-root.XXXXXX")
    mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp"
    chmod 1777 "$root/tmp"
    cp "$bb" "$root/bin/busybox"
    chroot "$root" /bin/busybox --install -s /bin
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    tar -C "$root" -c . | DOCKER_HOST=unix://$sock docker import \
        --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - offload-busybox >/dev/null
    rm -rf "$root"
    say "built image offload-busybox (busybox $("$bb" | head -1 | awk '{print $2}'))"
}

build_pytest_image() {
    local mirror root
    command -v debootstrap >/dev/null || skip "debootstrap is not installed (apt-get install debootstrap)"
    # The machine's own apt mirror: no other network source is needed.
    mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' 2>/dev/null |
        grep -v security | head -1 || true)
    mirror=${OFFLOAD_DOCKER_MIRROR:-${mirror:-http://deb.debian.org/debian/}}
    root=$(mktemp -d "$dir/debian-root.XXXXXX")
    say "building image offload-python-pytest: debootstrap bookworm from $mirror (about a minute)"
    if ! debootstrap --variant=minbase --include=python3-pytest,python-is-python3 \
        bookworm "$root" "$mirror" >"$dir/debootstrap.log" 2>&1; then
        tail -20 "$dir/debootstrap.log" >&2
        say "debootstrap failed (log: $dir/debootstrap.log)"
        exit 1
    fi
    rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
    tar -C "$root" -c . | DOCKER_HOST=unix://$sock docker import \
        --change 'CMD ["/bin/sh"]' - offload-python-pytest >/dev/null
    say "built image offload-python-pytest ($(chroot "$root" python3 -m pytest --version 2>&1))"
    rm -rf "$root"
}

ensure_images() {
    local have
    # Left by a build that was interrupted.
    rm -rf "$dir"/busybox-root.* "$dir"/debian-root.*
    have=$(DOCKER_HOST=unix://$sock docker images --format '{{.Repository}}')
    grep -qx offload-busybox <<<"$have" || build_busybox_image
    if [[ ${OFFLOAD_DOCKER_PYTEST:-0} == 1 ]]; then
        grep -qx offload-python-pytest <<<"$have" || build_pytest_image
    fi
}

# libnetwork keeps an entry for every container it has seen in its store and
# removes each at the next start, a tenth of a second apiece: after a few
# hundred containers the engine takes minutes to answer. With no container
# left there is nothing in it to keep; dockerd writes a fresh one.
forget_network_state() {
    rm -f "$dir/data/network/files/local-kv.db"
}

start() {
    [[ $(id -u) == 0 ]] || skip "the private Docker engine needs root (dockerd runs as root here)"
    command -v dockerd >/dev/null || skip "dockerd is not installed (apt-get install docker.io)"
    command -v docker >/dev/null || skip "the docker client is not installed (apt-get install docker.io)"
    mkdir -p "$run"
    if engine_pid >/dev/null && answers; then
        say "already running (pid $(engine_pid)), DOCKER_HOST=unix://$sock"
    else
        if engine_pid >/dev/null; then
            say "a dockerd (pid $(engine_pid)) does not answer; stopping it first"
            stop
            mkdir -p "$run"
        fi
        local storage started pid
        storage=$(pick_storage)
        echo '{}' >"$dir/daemon.json"
        rm -f "$sock" "$pidfile"
        forget_network_state
        # Its own session and process group, detached from the caller's terminal, so
        # that a Ctrl-C of `make` does not hit it half-way through the tests.
        setsid dockerd --config-file "$dir/daemon.json" --data-root "$dir/data" \
            --exec-root "$run/exec" --pidfile "$pidfile" --host "unix://$sock" \
            --storage-driver "$storage" --iptables=false --ip-masq=false --bridge=none \
            </dev/null >"$log" 2>&1 &
        started=$(date +%s)
        until answers; do
            if ! kill -0 $! 2>/dev/null; then
                tail -20 "$log" >&2
                say "dockerd exited during start-up (log: $log)"
                if [[ $storage == overlay2 && -z ${OFFLOAD_DOCKER_STORAGE:-} ]]; then
                    say "retrying with the vfs storage driver"
                    OFFLOAD_DOCKER_STORAGE=vfs start
                    return
                fi
                exit 1
            fi
            if (($(date +%s) - started > 120)); then
                tail -20 "$log" >&2
                say "dockerd did not answer within 120 s (log: $log); stopping it"
                stop
                exit 1
            fi
            sleep 0.2
        done
        pid=$(engine_pid) || { say "dockerd answers but wrote no pid file $pidfile"; exit 1; }
        say "started dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) (pid $pid, storage $storage) in $(($(date +%s) - started)) s, DOCKER_HOST=unix://$sock"
    fi
    echo "unix://$sock" >"$dir/docker-host"
    ensure_images
}

stop() {
    local pid procs left deadline
    rm -f "$dir/docker-host"
    if ! pid=$(engine_pid); then
        say "not running"
        rm -f "$sock" "$pidfile"
        return 0
    fi
    left=$(DOCKER_HOST=unix://$sock timeout 20 docker ps -aq 2>/dev/null || true)
    if [[ -n $left ]]; then
        say "removing $(wc -w <<<"$left") leftover container(s): $(echo $left)"
        # shellcheck disable=SC2086
        DOCKER_HOST=unix://$sock timeout 60 docker rm -f $left >/dev/null || true
    fi
    # Untagged images (the tests' builds, replaced ones); the base images stay.
    DOCKER_HOST=unix://$sock timeout 60 docker image prune -f >/dev/null 2>&1 || true
    procs=$(engine_processes "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(date +%s) + 30))
    while :; do
        left=""
        for p in $procs; do
            [[ -d /proc/$p ]] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && left="$left $p"
        done
        [[ -z $left ]] && break
        if (($(date +%s) > deadline)); then
            say "still alive after 30 s, killing:$left"
            # shellcheck disable=SC2086
            kill -KILL $left 2>/dev/null || true
            sleep 1
            deadline=$(($(date +%s) + 30))
        fi
        sleep 0.2
    done
    # Mounts the engine would have removed on a clean shutdown.
    { grep -oE " ($dir|$run)/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -f "$sock" "$pidfile"
    forget_network_state
    say "stopped dockerd (pid $pid); no container and no engine process left"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) engine_pid >/dev/null && answers ;;
env)
    engine_pid >/dev/null || { say "not running (start it with: $0 start)"; exit 1; }
    echo "export DOCKER_HOST=unix://$sock"
    ;;
*)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
