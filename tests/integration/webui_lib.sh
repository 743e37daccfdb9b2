# webui_lib.sh — shared by the web UI's browser tests (test_webui*.sh): headless Chromium
# on a page of a running runnel, and the PASS/FAIL bookkeeping. Sourced; needs SRC, BIN, TMP;
# sets ART, the folder for the tests' artefacts.
#
#   need_chromium            exits 77 (ctest: skipped) with a message when there is none
#                            ($CHROMIUM, else chromium on the PATH)
#   browse URL BUDGET_MS     the page's DOM after BUDGET_MS of virtual time -> stdout
#   wait_for SECONDS CMD...  runs CMD every 0.2 s until it succeeds (1 if it never does)
#
# Chromium runs headless as root (--no-sandbox) with a throwaway profile under $TMP; the
# virtual time budget lets the page's timers and fetches run without waiting in real time
# for what the page does not wait on, so a loaded machine only slows it down. Pages that
# must be clicked or typed into, and screenshots, go through tests/tools/cdp.py.

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
# where the screenshots and the page's DOM are kept (test artefacts)
ART=$BIN/test-artifacts/webui
mkdir -p "$ART"
need_chromium() {
    if [ -z "$CHROMIUM" ] || [ ! -x "$CHROMIUM" ]; then
        echo "SKIP: chromium is not installed (bash scripts/install-deps.sh installs it)"
        exit 77
    fi
}

chromium_run() {
    timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-extensions --disable-background-networking --mute-audio \
        --user-data-dir="$TMP/chromium-profile" "$@" 2>>"$TMP/chromium.err"
}

browse() { chromium_run --virtual-time-budget="$2" --dump-dom "$1"; }

# wait_for SECONDS CMD... : runs CMD every 0.2 s until it succeeds; 1 if it never does.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $deadline ]; do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
