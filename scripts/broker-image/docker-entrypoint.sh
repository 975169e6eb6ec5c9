#!/usr/bin/env bash
# The official image's entrypoint, as far as the platform relies on it: started as root, it hands
# the data directory to rabbitmq and runs the command as rabbitmq; the server becomes PID 1.
set -euo pipefail

if [[ "$1" == rabbitmq* ]] && [ "$(id -u)" = '0' ]; then
  if [ "$1" = 'rabbitmq-server' ]; then
    find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq '{}' +
  fi
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$BASH_SOURCE" "$@"
fi

# if long and short host names differ, use long names (as the official entrypoint does)
if [ -z "${RABBITMQ_USE_LONGNAME:-}" ] && command -v hostname >/dev/null && [ "$(hostname)" != "$(hostname -s)" ]; then
  : "${RABBITMQ_USE_LONGNAME:=true}"
  export RABBITMQ_USE_LONGNAME
fi

export RUNNING_UNDER_SYSTEMD=true
exec "$@"
