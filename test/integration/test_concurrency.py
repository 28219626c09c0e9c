"""Concurrent range scans (issue 4: "concurrency requests in flight (curl
multi), results returned in block order; memory still bounded").

With the server option concurrency > 1 an ascending range scan keeps that
many chunk requests in flight.  These tests prove, from the test server's
request log and from the rows, that requests really overlap, that the rows
are exactly those and in exactly the order of a sequential scan, and that
retries, failures, cancels and early ends (LIMIT) leave the backend healthy
with no descriptors behind.  Each test runs over GraphQL and JSON-RPC (a
chunk is a blocks(from:, to:) document or a batch of eth_getBlockByNumber
calls; the test server logs the blocks either reads as its "range").
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import psycopg
import pytest

from conftest import backend_fds, block_entries, blocks_rule

QUERY = "SELECT block, tx_index, value FROM {t} WHERE block BETWEEN 100 AND 399"


def rule(fault: str, times: int | None = None, **params) -> dict:
    """A rule for the requests that read blocks of QUERY (not a head lookup)."""
    return blocks_rule(fault, 100, 399, times, **params)


def block_requests(ctl):
    return block_entries(ctl.log(), 100, 399)


def max_in_flight(entries) -> int:
    """Most requests the server was working on at one moment."""
    events = []
    for e in entries:
        start = datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
        events.append((start, 1))
        events.append((start + timedelta(milliseconds=e["ms"] or 0), -1))
    events.sort(key=lambda x: (x[0], x[1]))
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


@pytest.fixture
def pair(make_fdw, fault_endpoint, control):
    """A sequential and a concurrent server on the same (fault-free) chain."""
    ctl = control(fault_endpoint)
    ctl.clear_faults()
    seq = make_fdw(fault_endpoint, batch_blocks=20, max_retries=2, timeout_ms=10000)
    con = make_fdw(fault_endpoint, batch_blocks=20, max_retries=2, timeout_ms=10000, concurrency=4)
    ctl.clear_log()
    yield seq, con, ctl
    ctl.clear_faults()


def test_same_rows_in_the_same_order(pg, pair):
    seq, con, ctl = pair
    want = pg.execute(QUERY.format(t=seq.t("eth_tx"))).fetchall()
    assert len(want) > 10000
    ctl.clear_log()
    # the server answers slowly, so requests in flight overlap visibly
    ctl.set_faults([rule("latency", ms=150)])
    got = pg.execute(QUERY.format(t=con.t("eth_tx"))).fetchall()
    assert got == want
    reqs = block_requests(ctl)
    spans = sorted(tuple(r["range"]) for r in reqs)
    assert spans[0][0] == 100 and spans[-1][1] == 399
    assert all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:])), spans   # each block once
    assert max_in_flight(reqs) >= 3, "requests were not sent concurrently"


def test_explain_analyze_counts_requests(pg, pair):
    _, con, ctl = pair
    plan = "\n".join(r[0] for r in pg.execute(
        "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF) " + QUERY.format(t=con.t("eth_tx"))).fetchall())
    n = int(re.search(r"Requests: (\d+)", plan).group(1))
    assert n == len(block_requests(ctl)) and n >= 15, plan


def test_retry_inside_the_pipeline(pg, pair):
    seq, con, ctl = pair
    want = pg.execute(QUERY.format(t=seq.t("eth_tx"))).fetchall()
    ctl.set_faults([rule("status", status=503, times=3)])
    plan = "\n".join(r[0] for r in pg.execute(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + QUERY.format(t=con.t("eth_tx"))).fetchall())
    # the three 503s fired, and the scan retried exactly those three
    st, body = ctl._req("GET", "/control/faults")
    assert [r["_applied"] for r in (body["rules"] if isinstance(body, dict) else body)] == [3], body
    assert re.search(r"Retries: 3\b", plan), plan
    ctl.clear_faults()
    got = pg.execute(QUERY.format(t=con.t("eth_tx"))).fetchall()
    assert got == want
    # and the same rule, fired again, gives the same rows as without it
    ctl.set_faults([rule("status", status=503, times=3)])
    assert pg.execute(QUERY.format(t=con.t("eth_tx"))).fetchall() == want


def test_failure_in_flight_is_an_error_and_leaks_nothing(pg, pair):
    _, con, ctl = pair
    pid = pg.execute("SELECT pg_backend_pid()").fetchone()[0]
    pg.execute(QUERY.format(t=con.t("eth_tx"))).fetchall()           # warm the slots
    before = backend_fds(pid)
    for _ in range(30):
        ctl.set_faults([rule("status", status=503)])
        with pytest.raises(psycopg.Error) as e:
            pg.execute(QUERY.format(t=con.t("eth_tx"))).fetchall()
        assert "HTTP 503" in str(e.value) and con.server in str(e.value)
        ctl.clear_faults()
        # an ERROR in the middle of the pipeline, then a scan ended by LIMIT
        pg.execute(f"SELECT * FROM {con.t('eth_tx')} WHERE block BETWEEN 100 AND 399 LIMIT 3").fetchall()
    assert pg.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
    assert len(pg.execute(QUERY.format(t=con.t("eth_tx"))).fetchall()) > 10000
    # at most the concurrency's kept-alive sockets come and go
    assert backend_fds(pid) <= before + 4, (before, backend_fds(pid))


def test_hang_in_flight_is_cancelled(pg, pair):
    _, con, ctl = pair
    ctl.set_faults([rule("hang", times=100)])
    pg.execute("SET statement_timeout = '2s'")
    with pytest.raises(psycopg.errors.QueryCanceled):
        pg.execute(QUERY.format(t=con.t("eth_tx"))).fetchall()
    pg.execute("RESET statement_timeout")
    ctl.clear_faults()
    assert len(pg.execute(QUERY.format(t=con.t("eth_tx"))).fetchall()) > 10000


def test_join_of_two_concurrent_scans(pg, pair):
    """Two scans of one query on one server hold slots of their own."""
    seq, con, _ = pair
    n = pg.execute(
        f"SELECT count(*) FROM {con.t('eth_block')} b JOIN {con.t('eth_tx')} t ON t.block = b.number "
        "WHERE b.number BETWEEN 100 AND 399 AND t.block BETWEEN 100 AND 399").fetchone()[0]
    want = pg.execute(f"SELECT count(*) FROM {seq.t('eth_tx')} WHERE block BETWEEN 100 AND 399").fetchone()[0]
    assert n == want
