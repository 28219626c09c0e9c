"""ethwhale.node_chain_id(server): the chain id of a server's node, asked over
the server's API (GraphQL `{ chainID }`, JSON-RPC `eth_chainId`) the way a
scan asks: the same options, retries, SQLSTATEs and redaction.

- the id of two test servers started with --chain-id 8453 and 1, in one query
  and one request each, with the user mapping's credentials sent;
- a server that does not exist, or is not an ethwhale_fdw server: 42704 with
  a hint; a second wrapper made with ethwhale_fdw's handler is one;
- no USAGE on the server: 42501 (and with the grant it answers);
- an unreachable endpoint: HV00N after max_retries, like a scan;
- HTTP 503 retried, then HV000; a node error: HV000 naming the node's words;
- an answer without a chain id, or one that is not a hex quantity within
  bigint, or not JSON: HV004 naming the server and what was asked, with the
  answer, never retried; a secret the node echoes is redacted.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from conftest import api_endpoint, rpc_calls

CHAIN_ID = "SELECT ethwhale.node_chain_id(%s)"
SECRET = "s3cret-bearer-token-ab12"


def error_text(e: psycopg.Error) -> str:
    d = e.diag
    return "\n".join(x for x in (d.message_primary, d.message_detail, d.message_hint) if x)


def failing(pg, server: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(CHAIN_ID, (server,)).fetchone()
    return ei.value


def chain_requests(ctl) -> list[dict]:
    """The logged requests that asked for the chain id, of either API."""
    out = []
    for e in ctl.log():
        if e.get("path") == "/graphql":
            if "chainID" in (e.get("query") or ""):
                out.append(e)
        elif any(c.get("method") == "eth_chainId" for c in rpc_calls(e)):
            out.append(e)
    return out


def node_chain_id(ctl) -> int:
    """The test server's own eth_chainId: the truth."""
    return int(ctl.rpc("eth_chainId"), 16)


# --------------------------------------------------------------------------
# the answer


def test_chain_id_of_two_servers(pg, make_fdw, own_server, api):
    base = own_server("--generate", "20", "--seed", "3", "--chain-id", "8453")
    main = own_server("--generate", "20", "--seed", "3", "--chain-id", "1")
    a, b = make_fdw(base.endpoint), make_fdw(main.endpoint)
    pg.execute(sql.SQL("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (ADD bearer_token {})")
               .format(sql.Identifier(a.server), sql.Literal(SECRET)))
    for s in (base, main):
        s.control.clear_log()
    got = pg.execute("SELECT ethwhale.node_chain_id(%s), ethwhale.node_chain_id(%s)",
                     (a.server, b.server)).fetchone()
    assert got == (8453, 1)
    for s, auth in ((base, f"Bearer {SECRET}"), (main, None)):
        reqs = chain_requests(s.control)
        assert len(reqs) == 1, s.control.log()
        assert reqs[0]["path"] == ("/graphql" if api == "graphql" else "/"), reqs[0]
        assert reqs[0]["headers"].get("authorization") == auth, reqs[0]["headers"]
    # the function's type and properties, as the sync relies on them
    row = pg.execute("SELECT p.prorettype::regtype::text, p.provolatile, p.proisstrict, p.proparallel "
                     "FROM pg_proc p WHERE p.oid = 'ethwhale.node_chain_id(name)'::regprocedure").fetchone()
    assert row == ("bigint", "v", True, "u")
    assert pg.execute("SELECT ethwhale.node_chain_id(NULL)").fetchone() == (None,)


def test_chain_id_through_a_second_wrapper_of_the_handler(pg, own_server, api):
    """A wrapper is ethwhale_fdw's by its handler, not by its name."""
    srv = own_server("--generate", "5", "--chain-id", "10")
    tag = uuid.uuid4().hex[:8]
    fdw, server = f"ew_again_{tag}", f"ew_again_srv_{tag}"
    handler, validator = pg.execute(
        "SELECT fdwhandler::regproc::text, fdwvalidator::regproc::text "
        "FROM pg_foreign_data_wrapper WHERE fdwname = 'ethwhale_fdw'").fetchone()
    pg.execute(sql.SQL("CREATE FOREIGN DATA WRAPPER {} HANDLER {} VALIDATOR {}").format(
        sql.Identifier(fdw), sql.SQL(handler), sql.SQL(validator)))
    try:
        pg.execute(sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER {} OPTIONS (endpoint {})").format(
            sql.Identifier(server), sql.Identifier(fdw), sql.Literal(api_endpoint(srv.endpoint, api))))
        assert pg.execute(CHAIN_ID, (server,)).fetchone() == (10,)
    finally:
        pg.execute(sql.SQL("DROP FOREIGN DATA WRAPPER {} CASCADE").format(sql.Identifier(fdw)))


