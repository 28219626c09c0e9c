# shellcheck shell=bash
# test/lib.sh - reusable set-up and tear-down helpers for ethwhale_fdw scripts.
#
# Sourced by test/run (the test suite), and meant to be sourced by the demo
# (scripts/demo) and the benchmarks as well.  It does nothing when sourced
# except define functions and default variables.
#
# Typical use:
#
#   source "$(dirname "$0")/../test/lib.sh"
#   ew_init                          # temp dir, log dir, caches, PATH
#   trap cleanup EXIT
#   trap 'exit 130' INT; trap 'exit 143' TERM
#   ensure_packages $EW_BASE_PACKAGES
#   ensure_node_deps "$EW_ROOT/test/geth-server"
#   build_extension
#   start_cluster                    # exports PGHOST PGPORT PGUSER PGDATABASE
#   start_graphql_server CSV_URL csv --data "$ETHWHALE_DATA"
#   psql -c 'CREATE EXTENSION ethwhale_fdw' ...
#
# Functions (all print progress to stderr; all fail with a message via ew_die):
#   ew_init                  create EW_TMPDIR and EW_LOGDIR, set caches and PATH
#   ew_log MSG / ew_warn MSG / ew_err MSG / ew_banner MSG
#   ew_die MSG               ew_err MSG, then exit 1
#   ensure_packages PKG...   apt-get install what is missing (update only then),
#                            through scripts/install --packages
#   ensure_go                make `go` available (PATH, else Debian's golang-go)
#   ensure_node_deps DIR     `npm ci` in DIR when node_modules is stale
#   ensure_venv REQFILE [VENV]  VENV (default $ETHWHALE_CACHE/venv-<hash of REQFILE>) with
#                            REQFILE installed; sets EW_PYTHON to its python
#   ensure_geth              run test/geth/install.sh; sets and exports GETH_BIN
#                            (empty when unavailable, with a loud banner)
#   build_extension          make && make install with EW_PG_CONFIG, through
#                            scripts/install --build-only
#   free_port                print a free TCP port on 127.0.0.1
#   start_cluster [PORT]     throwaway PostgreSQL cluster (pg_cron preloaded), of
#                            the host's PostgreSQL 15 or, with EW_PG_ROOT, of
#                            the PostgreSQL in that chroot (test/pgversions.sh)
#   stop_cluster             pg_ctl stop -m fast
#   start_graphql_server VAR NAME ARGS...
#                            start test/geth-server/server.js --port 0 ARGS,
#                            wait for its "listening on URL" line, set VAR=URL
#   register_pid PID         have cleanup stop PID
#   cleanup                  stop everything started here, remove EW_TMPDIR
#                            (idempotent; install it with `trap cleanup EXIT`)
#   show_logs                print the tail of every log in EW_LOGDIR
#
# Variables (environment overrides in brackets):
#   EW_ROOT                  repository root
#   ETHWHALE_CACHE           [/var/cache/ethwhale_fdw] apt .debs, npm cache, pip
#                            cache and venv, Go caches, the geth binary
#   ETHWHALE_DATA            [$EW_ROOT/../shared/data] mainnet CSV files
#   EW_PG_BINDIR             [/usr/lib/postgresql/15/bin]
#   EW_PG_CONFIG             [$EW_PG_BINDIR/pg_config]
#   EW_PG_OSUSER             [postgres] OS user running the cluster when root
#   EW_PG_ROOT               [unset] a chroot (test/pgversions.sh) whose PostgreSQL
#                            start_cluster runs; EW_PG_BINDIR is then a path
#                            inside it.  EW_PG_EXEC ("chroot DIR", exported)
#                            is the prefix for its client binaries
#   EW_PG_CLUSTER            [pg] the cluster's directory under EW_TMPDIR
#   EW_TMPDIR                this run's temp dir, made by ew_init (never taken
#                            from the environment; removed by cleanup unless
#                            EW_KEEP_TMP=1)
#   EW_LOGDIR                [$EW_ROOT/test/results] logs, kept after the run
#   EW_QUIET                 [1] hide apt/npm/pip/make output unless they fail
#   EW_CRON_DATABASE         [postgres] cron.database_name of the cluster
#   EW_SKIP_GETH             [unset] set to skip building/finding geth
#   EW_GETH_INSTALL_TIMEOUT  [1500] seconds allowed for test/geth/install.sh
#   GETH_BIN                 set by ensure_geth; EW_GETH_SKIP_REASON when empty

