#!/usr/bin/env bash
# test/valgrind.sh - run the wrapper's scans and faults in a single-user
# backend under valgrind memcheck and fail on any error report.
#
#   EW_CSV_ENDPOINT=... EW_FAULT_ENDPOINT=... test/valgrind.sh [WORKDIR]
#
# Needs the installed extension and the two test servers of test/run (the
# CSV one and the one with test/faults.json).  A single-user backend keeps
# the run to one process, so memcheck sees every line of the wrapper that
# runs, with --leak-check=full: a definite or indirect leak is an error.
# test/valgrind.supp suppresses only what PostgreSQL itself and the global
# libcurl/OpenSSL initialisation do (one reason per entry).  The output of
# every statement must equal test/valgrind.expected (EW_VALGRIND_ACCEPT=1
# rewrites it).  Exits 0 when both hold, 1 otherwise; prints the log path.
set -euo pipefail
: "${EW_CSV_ENDPOINT:?set EW_CSV_ENDPOINT (run the servers as test/run does)}"
: "${EW_FAULT_ENDPOINT:?set EW_FAULT_ENDPOINT}"
BINDIR=${EW_PG_BINDIR:-/usr/lib/postgresql/15/bin}
WORK=${1:-$(mktemp -d /tmp/ethwhale-valgrind.XXXXXX)}
OSUSER=${EW_PG_OSUSER:-postgres}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$WORK"
chmod 777 "$WORK"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$OSUSER" -- "$@"; else "$@"; fi; }

rm -rf "$WORK/data"
as_pg "$BINDIR/initdb" -D "$WORK/data" -U postgres --auth=trust >"$WORK/initdb.log" 2>&1
echo "timezone = 'UTC'" >>"$WORK/data/postgresql.conf"


# One statement per paragraph (postgres --single -j).
# The same servers' JSON-RPC (at / instead of /graphql) for the JSON-RPC node API.
# The fault servers ask for gzip (compression 'gzip'): on loopback the default
# asks for none, and the gzip bomb and bad-gzip faults are about gzipped answers.
sed -e "s#@CSV@#$EW_CSV_ENDPOINT#" -e "s#@FAULT@#$EW_FAULT_ENDPOINT#" \
	-e "s#@CSVRPC@#${EW_CSV_ENDPOINT%/graphql}/#" -e "s#@FAULTRPC@#${EW_FAULT_ENDPOINT%/graphql}/#" >"$WORK/script.sql" <<'SQL'
CREATE EXTENSION ethwhale_fdw;

CREATE SERVER csv FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint '@CSV@', batch_blocks '100');

CREATE SERVER faulty FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint '@FAULT@', batch_blocks '10', max_retries '1', timeout_ms '5000', max_response_mb '1', compression 'gzip');

CREATE SCHEMA c;

CREATE SCHEMA f;

IMPORT FOREIGN SCHEMA ethereum FROM SERVER csv INTO c;

IMPORT FOREIGN SCHEMA ethereum FROM SERVER faulty INTO f;

INSERT INTO ethwhale.eth_usd VALUES ('2015-11-06', 0.9);

SELECT count(*), sum(value), sum(value_eth), sum(value_usd), max(input_selector), count(to_address), max(block_time) FROM c.eth_tx WHERE block BETWEEN 500000 AND 501000;

EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*), sum(value), sum(value_eth), sum(value_usd), max(input_selector), count(to_address), max(block_time) FROM c.eth_tx WHERE block BETWEEN 500000 AND 501000;

SELECT count(*), max(hash), max(parent_hash), max(miner), sum(gas_used), sum(tx_count), max(timestamp) FROM c.eth_block WHERE number BETWEEN 500000 AND 501000;

SELECT count(*), max(status), sum(gas_used), max(created_contract) FROM c.eth_tx WHERE block IN (17173049, 17173050);

SELECT count(*), sum(value_usd) FROM c.eth_tx WHERE block BETWEEN 500000 AND 501000 AND value_eth > 10 AND value_usd < 100000;

SELECT block, hash FROM c.eth_tx ORDER BY block DESC LIMIT 5;

SELECT * FROM c.eth_tx WHERE hash = (SELECT max(hash) FROM c.eth_tx WHERE block = 500002);

SELECT count(*) FROM f.eth_block WHERE number BETWEEN 1000 AND 1009;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1010 AND 1019;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1020 AND 1029;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1030 AND 1039;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1040 AND 1049;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1050 AND 1059;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1060 AND 1069;

