"""Shared fixtures for the ethwhale_fdw integration tests.

test/run starts a throwaway PostgreSQL cluster and the test servers
(test/geth-server: GraphQL at http://127.0.0.1:PORT/graphql, JSON-RPC at
http://127.0.0.1:PORT/, the same chain) and exports:

  PGHOST PGPORT PGUSER PGDATABASE   the cluster (libpq environment)
  EW_CSV_ENDPOINT                   server over the mainnet CSV files (ETHWHALE_DATA)
  EW_GEN_ENDPOINT                   generated chain, --generate 2000 --seed 42
  EW_FAULT_ENDPOINT                 generated chain with test/faults.json (pg_regress)
  EW_PYFAULT_ENDPOINT               generated chain, --seed 7, no preset faults:
                                    test_faults.py sets its rules at run time
  ETHWHALE_DATA                     directory with blocks.csv, txs.csv, ...
  GETH_BIN                          real geth binary, empty when unavailable
  EW_SERVER_TMPDIR                  [/tmp] where tests put files for server-side COPY
                                    (for a chroot's cluster: a path it sees too)
  EW_PG_MAJOR                       [15] the PostgreSQL major under test
  EW_PG_BINDIR, EW_PG_EXEC          the PostgreSQL under test's binaries, and the
                                    prefix to run them with ("chroot DIR" for the
                                    versions in chroots; empty for the host's)

  EW_APIS                           [graphql,jsonrpc] the node APIs to test
  EW_JSONRPC_HEAVY_MAJORS           [all] majors on which the heavy modules' [jsonrpc]
                                    variants run (see JSONRPC_HEAVY_MODULES)

Every test that makes a foreign server runs once per node API: the fixture
`api` is parametrised "graphql" / "jsonrpc" (test ids [graphql] / [jsonrpc]),
make_fdw uses it, and tests that create servers through SQL pass their
endpoint through api_endpoint().  A test that states a fact of one API only
is marked @pytest.mark.graphql_only("reason") or jsonrpc_only("reason"):
the other variant is deselected at collection (not skipped).

Helpers other test modules may import (``from conftest import ...``):
  Control            /control/* of a test server, and plain GraphQL / JSON-RPC requests
  api_endpoint       a test server's endpoint for one node API
  NodeRequest        what one logged request asked for, for either API
  parse_entry        a /control/log entry -> NodeRequest
  parse_request      what one logged GraphQL request asked for (GraphQL fields)
  merged_intervals   union of block ranges as sorted, merged [lo, hi] pairs
  block_entries      the log entries that read blocks in [lo, hi]
  node_error_rule    a fault rule for "the node answered an error", per API
  read_csv           rows of a CSV file in ETHWHALE_DATA as dicts
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    import psycopg
    from psycopg import sql
except ImportError:  # pragma: no cover - the venv always has it
    psycopg = None

REPO_ROOT = Path(__file__).resolve().parents[2]
# The PostgreSQL under test (test/run; a chroot's for 17 and 18): its client
# binaries, run as PG_EXEC + [PG_BINDIR / "psql", ...], and a directory its
# server reads files from (server-side COPY, ca_file) at the same path.
PG_BINDIR = Path(os.environ.get("EW_PG_BINDIR") or "/usr/lib/postgresql/15/bin")
PG_EXEC = shlex.split(os.environ.get("EW_PG_EXEC", ""))
SERVER_TMPDIR = os.environ.get("EW_SERVER_TMPDIR") or "/tmp"


# --------------------------------------------------------------------------
# the node API dimension

APIS = ("graphql", "jsonrpc")
_ONLY = {"graphql_only": "graphql", "jsonrpc_only": "jsonrpc"}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "graphql_only(reason): a fact of Geth's GraphQL (EIP-1767) alone; the "
        "[jsonrpc] variant is deselected")
    config.addinivalue_line(
        "markers", "jsonrpc_only(reason): a fact of the JSON-RPC API alone; the "
        "[graphql] variant is deselected")


def wanted_apis() -> set[str]:
    """EW_APIS (comma-separated; default both): the node APIs to test."""
    raw = os.environ.get("EW_APIS", "") or ",".join(APIS)
    apis = {a.strip() for a in raw.split(",") if a.strip()}
    bad = apis - set(APIS)
    if bad:
        raise pytest.UsageError(f"EW_APIS: unknown API {sorted(bad)} (one of {', '.join(APIS)})")
    return apis


# The modules whose [jsonrpc] variants are most of the JSON-RPC half's time
# (fault matrices, leak loops, sync, crash and reorg: about 9 of its 10
# minutes on PostgreSQL 15).  EW_JSONRPC_HEAVY_MAJORS (comma-separated
# majors; default: every major) names the PostgreSQL majors on which they
# run; on the others the [jsonrpc] variants of the rest still run (scans,
# pushdown, tokens, joins, truth, accounts, whales, test_jsonrpc.py), and the
# JSON-RPC code these modules exercise is the same C on every major.  A CI
# that must stay under its time budget sets EW_JSONRPC_HEAVY_MAJORS=15.
JSONRPC_HEAVY_MODULES = {"test_faults", "test_hostile", "test_concurrency", "test_transport",
                         "test_sqlstate", "test_sync"}


def jsonrpc_heavy_here() -> bool:
    raw = os.environ.get("EW_JSONRPC_HEAVY_MAJORS", "").strip()
    if not raw:
        return True
    return os.environ.get("EW_PG_MAJOR", "15") in {m.strip() for m in raw.split(",")}


# Modules whose tests make servers through make_fdw but whose JSON-RPC
# variants are not written yet: only their [graphql] variants run.
GRAPHQL_ONLY_MODULES = {
    "test_real_geth": "the real-Geth comparisons over JSON-RPC are written with that test file (issue 13)",
}


def pytest_collection_modifyitems(config, items):
    """Deselect (not skip) the variants a graphql_only / jsonrpc_only marker
    or EW_APIS rules out; a marker must give its reason."""
    wanted = wanted_apis()
    heavy_here = jsonrpc_heavy_here()
    keep, drop = [], []
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
        own_api_param = any("api" in [a.strip() for a in (m.args[0].split(",") if isinstance(m.args[0], str)
                                                            else m.args[0])]
                            for m in item.iter_markers("parametrize") if m.args)
        if module in GRAPHQL_ONLY_MODULES and not own_api_param:
            # the api fixture's variants; a test's own parametrize("api", ...) is its own
            item.add_marker(pytest.mark.graphql_only(GRAPHQL_ONLY_MODULES[module]))
        only = set()
        for name, api in _ONLY.items():
            for m in item.iter_markers(name):
                if not (m.args and isinstance(m.args[0], str) and m.args[0].strip()):
                    raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{name} needs a reason")
                only.add(api)
        if len(only) > 1:
            raise pytest.UsageError(f"{item.nodeid}: marked both graphql_only and jsonrpc_only")
        callspec = getattr(item, "callspec", None)
        api = callspec.params.get("api") if callspec else None
        if api is not None and (api not in wanted or (only and api not in only)
                                or (api == "jsonrpc" and module in JSONRPC_HEAVY_MODULES and not heavy_here)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(params=APIS)
def api(request) -> str:
    """The node API of this variant of the test: "graphql" or "jsonrpc"."""
    return request.param


def api_endpoint(endpoint: str, api: str) -> str:
    """The endpoint of a test server (given as its GraphQL URL) for one API:
    GraphQL at .../graphql, JSON-RPC at the same host's "/" (no `api` option
    needed: the wrapper picks JSON-RPC for a path that does not end in
    /graphql)."""
    if api == "graphql":
        return endpoint
    assert api == "jsonrpc", api
    m = re.match(r"^(https?://[^/]+)(/.*)?$", endpoint)
    assert m, endpoint
    path = m.group(2) or "/"
    if path.rstrip("/").endswith("/graphql"):
        path = path.rstrip("/")[: -len("graphql")]
    return m.group(1) + path


# --------------------------------------------------------------------------
# environment


def _endpoint(var: str) -> str:
    url = os.environ.get(var, "")
    if not url:
        pytest.skip(f"{var} is not set: run the tests through test/run")
    return url


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ.get("ETHWHALE_DATA") or REPO_ROOT.parent / "shared" / "data")
    if not (d / "txs.csv").is_file():
        pytest.skip(f"mainnet CSV data not found in {d} (set ETHWHALE_DATA)")
    return d


@pytest.fixture(scope="session")
def csv_endpoint() -> str:
    return _endpoint("EW_CSV_ENDPOINT")


@pytest.fixture(scope="session")
def gen_endpoint() -> str:
    return _endpoint("EW_GEN_ENDPOINT")


@pytest.fixture(scope="session")
def fault_endpoint() -> str:
    """A generated-chain server whose faults the tests set (never test/faults.json's)."""
    return _endpoint("EW_PYFAULT_ENDPOINT")


def backend_fds(pid: int) -> int:
    """Open descriptors of a backend (skips where /proc/PID/fd is not readable)."""
    # test/run starts the cluster on this machine: not seeing the backend
    # is broken set-up, and a leak test that cannot count must fail
    d = Path(f"/proc/{pid}/fd")
    if not d.is_dir():
        pytest.fail("cannot see the backend's /proc entry (cluster on another machine?)")
    try:
        return len(os.listdir(d))
    except PermissionError:
        pytest.fail("not allowed to read the backend's /proc/PID/fd")


def backend_status_kb(pid: int, field: str) -> int:
    """A kB figure of /proc/PID/status: VmRSS, or RssAnon (private anonymous
    memory, malloc'd and palloc'd, not shared buffers)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} line")


def backend_tcp_connections(pid: int, port: int) -> list[int]:
    """Local ports of the backend's established TCP connections to port
    (the backend's socket inodes looked up in /proc/net/tcp and tcp6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[2].split(":")[1], 16) == port and f[9] in inodes:
                ports.append(int(f[1].split(":")[1], 16))
    return ports


def request_variables(entry: dict) -> dict:
    """The GraphQL variables of a /control/log entry."""
    v = entry.get("variables") or {}
    return json.loads(v) if isinstance(v, str) else v


def read_csv(data_dir: Path, name: str) -> list[dict]:
    with open(data_dir / name, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------
# PostgreSQL


def _connect(**kw):
    if psycopg is None:
        pytest.fail("psycopg is not installed (run through test/run)")
    try:
        return psycopg.connect(autocommit=True, **kw)
    except psycopg.OperationalError as e:
        # a cluster that does not answer is a failure, never a skip
        pytest.fail(f"cannot connect to PostgreSQL with the libpq environment: {e}")


@pytest.fixture(scope="session")
def extension_ready():
    """CREATE EXTENSION ethwhale_fdw once; skip when it is not installed."""
    conn = _connect()
    try:
        row = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'ethwhale_fdw'"
        ).fetchone()
        if row is None:
            pytest.fail("extension ethwhale_fdw is not installed (make install did not run)")
        # A broken install script is a failure, not a skip.
        conn.execute("CREATE EXTENSION IF NOT EXISTS ethwhale_fdw")
    finally:
        conn.close()
    return True


@pytest.fixture
def pg(extension_ready):
    """An autocommit psycopg connection to the test cluster."""
    conn = _connect()
    try:
        yield conn
    finally:
        conn.close()


@dataclass
class Fdw:
    """A foreign server plus a schema holding its IMPORT FOREIGN SCHEMA tables."""

    server: str
    schema: str
    endpoint: str                # as set on the server (api_endpoint's)
    options: dict = field(default_factory=dict)
    api: str = "graphql"

    def t(self, table: str) -> str:
        """Qualified name of an imported foreign table, for SQL text."""
        return f"{self.schema}.{table}"


@pytest.fixture
def make_fdw(pg, api):
    """Factory: make_fdw(endpoint, node_api=None, **server_options) -> Fdw.

    Creates a server with a unique name, a user mapping for the current user,
    and a schema filled by IMPORT FOREIGN SCHEMA ethereum; drops them after
    the test.  `endpoint` is a test server's GraphQL URL (or any URL); the
    server gets api_endpoint(endpoint, node_api or the option api= or the
    test's `api`).
    """
    created: list[Fdw] = []

    def make(endpoint: str, node_api: str | None = None, **options) -> Fdw:
        tag = uuid.uuid4().hex[:10]
        # an explicit server option api= decides too (its endpoint is then the caller's)
        which = node_api or options.get("api") or api
        f = Fdw(server=f"ew_srv_{tag}", schema=f"ew_{tag}", endpoint=api_endpoint(endpoint, which),
                options={k: str(v) for k, v in options.items()}, api=which)
        endpoint = f.endpoint
        opts = {"endpoint": endpoint, **f.options}
        opt_sql = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in opts.items()
        )
        pg.execute(sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS ({})")
                   .format(sql.Identifier(f.server), opt_sql))
        created.append(f)
        pg.execute(sql.SQL("CREATE USER MAPPING FOR CURRENT_USER SERVER {}")
                   .format(sql.Identifier(f.server)))
        pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(f.schema)))
        pg.execute(sql.SQL("IMPORT FOREIGN SCHEMA ethereum FROM SERVER {} INTO {}")
                   .format(sql.Identifier(f.server), sql.Identifier(f.schema)))
        return f

    yield make

    for f in created:
        try:
            pg.execute("RESET ALL")
            pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(f.schema)))
            pg.execute(sql.SQL("DROP SERVER IF EXISTS {} CASCADE").format(sql.Identifier(f.server)))
        except psycopg.Error:
            # The connection may be broken by the test; clean up on a new one.
            with _connect() as c2:
                c2.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(f.schema)))
                c2.execute(sql.SQL("DROP SERVER IF EXISTS {} CASCADE").format(sql.Identifier(f.server)))