EW_ROOT="${EW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
ETHWHALE_CACHE="${ETHWHALE_CACHE:-/var/cache/ethwhale_fdw}"
EW_PG_BINDIR="${EW_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
EW_PG_CONFIG="${EW_PG_CONFIG:-$EW_PG_BINDIR/pg_config}"
EW_PG_OSUSER="${EW_PG_OSUSER:-postgres}"
EW_LOGDIR="${EW_LOGDIR:-$EW_ROOT/test/results}"
EW_QUIET="${EW_QUIET:-1}"
# Never inherited: a parent run's temp dir is not ours to remove.
EW_TMPDIR=""

# Debian packages needed to build the extension and run the tests: the
# extension's own come from scripts/install (the script docker/Dockerfile
# runs too), the rest are for the tests.
# shellcheck disable=SC2034  # used by the scripts that source this file
EW_BASE_PACKAGES="$("$EW_ROOT/scripts/install" --list-packages) python3 python3-venv curl"

EW_PIDS=()            # processes cleanup stops (servers started here)
EW_PGDATA=""          # data directory of the cluster started here
EW_CLEANED=0
_EW_APT_UPDATED=0

# ---------------------------------------------------------------- messages

ew_log()  { printf '==> %s\n' "$*" >&2; }
ew_warn() { printf 'WARNING: %s\n' "$*" >&2; }
ew_err()  { printf 'ERROR: %s\n' "$*" >&2; }
ew_die()  { ew_err "$@"; exit 1; }
ew_banner() {
	printf '\n%s\n*** %s ***\n%s\n\n' \
		'*******************************************************************************' \
		"$*" \
		'*******************************************************************************' >&2
}

# ew_quietly LOGFILE CMD...: run CMD with its output in LOGFILE (or on the
# terminal when EW_QUIET=0); on failure print the log's tail and fail.
ew_quietly() {
	local log=$1 rc=0
	shift
	if [ "$EW_QUIET" = 0 ]; then
		"$@" 2>&1 | tee -a "$log" >&2 || rc=${PIPESTATUS[0]}
	else
		"$@" >>"$log" 2>&1 || rc=$?
	fi
	if [ "$rc" -ne 0 ]; then
		printf 'ERROR: command failed (exit %s): %s\n--- last lines of %s ---\n' "$rc" "$*" "$log" >&2
		tail -n 40 "$log" >&2 || true
		printf -- '---\n' >&2
		return "$rc"
	fi
}

# Run a command as the cluster's OS user when we are root, else as ourselves;
# inside the chroot EW_PG_ROOT when it is set (with that system's user).
ew_as_pg() {
	if [ -n "${EW_PG_ROOT:-}" ]; then
		chroot "$EW_PG_ROOT" runuser -u "$EW_PG_OSUSER" -- "$@"
	elif [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u "$EW_PG_OSUSER" -- "$@")
	else
		"$@"
	fi
}

# ---------------------------------------------------------------- set-up

ew_init() {
	mkdir -p "$EW_LOGDIR" "$ETHWHALE_CACHE"
	if [ -z "$EW_TMPDIR" ]; then
		EW_TMPDIR=$(mktemp -d /tmp/ethwhale.XXXXXX)   # /tmp: reachable by the postgres user
		chmod 755 "$EW_TMPDIR"        # the cluster's OS user must reach it
	fi
	export EW_TMPDIR EW_LOGDIR ETHWHALE_CACHE
	if [ -z "${ETHWHALE_DATA:-}" ]; then
		ETHWHALE_DATA="$EW_ROOT/../shared/data"
	fi
	if [ -d "$ETHWHALE_DATA" ]; then
		ETHWHALE_DATA=$(cd "$ETHWHALE_DATA" && pwd)
	fi
	export ETHWHALE_DATA
	# Go installed from the official tarball may not be on a non-login PATH.
	if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
		PATH="/usr/local/go/bin:$PATH"
	fi
	PATH="$EW_PG_BINDIR:$PATH"
	export PATH
	export GOPATH="${GOPATH:-$ETHWHALE_CACHE/go}"
	export GOMODCACHE="${GOMODCACHE:-$ETHWHALE_CACHE/go/pkg/mod}"
	export GOCACHE="${GOCACHE:-$ETHWHALE_CACHE/go/build}"
	export npm_config_cache="$ETHWHALE_CACHE/npm"
	export PIP_CACHE_DIR="$ETHWHALE_CACHE/pip"
	export PIP_DISABLE_PIP_VERSION_CHECK=1
	export DEBIAN_FRONTEND=noninteractive
}

