#!/usr/bin/env bash
# Debian packages the tests run for real: Prometheus 2.42 and promtool (the reference PromQL engine),
# ClickHouse server 18.16 (the native-protocol store), Alertmanager 0.25 (notifications) and
# VictoriaMetrics 1.79 (a second peer in benchmarks), ZooKeeper 3.8 (the live cluster's coordination
# service: replicated tables and the leader election), Chromium (the console's browser tests, driven by
# Playwright for Python pointed at /usr/bin/chromium: no browser download).
# Installs only what is missing; needs root (CI runs as root). Never starts the packaged services.
set -euo pipefail
missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
[ -x /usr/sbin/clickhouse-server ] || command -v clickhouse-server >/dev/null || missing+=(clickhouse-server)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
  exit 0  # the tests that need them say so; CI (root) always installs them
fi
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting daemons (they would take port 9090).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
