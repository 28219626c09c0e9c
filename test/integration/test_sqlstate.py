"""Each failure class of a request ends in the SQLSTATE a client can act on
(README.md, "Errors"), and a changed server or user mapping renews the
backend's HTTP connections.

| class                                   | SQLSTATE | retried |
|-----------------------------------------|----------|---------|
| node unreachable, TLS, reset, time-out  | HV00N    | transient ones, up to max_retries |
| an error the node answered (HTTP, GraphQL) | HV000 | 429/5xx only |
| an answer that is not what was asked    | HV004    | no |
| an answer over max_response_mb          | 54000    | shrinks to one block first |
| a cancel                                | 57014    | no (test_faults.py) |

Every case checks that the fault really fired (the test server's log) and
how many times the request was sent, so a wrong class cannot pass by luck.
Each runs over GraphQL and JSON-RPC (a node error: a GraphQL error, or a
JSON-RPC error object naming the call).
"""

from __future__ import annotations

import psycopg
import pytest

from conftest import backend_tcp_connections, block_entries, node_error_rule

QUERY = "SELECT count(*), max(hash) FROM {t} WHERE number BETWEEN 100 AND 199"
MAX_RETRIES = 2
BLOCKS = {"blocks": [100, 199]}      # match.blocks of the rules: the requests of QUERY


def error_text(e: psycopg.Error) -> str:
    d = e.diag
    return "\n".join(x for x in (d.message_primary, d.message_detail, d.message_hint) if x)