# --------------------------------------------------------------------------
# the test server's control API


class Control:
    """GET/DELETE /control/log, POST/DELETE /control/faults, GET /control/chain,
    POST/DELETE /control/rpc, and plain GraphQL and JSON-RPC requests, of one
    test server."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        m = re.match(r"^(https?://[^/]+)", endpoint)
        assert m, endpoint
        self.base = m.group(1)

    def _req(self, method: str, path: str, body=None, timeout: float = 10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw.strip() else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def log(self) -> list[dict]:
        status, body = self._req("GET", "/control/log")
        assert status == 200, (status, body)
        return body

    def clear_log(self) -> None:
        status, body = self._req("DELETE", "/control/log")
        assert status in (200, 204), (status, body)

    def set_faults(self, rules: list[dict]) -> None:
        status, body = self._req("POST", "/control/faults", rules)
        assert status in (200, 201, 204), (status, body)

    def clear_faults(self) -> None:
        status, body = self._req("DELETE", "/control/faults")
        assert status in (200, 204), (status, body)

    def chain(self) -> dict:
        status, body = self._req("GET", "/control/chain")
        assert status == 200, (status, body)
        return body

    def graphql(self, query: str, variables: dict | None = None):
        """POST a query the way a client would; returns (HTTP status, JSON body)."""
        return self._req("POST", "/graphql", {"query": query, "variables": variables or {}})

    def rpc(self, method: str, *params):
        """One JSON-RPC call at "/"; returns its result (an error fails)."""
        status, body = self._req("POST", "/", {"jsonrpc": "2.0", "id": 1, "method": method,
                                               "params": list(params)}, timeout=30)
        assert status == 200 and isinstance(body, dict) and "result" in body, (method, params, status, body)
        return body["result"]

    def set_rpc(self, **config) -> dict:
        """POST /control/rpc: the JSON-RPC profile and limits (profile=..., maxBatch=...)."""
        status, body = self._req("POST", "/control/rpc", config)
        assert status in (200, 201, 204), (status, body)
        return body

    def reset_rpc(self) -> None:
        """DELETE /control/rpc: back to the geth profile."""
        status, body = self._req("DELETE", "/control/rpc")
        assert status in (200, 204), (status, body)

    def head(self) -> int:
        status, body = self.graphql("{ block { number } }")
        assert status == 200, (status, body)
        return to_int(body["data"]["block"]["number"])

    def requests(self) -> list["NodeRequest"]:
        """The logged node requests (GraphQL and JSON-RPC), parsed."""
        return [parse_entry(e) for e in self.log() if e.get("query") or e.get("rpc")]


@pytest.fixture
def control():
    """control(endpoint) -> Control."""
    return Control


@pytest.fixture
def fault(pg, control, fault_endpoint):
    """The Control of the server whose faults the tests set, its rules and
    log cleared before and after the test."""
    ctl = control(fault_endpoint)
    ctl.clear_faults()
    ctl.clear_log()
    yield ctl
    ctl.clear_faults()
    ctl.clear_log()


# --------------------------------------------------------------------------
# what a logged request asked for


def to_int(v):
    """A GraphQL Long / BigInt / Int as Python int (hex string, decimal string or number)."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError(f"not an integer: {v!r}")
    if isinstance(v, (int, float)):
        return int(v)
    s = str(v).strip()
    return int(s, 16) if s.lower().startswith("0x") else int(s)


