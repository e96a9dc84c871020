#!/usr/bin/env bash
# Install the benchmark tools and peers the tests drive for real (Debian
# packages). Installs only what is missing; needs root (or sudo) for apt-get.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
command -v pgbench >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-server redis-tools)
command -v fio >/dev/null 2>&1 || need+=(fio)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -eq 0 ]; then
  echo "install-tools: everything is installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-tools: not root and no sudo; tests that need ${need[*]} will be skipped" >&2
    exit 0
  fi
fi
echo "install-tools: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the services it installs; the tests start their own on free
# ports, so stop the packaged ones (quietly: there may be no init system).
for svc in mosquitto redis-server postgresql; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
