#!/usr/bin/env bash
# Remakes the web UI's pictures in docs/img/ (docs/status.md shows them): runs the two
# browser tests, which keep a screenshot of each view under build/test-artifacts/webui/,
# and copies those. Needs chromium (scripts/install-deps.sh) and a built tree.
#   bash scripts/ui-screenshots.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
# more simulated users than the test's default, so traffic still flows when the shots are taken
(cd "$dir" && RUNNEL_WEBUI_SESSIONS=60000 ctest -R '^test_webui(_cluster)?$' --output-on-failure)
mkdir -p docs/img
for v in graph charts checkpoints learner cluster; do
  cp "$dir/test-artifacts/webui/view-$v.png" "docs/img/webui-$v.png"
done
ls -l docs/img/webui-*.png
