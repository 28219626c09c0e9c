#!/usr/bin/env bash
# test/geth/start.sh DATADIR [HTTP_PORT] - start a geth dev node for the real-node tests.
#
# Runs `geth --dev --dev.period 1` with HTTP JSON-RPC (eth,net,web3) and GraphQL on
# 127.0.0.1:HTTP_PORT (a free port when not given), no IPC, no peers. The node's output goes
# to DATADIR/geth.log, its pid to DATADIR/geth.pid and its URL to DATADIR/geth.url. Waits until
# eth_blockNumber answers (at most $GETH_START_TIMEOUT seconds, default 60) and prints
#
#   http://127.0.0.1:PORT            (GraphQL is at that URL + /graphql)
#
# on stdout. When a node started by this script is already answering in DATADIR, prints its URL.
# Stop it with test/geth/stop.sh DATADIR.
#
# Environment: GETH_BIN (default: `geth` on PATH), GETH_START_TIMEOUT [60],
#              GETH_VERBOSITY [2].
# Exit status: 0 running; 1 could not start (the tail of geth.log is printed on stderr); 2 usage.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'start.sh: %s\n' "$*" >&2; }
die() {
	printf 'start.sh: error: %s\n' "$*" >&2
	exit 1
}

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ -z "$1" ]; then
	echo "usage: $0 DATADIR [HTTP_PORT]" >&2
	exit 2
fi
mkdir -p "$1" || die "cannot create $1"
DATADIR=$(cd "$1" && pwd)
PORT_ARG="${2:-}"
if [ -n "$PORT_ARG" ] && ! [[ $PORT_ARG =~ ^[0-9]+$ ]]; then
	echo "usage: $0 DATADIR [HTTP_PORT]: HTTP_PORT must be a number" >&2
	exit 2
fi
TIMEOUT="${GETH_START_TIMEOUT:-60}"
GETH="${GETH_BIN:-}"
if [ -z "$GETH" ]; then
	GETH=$(command -v geth 2>/dev/null) || die "GETH_BIN is not set and there is no geth on PATH (build one with test/geth/install.sh)"
fi
[ -x "$GETH" ] || die "GETH_BIN=$GETH is not executable"

PIDFILE="$DATADIR/geth.pid"
URLFILE="$DATADIR/geth.url"
LOGFILE="$DATADIR/geth.log"

# rpc URL METHOD: POST a JSON-RPC call, print the result (JSON) or fail
rpc() {
	python3 - "$1" "$2" <<'EOF'
import json, sys, urllib.request
url, method = sys.argv[1], sys.argv[2]
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=3) as r:
        ans = json.loads(r.read())
except Exception as e:
    sys.exit(1)
if "result" not in ans:
    sys.exit(1)
print(json.dumps(ans["result"]))
EOF
}

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# port_free PORT: nothing listens on 127.0.0.1:PORT (bound the way Go binds: SO_REUSEADDR)
port_free() {
	python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

# listener_is PORT PID: the process listening on PORT is PID (true when ss cannot tell)
listener_is() {
	local out
	command -v ss >/dev/null 2>&1 || return 0
	out=$(ss -Hltnp "sport = :$1" 2>/dev/null) || return 0
	[ -n "$out" ] || return 0
	grep -q "pid=$2," <<<"$out"
}

# A node of ours already running here?
if [ -f "$PIDFILE" ]; then
	old=$(cat "$PIDFILE" 2>/dev/null || true)
	if alive "$old" && tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -qF -- "$DATADIR"; then
		if [ -f "$URLFILE" ] && rpc "$(cat "$URLFILE")" eth_blockNumber >/dev/null; then
			log "geth already running in $DATADIR (pid $old)"
			cat "$URLFILE"
			exit 0
		fi
		die "a geth (pid $old) runs in $DATADIR but does not answer; stop it with $HERE/stop.sh $DATADIR"
	fi
	rm -f "$PIDFILE" "$URLFILE"
fi

log "$("$GETH" version 2>/dev/null | sed -n 's/^Version: /geth /p') ($GETH)"

# With a free port chosen here another process may take it before geth binds it:
# retry with a new port then (not when the caller chose the port).
attempts=1
[ -z "$PORT_ARG" ] && attempts=3
for attempt in $(seq 1 "$attempts"); do
	PORT="${PORT_ARG:-$(free_port)}"
	URL="http://127.0.0.1:$PORT"
	# Another node answering on that port would pass for ours below.
	if ! port_free "$PORT"; then
		[ -z "$PORT_ARG" ] && [ "$attempt" -lt "$attempts" ] && continue
		die "port $PORT on 127.0.0.1 is already in use"
	fi
	log "starting geth --dev in $DATADIR on $URL (log: $LOGFILE)"
	{
		echo "===== $(date -u +%FT%TZ) start.sh: $GETH --dev, http port $PORT"
	} >>"$LOGFILE"
	# setsid: its own session, so that a Ctrl-C or a signal to the caller's process group
	# does not reach it; test/geth/stop.sh stops it cleanly.
	# GETH_* variables are geth's own flag variables (GETH_BIN would only be warned about, others
	# would change its configuration): the flags below are all it gets.
	env $(for v in ${!GETH_@}; do printf -- '-u %s ' "$v"; done) setsid "$GETH" \
		--dev --dev.period 1 \
		--datadir "$DATADIR" \
		--http --http.addr 127.0.0.1 --http.port "$PORT" \
		--http.api eth,net,web3 --http.vhosts '*' \
		--graphql --graphql.vhosts '*' \
		--ipcdisable --nodiscover --maxpeers 0 \
		--verbosity "${GETH_VERBOSITY:-2}" \
		</dev/null >>"$LOGFILE" 2>&1 &
	pid=$!
	echo "$pid" >"$PIDFILE"

	deadline=$((SECONDS + TIMEOUT))
	while :; do
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null && rc=0 || rc=$?
			rm -f "$PIDFILE"
			if [ "$attempt" -lt "$attempts" ] && tail -n 20 "$LOGFILE" | grep -qi 'address already in use'; then
				log "port $PORT was taken meanwhile; trying another one"
				continue 2
			fi
			tail -n 25 "$LOGFILE" >&2
			die "geth exited with status $rc before answering (log: $LOGFILE)"
		fi
		if bn=$(rpc "$URL" eth_blockNumber) && alive "$pid" && listener_is "$PORT" "$pid"; then
			echo "$URL" >"$URLFILE"
			log "geth (pid $pid) answers on $URL, head block $bn"
			echo "$URL"
			exit 0
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail -n 25 "$LOGFILE" >&2
			"$HERE/stop.sh" "$DATADIR" >&2 || true
			die "geth did not answer eth_blockNumber on $URL within ${TIMEOUT}s (log: $LOGFILE)"
		fi
		sleep 0.3
	done
done
die "could not start geth"