SELECT max(gas_used) FROM f.eth_block WHERE number BETWEEN 1070 AND 1079;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1080 AND 1089;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1100 AND 1109;

SELECT count(*), sum(gas_used), sum(value) FROM f.eth_tx WHERE block BETWEEN 1200 AND 1299;

SELECT count(*) FROM f.eth_block WHERE number BETWEEN 1400 AND 1409;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1410 AND 1419;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1420 AND 1429;

SELECT sum(gas_used) FROM f.eth_block WHERE number BETWEEN 1430 AND 1439;

SELECT count(*) FROM f.eth_tx WHERE block BETWEEN 1440 AND 1449;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1450 AND 1459;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1460 AND 1469;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1470 AND 1479;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1480 AND 1489;

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1490 AND 1499;

SET statement_timeout = '2s';

SELECT max(hash) FROM f.eth_block WHERE number BETWEEN 1090 AND 1099;

RESET statement_timeout;

SELECT count(*), count(DISTINCT hash) FROM f.eth_block WHERE number BETWEEN 1 AND 50;

SELECT count(*), sum(amount), sum(amount_usd), max(tx_hash), max(from_address), max(to_address), max(block_time) FROM c.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050;

SELECT count(*) FROM c.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050 AND token = '0xdac17f958d2ee523a2206206994597c13d831ec7' AND to_address = ANY(ARRAY['0x28c6c06298d514db089934071355e5743bf21d60', 'x']) AND amount_usd > 10;

SELECT count(*), bool_and(is_contract), sum(code_size), sum(balance_eth), max(nonce) FROM c.eth_account WHERE address = ANY(ARRAY(SELECT DISTINCT token FROM c.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050));

SELECT count(*) FROM c.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050 AND from_address = ANY(ARRAY(SELECT '0x' || lpad(to_hex(g), 40, '0') FROM generate_series(1, 10001) g));

DO $$ BEGIN IF NOT ethwhale.own_transaction() THEN RAISE EXCEPTION 'a DO block may commit'; END IF; END $$;

SELECT address, block, balance FROM c.eth_account WHERE address = '0xdac17f958d2ee523a2206206994597c13d831ec7' AND block BETWEEN 17173049 AND 17173050;

ALTER SERVER csv OPTIONS (ADD concurrency '4');

SELECT count(*), sum(value) FROM c.eth_tx WHERE block BETWEEN 500000 AND 501000;

SELECT block FROM c.eth_tx WHERE block BETWEEN 500000 AND 501000 LIMIT 2;

ALTER SERVER faulty OPTIONS (ADD concurrency '3');

SELECT count(*) FROM f.eth_block WHERE number BETWEEN 1000 AND 1049;

SELECT count(*) FROM f.eth_block WHERE number BETWEEN 1 AND 50;

CREATE SERVER csvrpc FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint '@CSVRPC@', batch_blocks '100');

CREATE SERVER faultyrpc FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint '@FAULTRPC@', batch_blocks '10', max_retries '1', timeout_ms '5000', max_response_mb '1', compression 'gzip');

CREATE SCHEMA r;

CREATE SCHEMA fr;

IMPORT FOREIGN SCHEMA ethereum FROM SERVER csvrpc INTO r;

IMPORT FOREIGN SCHEMA ethereum FROM SERVER faultyrpc INTO fr;

SELECT count(*), sum(value), sum(value_eth), sum(value_usd), max(input_selector), count(to_address), max(block_time) FROM r.eth_tx WHERE block BETWEEN 500000 AND 501000;

SELECT count(*), max(hash), max(parent_hash), max(miner), sum(gas_used), sum(tx_count), max(timestamp) FROM r.eth_block WHERE number BETWEEN 500000 AND 501000;

SELECT count(*) FROM r.eth_tx WHERE block BETWEEN 500000 AND 501000;

SELECT count(*), max(status), sum(gas_used), max(created_contract) FROM r.eth_tx WHERE block IN (17173049, 17173050);

SELECT block, hash FROM r.eth_tx ORDER BY block DESC LIMIT 5;

SELECT * FROM r.eth_tx WHERE hash = (SELECT max(hash) FROM r.eth_tx WHERE block = 500002);

SELECT count(*), sum(amount), sum(amount_usd), max(tx_hash), max(from_address), max(to_address), max(block_time) FROM r.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050;

