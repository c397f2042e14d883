#!/bin/bash
# make sanitize: the whole test suite under each sanitizer named on the command line
# (address, thread), each in its own build directory (.build-address, .build-thread).
# Every program the tests start (swiftpostmap and the test runner itself) writes its
# sanitizer reports into that directory's reports/ folder; the run fails when a test fails
# or when any report was written, even one no test looked at.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
release_bin="$root/.build/release/swiftpostmap"
[ -x "$release_bin" ] || { echo "sanitize: $release_bin missing (make build)" >&2; exit 1; }
failed=0
summary=()
for sanitizer in "$@"; do
    scratch="$root/.build-$sanitizer"
    reports="$scratch/reports"
    rm -rf "$reports"
    mkdir -p "$reports"
    echo "== $sanitizer: building with -sanitize=$sanitizer"
    if ! swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch"; then
        summary+=("$sanitizer: build failed")
        failed=1
        continue
    fi
    # The programs' own signal handling is under test (the memory-fault guard, the --check
    # worker that must die by the signal it got), so the sanitizer leaves those signals alone.
    options="log_path=$reports/report:log_exe_name=1:handle_segv=0:handle_sigbus=0:handle_abort=0"
    case $sanitizer in
    address) export ASAN_OPTIONS="$options:detect_leaks=1:strict_string_checks=1:check_initialization_order=1"
             export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0" ;;
    thread) export TSAN_OPTIONS="$options:halt_on_error=0:second_deadlock_stack=1" ;;
    esac
    log="$scratch/test.log"
    echo "== $sanitizer: testing (log $log)"
    SWIFTPOSTMAP_BIN="$scratch/debug/swiftpostmap" SWIFTPOSTMAP_RELEASE_BIN="$release_bin" \
        swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" --no-parallel 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    unset ASAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS
    count=$(find "$reports" -type f | wc -l)
    if [ "$count" -gt 0 ]; then
        echo "== $sanitizer: $count report file(s):"
        for file in "$reports"/*; do echo "--- $file"; head -60 "$file"; done
    fi
    tests=$(grep -Eo 'Test run with [0-9]+ tests' "$log" | tail -1)
    summary+=("$sanitizer: ${tests:-no test summary}, exit status $status, $count sanitizer report(s)")
    [ "$status" -eq 0 ] && [ "$count" -eq 0 ] || failed=1
done
printf '%s\n' "${summary[@]}"
exit $failed