@dataclass
class GqlRequest:
    entry: dict
    ranges: list = field(default_factory=list)         # (from, to|None) of blocks(...)
    numbers: list = field(default_factory=list)        # block(number:) (None = head)
    block_hashes: list = field(default_factory=list)   # block(hash:)
    tx_hashes: list = field(default_factory=list)      # transaction(hash:)
    block_fields: set = field(default_factory=set)     # every field name under a Block
    tx_fields: set = field(default_factory=set)        # every field name under a Transaction
    root_fields: list = field(default_factory=list)    # names of the top-level fields
    accounts: list = field(default_factory=list)       # (address, block|None, {fields}) of account(address:)
    logs: list = field(default_factory=list)           # LogQuery of each logs(filter:)
    error: str | None = None                           # query text that did not parse

    @property
    def status(self):
        return self.entry.get("status")

    @property
    def fault(self):
        return self.entry.get("fault")


@dataclass
class LogQuery:
    """One log query: GraphQL logs(filter:) under blocks(from:, to:), or
    JSON-RPC eth_getLogs.  addresses: the address list sent (None: any);
    topics: one list per position, [] for "any", trailing "any"s dropped."""

    lo: int | None
    hi: int | None
    addresses: list | None
    topics: list


def _norm_topics(topics) -> list:
    """Topic positions as lists of lowercase hex ([] = any), trailing [] dropped."""
    out = []
    for t in topics or []:
        if t is None:
            out.append([])
        elif isinstance(t, str):
            out.append([t.lower()])
        else:
            out.append([str(x).lower() for x in t])
    while out and out[-1] == []:
        out.pop()
    return out


