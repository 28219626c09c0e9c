#!/usr/bin/env bash
# test/fuzz/build.sh [OUT] - build the libFuzzer target (clang-14 with
# libclang-rt-14-dev) as OUT (default test/fuzz/fuzz_decode).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$HERE/fuzz_decode}
CC=${EW_FUZZ_CC:-clang-14}
PG_CONFIG=${EW_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGINC=$("$PG_CONFIG" --includedir-server)
# src/port (snprintf, strlcpy, pg_strcasecmp ...) as PostgreSQL builds it
PGPORT=$("$PG_CONFIG" --pkglibdir)/libpgport.a
FLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-ffunction-sections -fdata-sections -I"$ROOT" -I"$PGINC" -D_GNU_SOURCE -DEW_VERSION=\"fuzz\" -Wno-format -Wno-ignored-attributes -Wno-unknown-warning-option)
# The wrapper's files are linked as they are (none is #included).  Only what
# the targets reach is needed: the rest of option.c, catalog.c and
# transport.c (catalogs, libcurl's transfers) is dropped by --gc-sections.  The
# backend symbols that the kept code still names get a stub that aborts (a
# target that reached one fails the run), generated from the first link's
# errors.  shim.c and shim_adt.c stand in for the backend.
# request.c is linked for its failure texts; its request loop, EwRequest, is
# never called: --wrap sends jsonrpc.c's follow-up requests to fuzz_rpc.c's
# __wrap_EwRequest, which aborts (the targets' scans send one request each).
link() {
	"$CC" "${FLAGS[@]}" -Wl,--gc-sections -Wl,--wrap=EwRequest -o "$OUT" \
		"$HERE/fuzz_decode.c" "$HERE/fuzz_rpc.c" "$ROOT/decode.c" "$ROOT/jsonmem.c" "$ROOT/jsonfast.c" "$ROOT/hexnum.c" "$ROOT/catalog.c" \
		"$ROOT/option.c" "$ROOT/transport.c" "$ROOT/jsonrpc.c" "$ROOT/rpcanswers.c" "$ROOT/rpcerrors.c" "$ROOT/request.c" \
		"$HERE/shim.c" "$HERE/shim_adt.c" "$@" "$PGPORT" -lcurl -ljansson
}
STUBS=$(mktemp --suffix=.c)
trap 'rm -f "$STUBS"' EXIT
if ! link 2>"$STUBS.err"; then
	sed -n "s/.*undefined reference to \`\([A-Za-z_][A-Za-z0-9_]*\)'.*/\1/p" "$STUBS.err" | sort -u |
		awk '{ printf "void %s(void);\nvoid %s(void) { __builtin_trap(); }\n", $1, $1 }' >"$STUBS"
	[ -s "$STUBS" ] || { cat "$STUBS.err" >&2; rm -f "$STUBS.err"; exit 1; }
	rm -f "$STUBS.err"
	link "$STUBS"
fi
rm -f "$STUBS.err"
