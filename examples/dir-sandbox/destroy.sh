#!/bin/sh
# destroy.sh SANDBOX: remove the sandbox directory. Refuses anything that
# create.sh did not make.
set -eu
case $(basename "$1") in
offload-dir-sandbox.*) rm -rf "$1" ;;
*) echo "destroy.sh: $1 is not a directory sandbox; not removing it" >&2; exit 1 ;;
esac