# ensure_packages PKG...: install the Debian packages not yet installed.
# apt-get update runs only when something is missing (once per process).
ensure_packages() {
	local p missing=()
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		ew_err "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
		return 1
	fi
	ew_log "installing Debian packages: ${missing[*]}"
	# The same apt-get steps as the Docker image (scripts/install).
	local no_update=0
	[ "$_EW_APT_UPDATED" = 1 ] && no_update=1
	ew_quietly "$EW_LOGDIR/apt.log" env APT_ARCHIVES="$ETHWHALE_CACHE/apt/archives" \
		APT_NO_UPDATE="$no_update" "$EW_ROOT/scripts/install" --packages "${missing[@]}" || return 1
	_EW_APT_UPDATED=1
}

# ensure_go: make sure some `go` is on PATH (Debian's golang-go if none).
# Whether it is new enough for geth is test/geth/install.sh's business.
ensure_go() {
	command -v go >/dev/null 2>&1 && return 0
	ensure_packages golang-go || return 1
}

# ensure_node_deps DIR: `npm ci` in DIR when node_modules does not match
# package-lock.json (a stamp records the lock file's checksum).
ensure_node_deps() {
	local dir=$1 sum stamp
	[ -f "$dir/package.json" ] || { ew_err "$dir/package.json not found"; return 1; }
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		ensure_packages nodejs npm || return 1
	fi
	if [ -f "$dir/package-lock.json" ]; then
		sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
	else
		sum=$(sha256sum "$dir/package.json" | cut -d' ' -f1)
	fi
	stamp="$dir/node_modules/.ethwhale-lock.sha256"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
		return 0
	fi
	ew_log "installing npm packages in ${dir#"$EW_ROOT"/}"
	local log="$EW_LOGDIR/npm.log"
	if [ -f "$dir/package-lock.json" ]; then
		(cd "$dir" && ew_quietly "$log" npm ci --prefer-offline --no-audit --no-fund \
			--cache "$ETHWHALE_CACHE/npm") || return 1
	else
		(cd "$dir" && ew_quietly "$log" npm install --prefer-offline --no-audit --no-fund \
			--cache "$ETHWHALE_CACHE/npm") || return 1
	fi
	echo "$sum" >"$stamp"
}

# ensure_venv REQFILE [VENV]: a virtualenv at VENV (default
# $ETHWHALE_CACHE/venv-<hash of REQFILE>) holding REQFILE, rebuilt when REQFILE or the
# interpreter changes.  Sets EW_PYTHON to its python.
ensure_venv() {
	# one venv per requirements file's content: runs with other pins (another
	# checkout, a branch) never delete a venv that a running test uses
	local req=$1 venv="${2:-$ETHWHALE_CACHE/venv-$(sha256sum "$1" | cut -c1-12)}" py want
	py=/usr/bin/python3
	[ -x "$py" ] || py=$(command -v python3)
	want="$(sha256sum "$req" | cut -d' ' -f1) $("$py" -c 'import sys; print(sys.version.split()[0])') $py"
	if [ -x "$venv/bin/python" ] && [ -f "$venv/.ethwhale-stamp" ] \
		&& [ "$(cat "$venv/.ethwhale-stamp")" = "$want" ]; then
		export EW_PYTHON="$venv/bin/python"
		return 0
	fi
	ew_log "creating the Python virtualenv $venv"
	local log="$EW_LOGDIR/pip.log"
	rm -rf "$venv"
	ew_quietly "$log" "$py" -m venv "$venv" || return 1
	ew_quietly "$log" "$venv/bin/python" -m pip install -q --cache-dir "$ETHWHALE_CACHE/pip" \
		-r "$req" || return 1
	echo "$want" >"$venv/.ethwhale-stamp"
	export EW_PYTHON="$venv/bin/python"
}

