#!/usr/bin/env bash
# test/geth/install.sh - build (or reuse) the geth binary used by the real-node tests.
#
#   test/geth/install.sh            prints the binary's absolute path as the LAST line of stdout
#
# The binary is built with `go install github.com/ethereum/go-ethereum/cmd/geth@$GETH_VERSION`
# and kept in $ETHWHALE_CACHE/geth/$GETH_VERSION/geth; it is reused when present and working.
# Go's module and build caches live in $ETHWHALE_CACHE/go, so a rebuild after the binary was
# removed is quick and needs no network.
#
# Environment:
#   ETHWHALE_CACHE   [/var/cache/ethwhale_fdw]
#   GO               a go binary to use (default: `go` on PATH, else /usr/local/go/bin/go,
#                    else /usr/lib/go-*/bin/go; the first one new enough wins)
#   GETH_VERSION     [v1.17.5] only for experiments: the tests and the test server follow 1.17.5
#
# Exit status: 0 ok; 3 Go missing or too old, or the module download failed (the last line on
# stderr says why: the tests are then skipped); 1 anything else (a real build failure).
# Progress goes to stderr.

set -euo pipefail

# v1.17.5 is the release the SPEC and test/geth-server follow; the module proxy has it.
GETH_VERSION="${GETH_VERSION:-v1.17.5}"
GETH_MODULE="github.com/ethereum/go-ethereum"
GETH_PKG="$GETH_MODULE/cmd/geth"
# go-ethereum v1.17.x's go.mod says `go 1.24.0`.
GO_MIN_MAJOR=1
GO_MIN_MINOR=24

CACHE="${ETHWHALE_CACHE:-/var/cache/ethwhale_fdw}"
DEST_DIR="$CACHE/geth/$GETH_VERSION"
DEST="$DEST_DIR/geth"

log() { printf 'install.sh: %s\n' "$*" >&2; }
# unavailable REASON: exit 3 with REASON as the last stderr line
unavailable() {
	printf '%s\n' "$*" >&2
	exit 3
}
fail() {
	printf 'install.sh: error: %s\n' "$*" >&2
	exit 1
}

want="${GETH_VERSION#v}"

# works BIN: BIN runs and reports the pinned version
works() {
	local out
	[ -x "$1" ] || return 1
	out=$("$1" version 2>/dev/null) || return 1
	grep -q "^Version: ${want//./\\.}-" <<<"$out"
}

if works "$DEST"; then
	log "reusing $DEST ($("$DEST" version | sed -n 's/^Version: //p'))"
	printf '%s\n' "$DEST"
	exit 0
fi

mkdir -p "$DEST_DIR" "$CACHE/go" || fail "cannot create $DEST_DIR"
# One build at a time per cache (test/run also holds $CACHE/.lock while setting up).
exec 8>"$CACHE/geth/.install.lock"
if command -v flock >/dev/null 2>&1; then
	if ! flock -n 8; then
		log "waiting for another install.sh ($CACHE/geth/.install.lock)"
		flock 8
	fi
	if works "$DEST"; then
		log "built meanwhile by another install.sh: $DEST"
		printf '%s\n' "$DEST"
		exit 0
	fi
fi

# ---------------------------------------------------------------- find Go

