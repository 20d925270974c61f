#!/bin/sh
# create.sh: a "sandbox" that is a fresh copy of the project in a temporary
# directory. Prints the directory, which is the sandbox ID.
#
# Run by Offload in [provider] working_dir (the project). Copies everything
# but Offload's own output and caches. OFFLOAD_SANDBOX (the sandbox index) is
# set by Offload. For the fault tests: DIR_SANDBOX_FAIL_INDEX makes creating
# that index fail; DIR_SANDBOX_CREATE_DELAY (seconds) makes creation slow.
set -eu
if [ -n "${DIR_SANDBOX_FAIL_INDEX:-}" ] && [ "${OFFLOAD_SANDBOX:-}" = "$DIR_SANDBOX_FAIL_INDEX" ]; then
    echo "create.sh: no room for sandbox $OFFLOAD_SANDBOX (DIR_SANDBOX_FAIL_INDEX)" >&2
    exit 1
fi
dir=$(mktemp -d "${DIR_SANDBOX_PARENT:-${TMPDIR:-/tmp}}/offload-dir-sandbox.XXXXXX")
# Interrupted half-way (Ctrl-C reaches us as SIGTERM): leave nothing behind.
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM HUP
tar -c --exclude=./test-results --exclude=./.offload --exclude=./.git \
    --exclude=./target --exclude=./.venv --exclude=./.pytest_cache --exclude='__pycache__' . |
    tar -x -C "$dir"
if [ -n "${DIR_SANDBOX_CREATE_DELAY:-}" ]; then
    sleep "$DIR_SANDBOX_CREATE_DELAY"
fi
trap - EXIT
echo "$dir"