# ensure_geth: build or find geth through test/geth/install.sh (which prints
# the binary's path on its last line, or exits 3 when Go or the build is not
# available).  Exports GETH_BIN, empty when unavailable.  Returns 1 only when
# install.sh fails in another way (a broken installer is a real failure).
ensure_geth() {
	GETH_BIN=""
	EW_GETH_SKIP_REASON=""
	export GETH_BIN
	local installer="$EW_ROOT/test/geth/install.sh" out="$EW_TMPDIR/geth-install.out"
	local log="$EW_LOGDIR/geth-install.log" rc=0 limit="${EW_GETH_INSTALL_TIMEOUT:-1500}"
	if [ -n "${EW_SKIP_GETH:-}" ]; then
		EW_GETH_SKIP_REASON="EW_SKIP_GETH is set"
		ew_banner "REAL GETH TESTS SKIPPED: $EW_GETH_SKIP_REASON"
		return 0
	fi
	if [ ! -f "$installer" ]; then
		EW_GETH_SKIP_REASON="test/geth/install.sh does not exist"
		ew_banner "REAL GETH TESTS SKIPPED: $EW_GETH_SKIP_REASON"
		return 0
	fi
	ensure_go || ew_warn "could not install Go; test/geth/install.sh will decide"
	ew_log "preparing geth (test/geth/install.sh; cached in $ETHWHALE_CACHE)"
	timeout -k 10 "$limit" bash "$installer" >"$out" 2>"$log" || rc=$?
	if [ "$rc" -eq 0 ]; then
		GETH_BIN=$(tail -n 1 "$out")
		if [ -n "$GETH_BIN" ] && [ -x "$GETH_BIN" ]; then
			ew_log "geth: $GETH_BIN ($("$GETH_BIN" version 2>/dev/null | sed -n 's/^Version: //p' | head -1))"
			return 0
		fi
		GETH_BIN=""
		ew_err "test/geth/install.sh succeeded but its last line is not an executable: $(tail -n 1 "$out")"
		return 1
	elif [ "$rc" -eq 3 ]; then
		EW_GETH_SKIP_REASON="$(tail -n 1 "$log" 2>/dev/null)"
		EW_GETH_SKIP_REASON="install.sh: ${EW_GETH_SKIP_REASON:-Go or the geth build is unavailable} (see ${log#"$EW_ROOT"/})"
		ew_banner "REAL GETH TESTS SKIPPED: $EW_GETH_SKIP_REASON"
		return 0
	elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		EW_GETH_SKIP_REASON="building geth took more than ${limit}s (see ${log#"$EW_ROOT"/})"
		ew_banner "REAL GETH TESTS SKIPPED: $EW_GETH_SKIP_REASON"
		return 0
	fi
	cat "$out" >>"$log"
	ew_err "test/geth/install.sh failed with exit $rc; last lines of $log:"
	tail -n 30 "$log" >&2
	return 1
}

# build_extension: build and install the extension with PGXS, through
# scripts/install --build-only (the step docker/Dockerfile runs).
build_extension() {
	local log="$EW_LOGDIR/build.log"
	: >"$log"
	if [ ! -f "$EW_ROOT/Makefile" ]; then
		ew_err "no Makefile in $EW_ROOT: the C extension is not there yet, nothing to build"
		return 1
	fi
	ew_log "building the extension (make PG_CONFIG=$EW_PG_CONFIG; make install)"
	ew_quietly "$log" env PG_CONFIG="$EW_PG_CONFIG" JOBS="$(nproc)" \
		"$EW_ROOT/scripts/install" --build-only || {
		ew_err "building or installing the extension failed (full log: $log)"
		return 1
	}
	# Show compiler warnings even when the build succeeds.
	if grep -q 'warning:' "$log"; then
		ew_warn "the build printed warnings:"
		grep -A3 'warning:' "$log" | head -n 60 >&2
	fi
}

# free_port: print a TCP port that is free on 127.0.0.1 right now.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

register_pid() { EW_PIDS+=("$1"); }

# ---------------------------------------------------------------- PostgreSQL

