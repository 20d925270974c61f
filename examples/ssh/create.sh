#!/bin/sh
# create.sh: a sandbox is a fresh directory on the ssh host holding a copy of
# the project (the current directory, i.e. [provider] working_dir). Prints
# the remote directory, which is the sandbox ID and the project root.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=$("$here/ssh.sh" 'mktemp -d "${TMPDIR:-/tmp}/offload-ssh-sandbox.XXXXXX"')
case $dir in
*/offload-ssh-sandbox.*) ;;
*) echo "create.sh: unexpected answer from mktemp on the host: $dir" >&2; exit 1 ;;
esac
# Interrupted or failed half-way: remove the remote directory again.
trap '"$here/ssh.sh" rm -rf "$dir" >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM HUP
tar -c --exclude=./test-results --exclude=./.offload --exclude=./.git \
    --exclude=./target --exclude=./.venv --exclude=./.pytest_cache --exclude='__pycache__' . |
    "$here/ssh.sh" tar -x -C "$dir"
trap - EXIT
echo "$dir"