def failing(pg, sql: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(sql).fetchall()
    return ei.value


def faulted(ctl, kind: str) -> list[dict]:
    return block_entries(ctl.log(), 100, 199, kind)


# (fault rule params, server options, SQLSTATE, words of the message, tries)
# tries: how many requests the fault answered: 1 = not retried,
# MAX_RETRIES + 1 = retried to the end, None = shrunk first (several).
CASES = {
    "http_503": ({"fault": "status", "status": 503}, {}, "HV000", "HTTP 503", MAX_RETRIES + 1),
    "http_404": ({"fault": "status", "status": 404}, {}, "HV000", "HTTP 404", 1),
    # (the rule and words of "node_error" are node_error_rule's, per API)
    "node_error": (None, {}, "HV000", None, 1),
    "geth_timeout": ({"fault": "timeout200"}, {}, "HV000", "request timed out", None),
    "malformed": ({"fault": "malformed"}, {}, "HV004", "malformed JSON", 1),
    "reset": ({"fault": "reset"}, {}, "HV00N", "connection reset", MAX_RETRIES + 1),
    "empty": ({"fault": "drop"}, {}, "HV00N", "empty reply", MAX_RETRIES + 1),
    "oversize": ({"fault": "oversize", "mb": 3}, {"max_response_mb": 1}, "54000",
                 "max_response_mb", None),
    "hang": ({"fault": "hang"}, {"timeout_ms": 1000, "batch_blocks": 1}, "HV00N",
             "timed out after 1000 ms", MAX_RETRIES + 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_failure_class_sqlstate(pg, make_fdw, fault, fault_endpoint, case, api):
    rule, options, sqlstate, words, tries = CASES[case]
    words = [words]
    if case == "node_error":
        rule = node_error_rule(api, "ethwhale: execution aborted")
        words = {"graphql": ["GraphQL error: ethwhale: execution aborted"],
                 "jsonrpc": ["ethwhale: execution aborted", "eth_getBlockByNumber"]}[api]
    opts = {"max_retries": MAX_RETRIES, "timeout_ms": 10000, "batch_blocks": 100, **options}
    f = make_fdw(fault_endpoint, **opts)
    fault.set_faults([{"match": BLOCKS, "times": 1000, **rule}])
    e = failing(pg, QUERY.format(t=f.t("eth_block")))
    text = error_text(e)
    assert e.sqlstate == sqlstate, f"{case}: SQLSTATE {e.sqlstate}, expected {sqlstate}:\n{text}"
    for w in words:
        assert w in text, f"{case}: the error should say {w!r}:\n{text}"
    assert f.server in text, text
    hits = faulted(fault, rule["fault"])
    if tries is None:
        # shrunk down to one block, then that block's request was retried
        spans = {tuple(h["range"]) for h in hits}
        assert (100, 199) in spans and any(a == b for a, b in spans), \
            f"{case}: expected the chunk halved down to one block, saw {sorted(spans)}"
    else:
        assert len(hits) == tries, \
            f"{case}: the fault answered {len(hits)} requests, expected {tries}"
    # the same backend goes on: a healthy range still reads
    fault.clear_faults()
    assert pg.execute(QUERY.format(t=f.t("eth_block"))).fetchone()[0] == 100


def test_missing_field_is_hv004(pg, make_fdw, fault, fault_endpoint):
    f = make_fdw(fault_endpoint, max_retries=MAX_RETRIES, timeout_ms=10000, batch_blocks=100)
    fault.set_faults([{"match": BLOCKS, "times": 1000, "fault": "missingFields",
                       "fields": ["hash"]}])
    e = failing(pg, QUERY.format(t=f.t("eth_block")))
    text = error_text(e)
    assert 'field "hash" is missing' in text and f.server in text, text
    assert len(faulted(fault, "missingFields")) == 1, "not retried: the answer itself is wrong"
    assert e.sqlstate == "HV004", f"SQLSTATE {e.sqlstate}:\n{text}"


def test_unreachable_is_hv00n(pg, make_fdw):
    f = make_fdw("http://127.0.0.1:1/graphql", max_retries=0, connect_timeout_ms=2000)
    e = failing(pg, QUERY.format(t=f.t("eth_block")))
    assert e.sqlstate == "HV00N", error_text(e)
    assert "could not connect" in error_text(e)


def test_tls_failure_is_hv00n_and_not_retried(pg, make_fdw, fault, fault_endpoint):
    """https:// to a server that speaks plain HTTP: the handshake fails, and
    sending it again cannot help."""
    f = make_fdw(fault_endpoint.replace("http://", "https://"), max_retries=3)
    e = failing(pg, QUERY.format(t=f.t("eth_block")))
    text = error_text(e)
    assert e.sqlstate == "HV00N", text
    assert "TLS failure" in text and "Tried" not in text, text
    assert not fault.log(), "a TLS handshake reached the server as an HTTP request"


# --------------------------------------------------------------------------
# the connection cache follows catalog changes


def local_ports_to(pid: int, port: int) -> set[int]:
    """Local ports of the backend's established TCP connections to port."""
    return set(backend_tcp_connections(pid, port))


@pytest.mark.parametrize("change", ["server", "user mapping"])
def test_changed_options_renew_the_connection(pg, make_fdw, gen_endpoint, change):
    f = make_fdw(gen_endpoint, batch_blocks=10)
    pid = pg.execute("SELECT pg_backend_pid()").fetchone()[0]
    port = int(gen_endpoint.split(":")[2].split("/")[0])
    q = f"SELECT count(*) FROM {f.t('eth_block')} WHERE number BETWEEN 1 AND 10"
    assert pg.execute(q).fetchone()[0] == 10
    first = local_ports_to(pid, port)
    assert len(first) == 1, f"expected one kept-alive connection, saw {first}"
    assert pg.execute(q).fetchone()[0] == 10
    assert local_ports_to(pid, port) == first, "an unchanged server should reuse its connection"
    if change == "server":
        pg.execute(f"ALTER SERVER {f.server} OPTIONS (ADD connect_timeout_ms '3000')")
    else:
        pg.execute(f"ALTER USER MAPPING FOR CURRENT_USER SERVER {f.server} "
                   "OPTIONS (ADD headers 'X-Ethwhale-Test: 1')")
    assert pg.execute(q).fetchone()[0] == 10
    after = local_ports_to(pid, port)
    assert len(after) == 1 and after.isdisjoint(first), \
        f"after ALTER {change} the old connection {first} should be closed and a new one open: {after}"
