"""The HTTP transport of a backend: one reused connection per server, no
file descriptors or memory left behind by thousands of queries, failing or
not (issue 3: "keep-alive, no fd leak across thousands of queries").

The backend's open descriptors are counted in /proc, which test/run can read
because the cluster runs on the same machine.  Both tests run over GraphQL
and JSON-RPC (one HTTP connection either way).
"""

from __future__ import annotations


import psycopg
import pytest

from conftest import backend_fds, backend_status_kb, backend_tcp_connections, blocks_rule, node_error_rule


def tcp_connections_to(pid: int, port: int) -> int:
    """Established TCP connections of the backend to the given local port."""
    return len(backend_tcp_connections(pid, port))


def test_many_queries_reuse_one_connection(pg, make_fdw, gen_endpoint):
    f = make_fdw(gen_endpoint, batch_blocks=5)
    pid = pg.execute("SELECT pg_backend_pid()").fetchone()[0]
    port = int(gen_endpoint.split(":")[2].split("/")[0])
    q = f"SELECT count(*) FROM {f.t('eth_block')} WHERE number BETWEEN %s AND %s"
    pg.execute(q, (1, 20)).fetchone()
    fds0 = backend_fds(pid)
    rss0 = backend_status_kb(pid, "VmRSS")
    for i in range(1000):
        lo = 1 + (i * 7) % 1900
        (n,) = pg.execute(q, (lo, lo + 9)).fetchone()
        assert n == 10
    assert backend_fds(pid) <= fds0, "the backend holds more descriptors after 1000 queries"
    # exactly one: kept alive and reused (0 would mean it is not kept at
    # all, and "<= 1" passed then too)
    assert tcp_connections_to(pid, port) == 1, "not exactly one kept-alive connection to the node"
    # 2000 requests; growth in the tens of MB would be a leak per request
    # 2000 requests: a leak of even 10 kB per request would add 20 MB
    assert backend_status_kb(pid, "VmRSS") - rss0 < 20_000


def test_failing_queries_leak_no_descriptors(pg, make_fdw, fault_endpoint, control):
    ctl = control(fault_endpoint)
    ctl.clear_faults()
    f = make_fdw(fault_endpoint, max_retries=0, batch_blocks=10)
    pid = pg.execute("SELECT pg_backend_pid()").fetchone()[0]
    q = f"SELECT max(hash) FROM {f.t('eth_block')} WHERE number BETWEEN 100 AND 109"
    pg.execute(q).fetchone()
    fds0 = backend_fds(pid)
    kinds = [{"fault": "malformed"}, {"fault": "truncated"}, {"fault": "reset"},
             node_error_rule(f.api, "ethwhale leak test"), {"fault": "status", "status": 500}]
    try:
        for i in range(200):
            ctl.set_faults([blocks_rule(lo=100, hi=109, **kinds[i % len(kinds)])])
            with pytest.raises(psycopg.Error):
                pg.execute(q).fetchone()
    finally:
        ctl.clear_faults()
    assert pg.execute(q).fetchone()[0] is not None
    assert backend_fds(pid) <= fds0 + 1, "failing requests left descriptors open"


@pytest.mark.parametrize("compression,sent", [
    (None, None),            # auto: none on a loopback endpoint (the test servers')
    ("auto", None),
    ("none", None),
    ("gzip", "gzip"),
])
def test_compression_option_decides_accept_encoding(pg, make_fdw, gen_endpoint, control, compression, sent):
    """The server option compression: gzip asks for gzipped answers
    (Accept-Encoding), none and auto on loopback ask for none; the rows are
    the same either way."""
    opts = {} if compression is None else {"compression": compression}
    f = make_fdw(gen_endpoint, **opts)
    ctl = control(gen_endpoint)
    ctl.clear_log()
    q = f"SELECT count(*), sum(value), max(hash) FROM {f.t('eth_tx')} WHERE block BETWEEN 1 AND 20"
    got = pg.execute(q).fetchone()
    reqs = [e for e in ctl.log() if e.get("path") in ("/graphql", "/")]
    assert reqs
    for e in reqs:
        enc = e["headers"].get("accept-encoding")
        if sent is None:
            assert enc is None, f"Accept-Encoding {enc!r} sent with compression {compression}"
        else:
            assert enc is not None and sent in enc, f"Accept-Encoding {enc!r} with compression {compression}"
    plain = make_fdw(gen_endpoint, compression="gzip" if sent is None else "none")
    assert pg.execute(q.replace(f.t("eth_tx"), plain.t("eth_tx"))).fetchone() == got
