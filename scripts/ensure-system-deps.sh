#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing: PostgreSQL (server and
# client) for the PostgreSQL tier, curl for the seed journeys (run as a user would, with curl),
# openssl for the TLS tests' certificates, chromium for the SDK's browser test (test/browser: the
# SDK in a real headless browser against a node on another origin), jq for the README tour,
# redis-server and redis-tools (the RESP tests drive redis-cli; benchmarks compare with
# redis-server), prometheus (promtool checks the PromQL and rules tests; a real Prometheus
# remote-writes to Beacon), prometheus-alertmanager, etcd-server and wrk (benchmarks against
# etcd). Needs root (CI and the dev
# machines run as root).
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "need root to apt-get install ${need[*]}" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
