#!/usr/bin/env bash
# test/fuzz/run.sh [SECONDS] [WORKDIR] - build the libFuzzer target and run
# it for SECONDS (default 90) from the committed seed corpus; exits non-zero
# on any crash, sanitizer report, leak, time-out (10 s per input) or
# memory blow-up (2 GB).  New inputs go to WORKDIR/corpus, never into the
# committed corpus; a crashing input is left in WORKDIR (crash-*).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SECS=${1:-90}
WORK=${2:-$(mktemp -d /tmp/ethwhale-fuzz.XXXXXX)}
mkdir -p "$WORK/corpus"
"$HERE/build.sh" "$WORK/fuzz_decode" 2>"$WORK/build.log" || { cat "$WORK/build.log" >&2; exit 2; }
cd "$WORK"
rc=0
./fuzz_decode -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
	-print_final_stats=1 -artifact_prefix="$WORK/" "$WORK/corpus" "$HERE/corpus" >"$WORK/fuzz.log" 2>&1 || rc=$?
tail -n 12 "$WORK/fuzz.log"
if [ "$rc" != 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$WORK/fuzz.log"; then
	echo "fuzz: FAILED (exit $rc); log $WORK/fuzz.log; inputs: $(ls "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-* "$WORK"/oom-* 2>/dev/null | tr '\n' ' ')" >&2
	exit 1
fi
echo "fuzz: no crash in ${SECS}s ($(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/fuzz.log") inputs); log $WORK/fuzz.log"
