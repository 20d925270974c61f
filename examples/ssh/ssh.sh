#!/bin/sh
# ssh.sh COMMAND...: run COMMAND on the sandbox host through ssh, non-interactively.
#
#   SSH_SANDBOX_HOST         host (required), e.g. 127.0.0.1 or build-box.internal
#   SSH_SANDBOX_USER         user (default: the local user)
#   SSH_SANDBOX_PORT         port (default 22)
#   SSH_SANDBOX_KEY          private key file (default: ssh's own choice)
#   SSH_SANDBOX_KNOWN_HOSTS  known_hosts file (default: ssh's own); host keys
#                            are always checked
#
# ssh joins COMMAND's words with spaces and hands them to the remote login
# shell, so Offload's {command} (one quoted word) arrives as one script.
set -eu
: "${SSH_SANDBOX_HOST:?set SSH_SANDBOX_HOST to the sandbox host}"
set -- -p "${SSH_SANDBOX_PORT:-22}" -o BatchMode=yes -o StrictHostKeyChecking=yes \
    ${SSH_SANDBOX_KEY:+-i "$SSH_SANDBOX_KEY"} \
    ${SSH_SANDBOX_KNOWN_HOSTS:+-o "UserKnownHostsFile=$SSH_SANDBOX_KNOWN_HOSTS"} \
    -- "${SSH_SANDBOX_USER:-$(id -un)}@$SSH_SANDBOX_HOST" "$@"
exec ssh "$@"
