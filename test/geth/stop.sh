#!/usr/bin/env bash
# test/geth/stop.sh DATADIR - stop the geth that test/geth/start.sh started in DATADIR.
#
# SIGTERM (geth shuts down cleanly), waits up to $GETH_STOP_TIMEOUT seconds (default 20), then
# SIGKILL. Idempotent: exits 0 when nothing runs there. Only the pid in DATADIR/geth.pid is
# signalled, and only while that process is a geth whose command line names DATADIR.

set -uo pipefail

log() { printf 'stop.sh: %s\n' "$*" >&2; }

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DATADIR" >&2
	exit 2
fi
[ -d "$1" ] || exit 0
DATADIR=$(cd "$1" && pwd)
PIDFILE="$DATADIR/geth.pid"
TIMEOUT="${GETH_STOP_TIMEOUT:-20}"

[ -f "$PIDFILE" ] || exit 0
pid=$(cat "$PIDFILE" 2>/dev/null || true)
cleanup_files() { rm -f "$PIDFILE" "$DATADIR/geth.url"; }

if ! [[ $pid =~ ^[0-9]+$ ]]; then
	cleanup_files
	exit 0
fi

# ours PID: still the geth started for DATADIR (and not a recycled pid)
ours() {
	local cmd
	[ -r "/proc/$1/cmdline" ] || return 1
	cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
	[[ $cmd == *geth* && $cmd == *"--datadir $DATADIR"* ]] || return 1
	# a zombie is as good as gone
	[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

if ! ours "$pid"; then
	cleanup_files
	exit 0
fi

log "stopping geth (pid $pid) in $DATADIR"
kill -TERM "$pid" 2>/dev/null || true
end=$((SECONDS + TIMEOUT))
while ours "$pid" && [ "$SECONDS" -lt "$end" ]; do
	sleep 0.2
done
if ours "$pid"; then
	log "geth (pid $pid) still running after ${TIMEOUT}s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		ours "$pid" || break
		sleep 0.1
	done
fi
cleanup_files
exit 0
