#!/bin/sh
# download.sh REMOTE:LOCAL...: copy result files from the ssh host with scp.
# (Without a download_command, Offload would `cat` them through exec_command.)
set -eu
: "${SSH_SANDBOX_HOST:?set SSH_SANDBOX_HOST to the sandbox host}"
for pair in "$@"; do
    remote=${pair%%:*}
    local_path=${pair#*:}
    mkdir -p "$(dirname "$local_path")"
    scp -q -P "${SSH_SANDBOX_PORT:-22}" -o BatchMode=yes -o StrictHostKeyChecking=yes \
        ${SSH_SANDBOX_KEY:+-i "$SSH_SANDBOX_KEY"} \
        ${SSH_SANDBOX_KNOWN_HOSTS:+-o "UserKnownHostsFile=$SSH_SANDBOX_KNOWN_HOSTS"} \
        "${SSH_SANDBOX_USER:-$(id -un)}@[$SSH_SANDBOX_HOST]:$remote" "$local_path"
done
