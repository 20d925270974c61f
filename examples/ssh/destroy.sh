#!/bin/sh
# destroy.sh SANDBOX: remove the sandbox directory on the ssh host (only one
# that create.sh made).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
case $1 in
*/offload-ssh-sandbox.*) exec "$here/ssh.sh" rm -rf "$1" ;;
*) echo "destroy.sh: $1 is not an ssh sandbox; not removing it" >&2; exit 1 ;;
esac
