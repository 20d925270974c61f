#!/bin/sh
# download.sh SANDBOX REMOTE:LOCAL...: copy files out of the sandbox. A
# relative REMOTE is relative to the sandbox directory.
set -eu
sandbox=$1
shift
for pair in "$@"; do
    remote=${pair%%:*}
    local_path=${pair#*:}
    case $remote in
    /*) ;;
    *) remote=$sandbox/$remote ;;
    esac
    if [ -n "${DIR_SANDBOX_FLAKY_DOWNLOAD:-}" ] && mkdir "$DIR_SANDBOX_FLAKY_DOWNLOAD" 2>/dev/null; then
        # The first download of the run fails, as a network copy sometimes does.
        echo "download.sh: connection reset while copying $remote" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$local_path")"
    cp "$remote" "$local_path"
done