def _norm_addresses(a) -> list | None:
    if a is None:
        return None
    if isinstance(a, str):
        return [a.lower()]
    return [str(x).lower() for x in a]


_TX_FIELDS = {"transactions", "transactionAt", "transaction"}
# GraphQL transaction fields that need the receipt
_RECEIPT_FIELDS = {"status", "gasUsed", "cumulativeGasUsed", "effectiveGasPrice", "logs",
                   "createdContract", "rawReceipt", "blobGasUsed"}
_ACCOUNT_FIELDS = {"balance": "balance", "transactionCount": "nonce", "code": "code"}


def parse_request(entry: dict) -> GqlRequest:
    """Parse one /control/log entry with graphql-core and collect what it asks."""
    from graphql import parse
    from graphql.error import GraphQLSyntaxError
    from graphql.language import ast as g

    req = GqlRequest(entry=entry)
    variables = entry.get("variables") or {}
    if isinstance(variables, str):
        try:
            variables = json.loads(variables) or {}
        except ValueError:
            variables = {}
    try:
        doc = parse(entry["query"])
    except GraphQLSyntaxError as e:
        req.error = str(e)
        return req
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, g.FragmentDefinitionNode)}
    ops = [d for d in doc.definitions if isinstance(d, g.OperationDefinitionNode)]
    name = entry.get("operationName")
    if name:
        ops = [o for o in ops if o.name and o.name.value == name] or ops
    if not ops:
        return req
    op = ops[0]

    def value(node):
        if isinstance(node, g.VariableNode):
            return variables.get(node.name.value)
        if isinstance(node, g.IntValueNode):
            return int(node.value)
        if isinstance(node, g.FloatValueNode):
            return float(node.value)
        if isinstance(node, (g.StringValueNode, g.EnumValueNode)):
            return node.value
        if isinstance(node, g.BooleanValueNode):
            return node.value
        if isinstance(node, g.NullValueNode):
            return None
        if isinstance(node, g.ListValueNode):
            return [value(v) for v in node.values]
        if isinstance(node, g.ObjectValueNode):
            return {f.name.value: value(f.value) for f in node.fields}
        return None

    def fields(selection_set):
        if selection_set is None:
            return
        for sel in selection_set.selections:
            if isinstance(sel, g.FieldNode):
                yield sel
            elif isinstance(sel, g.InlineFragmentNode):
                yield from fields(sel.selection_set)
            elif isinstance(sel, g.FragmentSpreadNode) and sel.name.value in frags:
                yield from fields(frags[sel.name.value].selection_set)

    def all_names(selection_set, out: set):
        for f in fields(selection_set):
            out.add(f.name.value)
            all_names(f.selection_set, out)

    def args_of(f):
        return {a.name.value: value(a.value) for a in f.arguments}

    def block_sel(selection_set, lo=None, hi=None, number=None):
        for f in fields(selection_set):
            n = f.name.value
            if n in _TX_FIELDS:
                req.block_fields.add(n)
                all_names(f.selection_set, req.tx_fields)
            elif n == "account":
                req.block_fields.add(n)
                sub = set()
                all_names(f.selection_set, sub)
                addr = args_of(f).get("address")
                req.accounts.append((str(addr).lower(), number,
                                     {_ACCOUNT_FIELDS[x] for x in sub if x in _ACCOUNT_FIELDS}))
            else:
                req.block_fields.add(n)
                all_names(f.selection_set, req.block_fields)
                if n == "logs":
                    flt = args_of(f).get("filter") or {}
                    req.logs.append(LogQuery(
                        lo if flt.get("fromBlock") is None else to_int(flt["fromBlock"]),
                        hi if flt.get("toBlock") is None else to_int(flt["toBlock"]),
                        _norm_addresses(flt.get("addresses")), _norm_topics(flt.get("topics"))))

    for f in fields(op.selection_set):
        n = f.name.value
        args = args_of(f)
        req.root_fields.append(n)
        if n == "blocks":
            lo, hi = to_int(args.get("from")), to_int(args.get("to"))
            req.ranges.append((lo, hi))
            block_sel(f.selection_set, lo, hi)
        elif n == "block":
            if "hash" in args and args["hash"] is not None:
                req.block_hashes.append(str(args["hash"]).lower())
                block_sel(f.selection_set)
            else:
                num = to_int(args.get("number"))
                req.numbers.append(num)
                block_sel(f.selection_set, num, num, num)
        elif n == "transaction":
            req.tx_hashes.append(str(args.get("hash")).lower())
            for sub in fields(f.selection_set):
                if sub.name.value == "block":
                    req.block_fields.add("block")
                    all_names(sub.selection_set, req.block_fields)
                else:
                    req.tx_fields.add(sub.name.value)
                    all_names(sub.selection_set, req.tx_fields)
        elif n == "logs":
            flt = args.get("filter") or {}
            req.logs.append(LogQuery(to_int(flt.get("fromBlock")), to_int(flt.get("toBlock")),
                                     _norm_addresses(flt.get("addresses")), _norm_topics(flt.get("topics"))))
    return req