# start_cluster [PORT]: initdb a throwaway cluster in $EW_TMPDIR/pg and start
# it on 127.0.0.1:PORT (a free port by default) with pg_cron preloaded.
# Exports PGHOST PGPORT PGUSER PGDATABASE; sets EW_PGDATA.
# With EW_PG_ROOT set, the cluster is that chroot's: its directory is
# EW_PG_ROOT/EW_TMPDIR/EW_PG_CLUSTER, and EW_TMPDIR/EW_PG_CLUSTER on the host
# is a link to it, so that its paths (SHOW data_directory) are the same inside
# and outside; the tests and the servers on the host reach it over TCP.
start_cluster() {
	local port=${1:-} dir="$EW_TMPDIR/${EW_PG_CLUSTER:-pg}" try
	local root=${EW_PG_ROOT:-}
	[ -x "$root$EW_PG_BINDIR/initdb" ] || { ew_err "$root$EW_PG_BINDIR/initdb not found (postgresql-NN missing?)"; return 1; }
	if [ -n "$root" ]; then
		mkdir -p "$root$dir" && ln -sfn "$root$dir" "$dir" || return 1
		chroot "$root" chown "$EW_PG_OSUSER": "$dir" || return 1
	else
		if [ "$(id -u)" = 0 ] && ! id "$EW_PG_OSUSER" >/dev/null 2>&1; then
			useradd --system --no-create-home --shell /usr/sbin/nologin "$EW_PG_OSUSER" || return 1
		fi
		mkdir -p "$dir"
		if [ "$(id -u)" = 0 ]; then chown "$EW_PG_OSUSER": "$dir"; fi
	fi
	EW_PGDATA="$dir/data"
	ew_log "creating a PostgreSQL $(basename "$(dirname "$EW_PG_BINDIR")") cluster in $EW_PGDATA${root:+ (chroot $root)}"
	ew_as_pg "$EW_PG_BINDIR/initdb" -D "$EW_PGDATA" -U postgres --auth=trust \
		-E UTF8 --locale=C >"$EW_LOGDIR/initdb.log" 2>&1 || {
		cat "$EW_LOGDIR/initdb.log" >&2
		ew_err "initdb failed"
		return 1
	}
	# shellcheck disable=SC2016  # $1 is expanded by the inner sh
	ew_as_pg sh -c 'cat >>"$1/postgresql.conf"' sh "$EW_PGDATA" <<EOF || return 1

# added by test/lib.sh start_cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_cron'
cron.database_name = '${EW_CRON_DATABASE:-postgres}'
cron.use_background_workers = on
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 60
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	for try in 1 2 3; do
		if [ -z "$port" ] || [ "$try" -gt 1 ]; then
			[ -n "${1:-}" ] && break      # a port was asked for: no second try
			port=$(free_port)
		fi
		if ew_as_pg "$EW_PG_BINDIR/pg_ctl" start -w -t 60 -D "$EW_PGDATA" -o "-p $port" \
			-l "$dir/postgresql.log" >>"$EW_LOGDIR/pg_ctl.log" 2>&1; then
			export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
			ew_log "PostgreSQL is up: host=127.0.0.1 port=$port user=postgres"
			return 0
		fi
		ew_warn "PostgreSQL did not start on port $port (try $try)"
		tail -n 20 "$dir/postgresql.log" >&2 2>/dev/null || true
	done
	ew_err "could not start PostgreSQL (log: $dir/postgresql.log)"
	return 1
}

# stop_cluster: stop the cluster started by start_cluster, keep its log.
stop_cluster() {
	[ -n "$EW_PGDATA" ] || return 0
	if [ -f "$EW_PGDATA/postmaster.pid" ]; then
		ew_as_pg "$EW_PG_BINDIR/pg_ctl" stop -m fast -w -t 30 -D "$EW_PGDATA" >>"$EW_LOGDIR/pg_ctl.log" 2>&1 \
			|| ew_as_pg "$EW_PG_BINDIR/pg_ctl" stop -m immediate -w -t 30 -D "$EW_PGDATA" >>"$EW_LOGDIR/pg_ctl.log" 2>&1 \
			|| ew_warn "could not stop PostgreSQL in $EW_PGDATA"
	fi
	if [ -f "$(dirname "$EW_PGDATA")/postgresql.log" ]; then
		cp "$(dirname "$EW_PGDATA")/postgresql.log" "$EW_LOGDIR/postgresql.log" 2>/dev/null || true
	fi
	EW_PGDATA=""
}

# ---------------------------------------------------------------- GraphQL test server