# go_version BIN: prints "MAJOR MINOR" of a go binary, or fails
go_version() {
	local v
	v=$("$1" env GOVERSION 2>/dev/null) || v=$("$1" version 2>/dev/null | awk '{print $3}') || return 1
	v=${v#go}
	[[ $v =~ ^([0-9]+)\.([0-9]+) ]] || return 1
	echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}

GO_BIN=""
found=""
candidates=()
[ -n "${GO:-}" ] && candidates+=("$GO")
command -v go >/dev/null 2>&1 && candidates+=("$(command -v go)")
candidates+=(/usr/local/go/bin/go)
for g in /usr/lib/go-*/bin/go; do candidates+=("$g"); done
for g in "${candidates[@]}"; do
	[ -x "$g" ] || continue
	mv=$(go_version "$g") || continue
	found="$found ${g}(go${mv/ /.})"
	read -r major minor <<<"$mv"
	if [ "$major" -gt "$GO_MIN_MAJOR" ] ||
		{ [ "$major" -eq "$GO_MIN_MAJOR" ] && [ "$minor" -ge "$GO_MIN_MINOR" ]; }; then
		GO_BIN=$g
		break
	fi
done
if [ -z "$GO_BIN" ]; then
	if [ -z "$found" ]; then
		unavailable "Go is not installed (geth $GETH_VERSION needs go >= $GO_MIN_MAJOR.$GO_MIN_MINOR)"
	fi
	unavailable "Go is too old for geth $GETH_VERSION (needs go >= $GO_MIN_MAJOR.$GO_MIN_MINOR, found:$found)"
fi
log "using $GO_BIN ($("$GO_BIN" env GOVERSION))"

# ---------------------------------------------------------------- environment

export GOPATH="$CACHE/go/path"
export GOMODCACHE="$CACHE/go/mod"
export GOCACHE="$CACHE/go/build"
# Module cache files writable, so that the cache can be cleaned with rm -rf.
export GOFLAGS="-modcacherw"
# Never fetch another Go toolchain: the version check above decides.
export GOTOOLCHAIN=local
export GO111MODULE=on
unset GOROOT GOOS GOARCH GOWORK 2>/dev/null || true
# geth builds with cgo by default (C secp256k1, blst); without a C compiler it still builds
# with CGO_ENABLED=0 (pure-Go fallbacks).
if [ -z "${CGO_ENABLED:-}" ]; then
	if command -v "${CC:-gcc}" >/dev/null 2>&1 || command -v cc >/dev/null 2>&1; then
		CGO_ENABLED=1
	else
		CGO_ENABLED=0
	fi
fi
export CGO_ENABLED
log "GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE CGO_ENABLED=$CGO_ENABLED"

BUILD_DIR=$(mktemp -d "$DEST_DIR/.build.XXXXXX")
trap 'rm -rf "$BUILD_DIR"' EXIT
export GOBIN="$BUILD_DIR"

# ---------------------------------------------------------------- download

# `go install -n` loads the packages (downloading every module they need) but builds nothing, so
# a failure here is a download problem, not a build problem.
start=$(date +%s)
log "downloading $GETH_PKG@$GETH_VERSION and its dependencies (go install -n)"
dl_log="$BUILD_DIR/download.log"
if ! "$GO_BIN" install -n "$GETH_PKG@$GETH_VERSION" >"$dl_log" 2>&1; then
	grep -v '^#\|^mkdir\|^cat\|^cd\|^EOF\|^packagefile\|^importmap\|^modinfo' "$dl_log" | tail -n 15 >&2 || true
	reason=$(grep -E 'go: |dial tcp|proxy|no such host|timeout|refused|not found|unknown revision' "$dl_log" |
		tail -n 1 | cut -c1-300)
	unavailable "cannot download $GETH_MODULE@$GETH_VERSION with Go's module proxy (GOPROXY=$("$GO_BIN" env GOPROXY)): ${reason:-see above}"
fi
log "modules ready ($(($(date +%s) - start)) s)"

# ---------------------------------------------------------------- build

log "building geth $GETH_VERSION (go install; several minutes on 2 cores when the build cache is cold)"
start=$(date +%s)
if ! "$GO_BIN" install "$GETH_PKG@$GETH_VERSION" >&2; then
	fail "go install $GETH_PKG@$GETH_VERSION failed"
fi
[ -x "$BUILD_DIR/geth" ] || fail "go install succeeded but $BUILD_DIR/geth does not exist"
works "$BUILD_DIR/geth" || fail "the new binary does not report version $want: $("$BUILD_DIR/geth" version 2>&1 | head -n 5)"
mv -f "$BUILD_DIR/geth" "$DEST"
log "built $DEST in $(($(date +%s) - start)) s"
printf '%s\n' "$DEST"