@dataclass
class NodeRequest:
    """What one logged request (GraphQL or JSON-RPC) asked the node for, in
    terms both APIs share.

    ranges         (from, to|None): GraphQL blocks(from:, to:), JSON-RPC eth_getLogs
    numbers        single blocks: GraphQL block(number:), JSON-RPC
                   eth_getBlockByNumber / eth_getBlockTransactionCountByNumber /
                   eth_getBlockReceipts (None: the head, "latest")
    block_reads    every block whose header or transactions are read, once per
                   time it is asked for (the blocks of a GraphQL range; a JSON-RPC
                   eth_getBlockByNumber or eth_getBlockTransactionCountByNumber)
    tx_hashes      transactions looked up by hash (transaction(hash:),
                   eth_getTransactionByHash)
    accounts       (address, block|None, {"balance", "nonce", "code"}) asked for
    logs           LogQuery of each log query
    tx_objects     transaction objects asked for (GraphQL: any field under
                   transactions; JSON-RPC: eth_getBlockByNumber(n, true) or
                   eth_getTransactionByHash)
    receipts       receipt data asked for (GraphQL: status, gasUsed, logs, ... of a
                   transaction; JSON-RPC: eth_getBlockReceipts / eth_getTransactionReceipt)
    head           the node's newest block asked for ({ block { number } },
                   eth_blockNumber, eth_getBlockByNumber("latest"))
    methods        JSON-RPC methods of the calls, in order (GraphQL: the root fields)
    calls          the JSON-RPC calls ({"method", "params", "id"}); [] for GraphQL
    gql            the GraphQL parse (GraphQL field names), None for JSON-RPC
    """

    entry: dict
    api: str
    ranges: list = field(default_factory=list)
    numbers: list = field(default_factory=list)
    block_reads: list = field(default_factory=list)
    tx_hashes: list = field(default_factory=list)
    receipt_blocks: list = field(default_factory=list)   # JSON-RPC eth_getBlockReceipts
    receipt_hashes: list = field(default_factory=list)   # JSON-RPC eth_getTransactionReceipt
    accounts: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    tx_objects: bool = False
    receipts: bool = False
    head: bool = False
    methods: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    gql: GqlRequest | None = None
    error: str | None = None

    @property
    def status(self):
        return self.entry.get("status")

    @property
    def fault(self):
        return self.entry.get("fault")

    @property
    def tx_fields(self) -> set:
        """GraphQL field names under a Transaction (empty for JSON-RPC)."""
        return self.gql.tx_fields if self.gql else set()

    @property
    def block_fields(self) -> set:
        return self.gql.block_fields if self.gql else set()

    @property
    def text(self) -> str:
        return self.entry.get("query") or ""

    def span(self) -> tuple[int, int] | None:
        """Smallest and largest block number the request names (open ends left out)."""
        ns = [n for n in self.numbers if n is not None]
        for lo, hi in self.ranges:
            ns += [x for x in (lo, hi) if x is not None]
        return (min(ns), max(ns)) if ns else None

    def reads_blocks(self) -> bool:
        """Asks for block data of given blocks (not only the head or accounts)."""
        return bool(self.block_reads or self.ranges or self.receipt_blocks or self.receipt_hashes
                    or self.logs or self.tx_hashes)

    def signature(self):
        """What was asked, without the JSON-RPC ids: equal for a request sent again."""
        if self.api == "graphql":
            v = self.entry.get("variables")
            return ("graphql", self.entry.get("query"), json.dumps(v, sort_keys=True))
        return ("jsonrpc",) + tuple((c.get("method"), json.dumps(c.get("params"), sort_keys=True))
                                    for c in self.calls)

    def calls_of(self, method: str) -> list[dict]:
        return [c for c in self.calls if c.get("method") == method]