# --------------------------------------------------------------------------
# which servers, and who may ask


def test_unknown_server_is_undefined_object(pg):
    e = failing(pg, "ew_no_such_server")
    assert e.sqlstate == "42704", error_text(e)
    assert 'server "ew_no_such_server" does not exist or is not an ethwhale_fdw server' in e.diag.message_primary
    assert e.diag.message_hint and "CREATE SERVER ew_no_such_server FOREIGN DATA WRAPPER ethwhale_fdw" in e.diag.message_hint


def test_server_of_another_wrapper_is_undefined_object(pg):
    tag = uuid.uuid4().hex[:8]
    fdw, server = f"ew_other_{tag}", f"ew_other_srv_{tag}"
    pg.execute(sql.SQL("CREATE FOREIGN DATA WRAPPER {}").format(sql.Identifier(fdw)))
    try:
        pg.execute(sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER {}").format(
            sql.Identifier(server), sql.Identifier(fdw)))
        e = failing(pg, server)
        assert e.sqlstate == "42704", error_text(e)
        assert "is not an ethwhale_fdw server" in e.diag.message_primary
        assert e.diag.message_hint
    finally:
        pg.execute(sql.SQL("DROP FOREIGN DATA WRAPPER {} CASCADE").format(sql.Identifier(fdw)))


@pytest.fixture
def role(pg):
    name = f"ew_chain_{uuid.uuid4().hex[:8]}"
    pg.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
    pg.execute(sql.SQL("GRANT USAGE ON SCHEMA ethwhale TO {}").format(sql.Identifier(name)))
    yield name
    pg.execute("RESET ROLE")
    pg.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
    pg.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_without_usage_is_insufficient_privilege(pg, make_fdw, gen_endpoint, control, role, api):
    f = make_fdw(gen_endpoint)
    ctl = control(gen_endpoint)
    ctl.clear_log()
    pg.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    e = failing(pg, f.server)
    pg.execute("RESET ROLE")
    assert e.sqlstate == "42501", error_text(e)
    assert f"permission denied for foreign server {f.server}" in e.diag.message_primary
    assert "GRANT USAGE ON FOREIGN SERVER" in (e.diag.message_hint or "")
    assert not chain_requests(ctl), "a request was sent for a role without USAGE"
    # with USAGE (and no user mapping of its own: PUBLIC's is not needed) it answers
    pg.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER {} TO {}").format(
        sql.Identifier(f.server), sql.Identifier(role)))
    pg.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    try:
        assert pg.execute(CHAIN_ID, (f.server,)).fetchone() == (node_chain_id(ctl),)
    finally:
        pg.execute("RESET ROLE")


# --------------------------------------------------------------------------
# failures: those of a scan's requests


def test_unreachable_endpoint_is_hv00n(pg, make_fdw):
    f = make_fdw("http://127.0.0.1:1/graphql", max_retries=1, connect_timeout_ms=2000)
    e = failing(pg, f.server)
    text = error_text(e)
    assert e.sqlstate == "HV00N", text
    assert f'could not read the chain id from server "{f.server}": could not connect' in text
    assert "Tried 2 times (max_retries = 1)" in text, text