# start_graphql_server VAR NAME ARGS...: start the test GraphQL server with
# `--port 0 ARGS`, wait until it prints "listening on http://127.0.0.1:P/graphql",
# and store that URL in the shell variable VAR.  Its stderr goes to
# $EW_LOGDIR/graphql-NAME.log and its request log to graphql-NAME.requests.log.
start_graphql_server() {
	local var=$1 name=$2 server="$EW_ROOT/test/geth-server/server.js"
	shift 2
	[ -f "$server" ] || { ew_err "$server not found"; return 1; }
	local out="$EW_LOGDIR/graphql-$name.out" log="$EW_LOGDIR/graphql-$name.log"
	: >"$out"
	node "$server" --port 0 --log "$EW_LOGDIR/graphql-$name.requests.log" "$@" >"$out" 2>"$log" &
	local pid=$! url="" i
	register_pid "$pid"
	for ((i = 0; i < 300; i++)); do
		url=$(sed -n 's#^listening on \(http://[^ ]*\).*#\1#p' "$out" | head -n 1)
		[ -n "$url" ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			ew_err "GraphQL server '$name' exited before listening; its output:"
			cat "$out" "$log" >&2
			return 1
		fi
		sleep 0.1
	done
	if [ -z "$url" ]; then
		ew_err "GraphQL server '$name' did not print 'listening on …' within 30 s"
		tail -n 20 "$out" "$log" >&2
		return 1
	fi
	printf -v "$var" '%s' "$url"
	ew_log "GraphQL server '$name' (pid $pid): $url"
}

# ---------------------------------------------------------------- tear-down

# Stop one process: TERM, wait up to 5 s, then KILL.
ew_stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# cleanup: stop what this script started (servers, geth, cluster), then
# remove EW_TMPDIR.  Safe to call more than once and from a trap.
cleanup() {
	[ "$EW_CLEANED" = 1 ] && return 0
	EW_CLEANED=1
	local had_e=0 pid d f cmd
	case $- in *e*) had_e=1 ;; esac
	set +e
	for pid in "${EW_PIDS[@]}"; do
		ew_stop_pid "$pid"
	done
	EW_PIDS=()
	# geth nodes that tests started under our temp dir ($EW_TMPDIR/geth*)
	if [ -n "$EW_TMPDIR" ] && [ -x "$EW_ROOT/test/geth/stop.sh" ]; then
		for d in "$EW_TMPDIR"/geth*/; do
			[ -d "$d" ] && "$EW_ROOT/test/geth/stop.sh" "${d%/}" >/dev/null 2>&1
		done
	fi
	stop_cluster
	# Anything still running from our temp dir (a geth or server a test left
	# behind) is ours: stop it by pid.
	if [ -n "$EW_TMPDIR" ] && [ -d "$EW_TMPDIR" ]; then
		for f in /proc/[0-9]*/cmdline; do
			pid=${f#/proc/}
			pid=${pid%/cmdline}
			[ "$pid" = "$$" ] && continue
			cmd=$(tr '\0' ' ' 2>/dev/null <"$f")
			if [[ $cmd == *"$EW_TMPDIR"* ]]; then
				ew_warn "stopping leftover process $pid: ${cmd:0:120}"
				ew_stop_pid "$pid"
			fi
		done
		# a chroot's /proc left mounted by an interrupted package install
		# (test/pgversions.sh); --one-file-system in case one stays.
		local _ m
		while read -r _ m _; do
			case $m in "$EW_TMPDIR"/*) umount "$m" 2>/dev/null || umount -l "$m" ;; esac
		done < <(tac /proc/self/mounts)
		if [ "${EW_KEEP_TMP:-0}" = 1 ]; then
			ew_log "keeping $EW_TMPDIR (EW_KEEP_TMP=1)"
		else
			rm -rf --one-file-system "$EW_TMPDIR"
		fi
	fi
	[ "$had_e" = 1 ] && set -e
	return 0
}

# show_logs [LINES]: print the tail of every log in EW_LOGDIR.
show_logs() {
	local n=${1:-30} f
	for f in "$EW_LOGDIR"/*.log "$EW_LOGDIR"/*.out; do
		[ -s "$f" ] || continue
		case "$f" in *.requests.log) continue ;; esac
		printf '\n----- last %s lines of %s -----\n' "$n" "${f#"$EW_ROOT"/}" >&2
		tail -n "$n" "$f" >&2
	done
}