SELECT count(*) FROM r.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050 AND token = '0xdac17f958d2ee523a2206206994597c13d831ec7' AND to_address = ANY(ARRAY['0x28c6c06298d514db089934071355e5743bf21d60', 'x']) AND amount_usd > 10;

SELECT count(*), max(x.gas_used), max(x.status) FROM r.eth_token_transfer t JOIN r.eth_tx x ON x.hash = t.tx_hash WHERE t.block BETWEEN 17173049 AND 17173050;

SELECT count(*), bool_and(is_contract), sum(code_size), sum(balance_eth), max(nonce) FROM r.eth_account WHERE address = ANY(ARRAY(SELECT DISTINCT token FROM r.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050));

SELECT address, block, balance FROM r.eth_account WHERE address = '0xdac17f958d2ee523a2206206994597c13d831ec7' AND block BETWEEN 17173049 AND 17173050;

SELECT count(*) FROM fr.eth_block WHERE number BETWEEN 1000 AND 1009;

SELECT max(hash) FROM fr.eth_block WHERE number BETWEEN 1020 AND 1029;

SELECT max(hash) FROM fr.eth_block WHERE number BETWEEN 1030 AND 1039;

SELECT max(hash) FROM fr.eth_block WHERE number BETWEEN 1040 AND 1049;

SELECT max(hash) FROM fr.eth_block WHERE number BETWEEN 1050 AND 1059;

SELECT max(gas_used) FROM fr.eth_block WHERE number BETWEEN 1070 AND 1079;

SELECT count(*), sum(gas_used), sum(value) FROM fr.eth_tx WHERE block BETWEEN 1200 AND 1299;

SELECT max(hash) FROM fr.eth_block WHERE number BETWEEN 1410 AND 1419;

SELECT max(hash) FROM fr.eth_block WHERE number BETWEEN 1460 AND 1469;

ALTER SERVER csvrpc OPTIONS (ADD concurrency '4');

SELECT count(*), sum(value) FROM r.eth_tx WHERE block BETWEEN 500000 AND 501000;

SELECT count(*), sum(amount) FROM r.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050;

SELECT ethwhale.node_chain_id('csv'), ethwhale.node_chain_id('csvrpc');

SELECT ethwhale.node_chain_id('faulty');

SELECT ethwhale.node_chain_id('nosuchserver');
SQL
cp "$(dirname "$0")/valgrind.supp" "$WORK/supp"
chmod 644 "$WORK/script.sql" "$WORK/supp"

(cd "$WORK" && as_pg valgrind --trace-children=no --error-exitcode=99 --track-origins=yes \
	--leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
	--num-callers=30 --suppressions="$WORK/supp" --log-file="$WORK/valgrind.log" \
	"$BINDIR/postgres" --single -j -D "$WORK/data" postgres <"$WORK/script.sql" >"$WORK/out.txt" 2>&1) || rc=$?
rc=${rc:-0}
errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$WORK/valgrind.log" | tail -n 1)
definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$WORK/valgrind.log" | tail -n 1 | tr -d ,)
echo "valgrind: ${errors:-?} errors, ${definite:-0} bytes definitely lost; log $WORK/valgrind.log, output $WORK/out.txt"
# Every statement's answer is compared, not one: the output (with the
# backend's per-run lines removed) must equal test/valgrind.expected.
sed -E -e 's/^(backend> )+//' -e 's/^[0-9-]+ [0-9:.]+ UTC \[[0-9]+\] //' -e '/^PostgreSQL stand-alone backend/d' \
	"$WORK/out.txt" | grep -vE '^\s*$|^backend> |^(LOG|STATEMENT|CONTEXT|DETAIL|HINT): ' \
	| grep -E '^\s*[0-9]+: |^ERROR: ' >"$WORK/got.txt" || true
expected="$(dirname "$0")/valgrind.expected"
if [ "${EW_VALGRIND_ACCEPT:-0}" = 1 ]; then
	cp "$WORK/got.txt" "$expected"
fi
if ! diff -u "$expected" "$WORK/got.txt" >"$WORK/output.diff"; then
	echo "the backend's output differs from test/valgrind.expected:" >&2
	head -n 80 "$WORK/output.diff" >&2
	exit 1
fi
if [ "$rc" != 0 ] || [ "${errors:-1}" != 0 ]; then
	grep -A25 'definitely lost in\|Invalid \|uninitialised' "$WORK/valgrind.log" | head -n 120 >&2 || true
	exit 1
fi
