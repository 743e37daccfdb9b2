#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main shipped job with its
# status page on http://127.0.0.1:8081/ (override with --set http.listen=...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
exec build/runnel run jobs/example.yaml "$@"
