#!/bin/sh
# exec.sh SANDBOX COMMAND: run Offload's batch command. COMMAND already starts
# with `cd` into the project root, which for this example is the sandbox
# directory itself (sandbox_project_root = "{sandbox_id}").
set -u
if [ ! -d "$1" ]; then
    echo "exec.sh: sandbox $1 does not exist" >&2
    exit 125
fi
exec /bin/sh -c "$2"