# (fault rule, SQLSTATE, words of the error, requests sent) with max_retries 2
FAILURES = {
    "http_503": ({"fault": "status", "status": 503}, "HV000", "HTTP 503", 3),
    "malformed": ({"fault": "malformed"}, "HV004", "malformed JSON", 1),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_failure_is_classed_like_a_scan(pg, make_fdw, fault, fault_endpoint, case):
    rule, sqlstate, words, tries = FAILURES[case]
    f = make_fdw(fault_endpoint, max_retries=2)
    fault.set_faults([rule])
    e = failing(pg, f.server)
    text = error_text(e)
    assert e.sqlstate == sqlstate, text
    assert f'could not read the chain id from server "{f.server}": {words}' in text, text
    assert ("Tried 3 times" in text) == (tries == 3), text
    assert len(chain_requests(fault)) == tries


def test_node_error_is_hv000(pg, make_fdw, fault, fault_endpoint, api):
    f = make_fdw(fault_endpoint, max_retries=2)
    if api == "graphql":
        body = '{"errors":[{"message":"ethwhale: no chain here"}],"data":null}'
    else:
        body = ('{"jsonrpc":"2.0","id":10,"error":{"code":-32601,'
                '"message":"ethwhale: no chain here"}}')
    fault.set_faults([{"fault": "status", "status": 200, "body": body}])
    e = failing(pg, f.server)
    text = error_text(e)
    assert e.sqlstate == "HV000", text
    assert "the chain id" in text and "ethwhale: no chain here" in text, text
    assert len(chain_requests(fault)) == 1, "a node's error is not retried"


def _answer(api: str, value: str | None) -> str:
    """An answer body whose chain id is value (JSON text), or has none."""
    if api == "graphql":
        return '{"data":{}}' if value is None else '{"data":{"chainID":%s}}' % value
    # id 10: the call's id (EW_RPC_CHAIN_ID of call 0)
    return ('{"jsonrpc":"2.0","id":10,"result":null}' if value is None
            else '{"jsonrpc":"2.0","id":10,"result":%s}' % value)


BAD_ANSWERS = {
    "none": (None, "the answer has no"),
    "not_hex": ('"zz"', "is not a hex quantity within bigint"),
    "decimal": ('"8453"', "is not a hex quantity within bigint"),
    "empty_hex": ('"0x"', "is not a hex quantity within bigint"),
    "number": ("8453", "is not a hex quantity within bigint"),
    "huge": ('"0x' + "f" * 80 + '"', "is not a hex quantity within bigint"),
    "over_bigint": ('"0x8000000000000000"', "is not a hex quantity within bigint"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
def test_bad_answer_is_hv004(pg, make_fdw, fault, fault_endpoint, api, case):
    value, words = BAD_ANSWERS[case]
    f = make_fdw(fault_endpoint, max_retries=2)
    fault.set_faults([{"fault": "status", "status": 200, "body": _answer(api, value)}])
    e = failing(pg, f.server)
    text = error_text(e)
    assert e.sqlstate == "HV004", text
    asked = "chainID" if api == "graphql" else "eth_chainId"
    assert f'could not read the chain id from server "{f.server}"' in e.diag.message_primary, text
    assert words in e.diag.message_primary and asked in e.diag.message_primary, text
    assert e.diag.message_detail and e.diag.message_detail.startswith("Answer: "), text
    if value is not None:
        assert value.strip('"')[:40] in e.diag.message_detail, text
    assert len(chain_requests(fault)) == 1, "an answer that is not what was asked is not retried"


def test_largest_bigint_chain_id_is_read(pg, make_fdw, fault, fault_endpoint, api):
    f = make_fdw(fault_endpoint)
    fault.set_faults([{"fault": "status", "status": 200, "body": _answer(api, '"0x7fffffffffffffff"')}])
    assert pg.execute(CHAIN_ID, (f.server,)).fetchone() == (2**63 - 1,)


def test_echoed_secret_is_redacted(pg, make_fdw, fault, fault_endpoint, api):
    f = make_fdw(fault_endpoint)
    pg.execute(sql.SQL("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (ADD bearer_token {})")
               .format(sql.Identifier(f.server), sql.Literal(SECRET)))
    fault.set_faults([{"fault": "status", "status": 200,
                       "body": _answer(api, '"%s"' % SECRET)}])
    e = failing(pg, f.server)
    text = error_text(e)
    assert e.sqlstate == "HV004", text
    assert SECRET not in text, text


def test_errors_leave_the_backend_usable(pg, make_fdw, fault, fault_endpoint, api):
    """After many failed calls in one session (memory and the cached handle),
    the next call and a scan still work."""
    f = make_fdw(fault_endpoint, max_retries=0)
    fault.set_faults([{"fault": "status", "status": 200, "body": _answer(api, '"zz"')}])
    for _ in range(20):
        failing(pg, f.server)
    fault.clear_faults()
    want = node_chain_id(fault)
    assert pg.execute(CHAIN_ID, (f.server,)).fetchone() == (want,)
    assert pg.execute(f"SELECT count(*) FROM {f.t('eth_block')} WHERE number BETWEEN 1 AND 3").fetchone() == (3,)