def _rpc_block(v):
    """A JSON-RPC block parameter as int; None for the tags (latest, pending, ...)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, dict):                 # EIP-1898 {"blockNumber": ...} / {"blockHash": ...}
        return _rpc_block(v.get("blockNumber"))
    s = str(v).strip().lower()
    if s == "earliest":
        return 0
    if s.startswith("0x"):
        return int(s, 16)
    return int(s) if s.isdigit() else None


def rpc_calls(entry: dict) -> list[dict]:
    """The JSON-RPC calls of a log entry: its "rpc" list, or its body parsed."""
    calls = entry.get("rpc")
    if calls is None:
        try:
            body = json.loads(entry.get("query") or "")
        except ValueError:
            return []
        calls = body if isinstance(body, list) else [body]
    return [c for c in calls if isinstance(c, dict)]


def _parse_rpc(entry: dict) -> NodeRequest:
    req = NodeRequest(entry=entry, api="jsonrpc")
    req.calls = rpc_calls(entry)
    for c in req.calls:
        m = c.get("method")
        p = c.get("params") or []
        if not isinstance(p, list):
            p = [p]
        req.methods.append(m)
        if m in ("eth_getBlockByNumber", "eth_getBlockTransactionCountByNumber", "eth_getBlockReceipts"):
            n = _rpc_block(p[0] if p else None)
            req.numbers.append(n)
            if n is None:
                req.head = req.head or m == "eth_getBlockByNumber"
            elif m == "eth_getBlockReceipts":
                req.receipt_blocks.append(n)
            else:
                req.block_reads.append(n)
            if m == "eth_getBlockByNumber" and len(p) > 1 and p[1] is True:
                req.tx_objects = True
            if m == "eth_getBlockReceipts":
                req.receipts = True
        elif m == "eth_getTransactionByHash":
            req.tx_hashes.append(str(p[0]).lower() if p else None)
            req.tx_objects = True
        elif m == "eth_getTransactionReceipt":
            req.receipt_hashes.append(str(p[0]).lower() if p else None)
            req.receipts = True
        elif m == "eth_getLogs":
            flt = p[0] if p and isinstance(p[0], dict) else {}
            lo, hi = _rpc_block(flt.get("fromBlock")), _rpc_block(flt.get("toBlock"))
            req.ranges.append((lo, hi))
            req.logs.append(LogQuery(lo, hi, _norm_addresses(flt.get("address")), _norm_topics(flt.get("topics"))))
        elif m in ("eth_getBalance", "eth_getTransactionCount", "eth_getCode"):
            what = {"eth_getBalance": "balance", "eth_getTransactionCount": "nonce", "eth_getCode": "code"}[m]
            addr = str(p[0]).lower() if p else None
            blk = _rpc_block(p[1]) if len(p) > 1 else None
            for i, (a, b, ws) in enumerate(req.accounts):
                if a == addr and b == blk:
                    ws.add(what)
                    break
            else:
                req.accounts.append((addr, blk, {what}))
        elif m == "eth_blockNumber":
            req.head = True
    return req


def parse_entry(entry: dict) -> NodeRequest:
    """A /control/log entry (GraphQL at /graphql, JSON-RPC at /) as a NodeRequest."""
    if entry.get("rpc") is not None or entry.get("path") == "/":
        return _parse_rpc(entry)
    g = parse_request(entry)
    req = NodeRequest(entry=entry, api="graphql", gql=g, error=g.error)
    req.ranges = list(g.ranges)
    req.numbers = list(g.numbers)
    for lo, hi in g.ranges:
        if lo is not None and hi is not None:
            req.block_reads.extend(range(lo, hi + 1))
    if not g.accounts:      # an account document's block(number:) reads no block data
        req.block_reads.extend(n for n in g.numbers if n is not None)
    req.tx_hashes = list(g.tx_hashes)
    req.accounts = list(g.accounts)
    req.logs = list(g.logs)
    req.tx_objects = bool(g.tx_fields)
    req.receipts = bool(g.tx_fields & _RECEIPT_FIELDS)
    req.head = None in g.numbers
    req.methods = list(g.root_fields)
    return req


def merged_intervals(reqs, head: int | None = None) -> list[tuple[int, int]]:
    """Union of every block asked for (ranges and single numbers), merged.
    A range without `to` (or a head lookup) ends at `head` when given and is
    otherwise left out."""
    iv = []
    for r in reqs:
        for lo, hi in r.ranges:
            if lo is None:
                lo = 0
            if hi is None:
                if head is None:
                    continue
                hi = head
            if head is not None:
                hi = min(hi, head)
            if hi >= lo:
                iv.append((lo, hi))
        for n in r.numbers:
            if n is not None:
                iv.append((n, n))
    iv.sort()
    out: list[list[int]] = []
    for lo, hi in iv:
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [tuple(x) for x in out]


def block_entries(log: list[dict], lo: int | None = None, hi: int | None = None,
                  fault: str | None = None) -> list[dict]:
    """Log entries of requests that read blocks (their "range", which the
    test server computes for both APIs, is set; a head lookup's is null or
    the head), optionally only those touching [lo, hi] and answered with
    `fault`."""
    out = []
    for e in log:
        r = e.get("range")
        if not r:
            continue
        if lo is not None and (r[1] < lo or (hi is not None and r[0] > hi)):
            continue
        if fault is not None and e.get("fault") != fault:
            continue
        out.append(e)
    return out


def blocks_rule(fault: str, lo: int, hi: int, times: int | None = None, **params) -> dict:
    """A /control/faults rule for the requests that read any of blocks lo..hi
    (match.blocks: the same for GraphQL and JSON-RPC; a head lookup is not
    matched)."""
    r = {"match": {"blocks": [lo, hi]}, "fault": fault, **params}
    if times is not None:
        r["times"] = times
    return r


def node_error_rule(api: str, message: str, **params) -> dict:
    """The fault parameters of "the node answered an error with this message":
    a GraphQL error (HTTP 400, {"errors": [...]}) or a JSON-RPC error object
    (-32000, Geth's code for a failed call) in each call's answer."""
    if api == "graphql":
        return {"fault": "graphqlError", "message": message, **params}
    return {"fault": "rpcError", "code": -32000, "message": message, "shape": "entry", **params}


def remote_line(api: str) -> str:
    """The EXPLAIN VERBOSE line prefix naming what is sent."""
    return {"graphql": "Remote GraphQL: ", "jsonrpc": "Remote JSON-RPC: "}[api]


def remote_text(plan: str, api: str) -> str:
    """What EXPLAIN VERBOSE says is sent (the rest of the Remote ... line);
    fails when the plan has no such line."""
    prefix = remote_line(api)
    for line in plan.splitlines():
        if prefix in line:
            return line.split(prefix, 1)[1]
    raise AssertionError(f"no {prefix.strip()!r} line in the plan:\n{plan}")


# --------------------------------------------------------------------------
# a test server over shared/data/accounts (real account state; issue 18)


class OwnServer:
    """test/geth-server/server.js started by the tests themselves (--port 0 ARGS)."""

    def __init__(self, *args: str):
        import shutil
        import subprocess
        server_js = REPO_ROOT / "test" / "geth-server" / "server.js"
        if shutil.which("node") is None or not server_js.is_file():
            pytest.skip("node or test/geth-server is not available")
        self.proc = subprocess.Popen(["node", str(server_js), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), f"the test server did not start: {line!r}"
        self.endpoint = line.split()[2]
        self.control = Control(self.endpoint)
        self.rpc_url = self.control.base + "/"

    def rpc(self, method: str, *params):
        """One JSON-RPC call; returns the whole answer (result or error)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self.rpc_url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        import subprocess
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def accounts_dir(data_dir) -> Path:
    d = data_dir / "accounts"
    if not (d / "accounts.csv").is_file():
        pytest.skip(f"{d}/accounts.csv not found (shared/data/accounts)")
    return d


@pytest.fixture(scope="session")
def accounts_server(accounts_dir):
    """A test server over shared/data/accounts: real blocks, nonces and the real
    account state of accounts.csv (a pruned node elsewhere). Its head must not be
    moved (tests that move it start their own OwnServer)."""
    s = OwnServer("--data", str(accounts_dir))
    yield s
    s.stop()


@pytest.fixture
def own_server():
    """own_server(*args) -> OwnServer, stopped after the test."""
    started = []

    def start(*args: str) -> OwnServer:
        s = OwnServer(*args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def readable_dir():
    """A directory the cluster's OS user can read (for COPY / load_labels)."""
    import shutil
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="ew_truth_", dir=SERVER_TMPDIR))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)
