"""Shared fixtures for the ethwhale_fdw integration tests.

test/run starts a throwaway PostgreSQL cluster and the test GraphQL servers
(test/geth-server) and exports:

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

Helpers other test modules may import (``from conftest import ...``):
  Control            /control/* of a test server, and plain GraphQL requests
  parse_request      what one logged GraphQL request asked for
  merged_intervals   union of block ranges as sorted, merged [lo, hi] pairs
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
    endpoint: str
    options: dict = field(default_factory=dict)

    def t(self, table: str) -> str:
        """Qualified name of an imported foreign table, for SQL text."""
        return f"{self.schema}.{table}"


@pytest.fixture
def make_fdw(pg):
    """Factory: make_fdw(endpoint, **server_options) -> Fdw.

    Creates a server with a unique name, a user mapping for the current user,
    and a schema filled by IMPORT FOREIGN SCHEMA ethereum; drops them after
    the test.
    """
    created: list[Fdw] = []

    def make(endpoint: str, **options) -> Fdw:
        tag = uuid.uuid4().hex[:10]
        f = Fdw(server=f"ew_srv_{tag}", schema=f"ew_{tag}", endpoint=endpoint,
                options={k: str(v) for k, v in options.items()})
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
    and plain GraphQL requests, of one test server."""

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

    def head(self) -> int:
        status, body = self.graphql("{ block { number } }")
        assert status == 200, (status, body)
        return to_int(body["data"]["block"]["number"])

    def requests(self) -> list["GqlRequest"]:
        """The logged GraphQL requests (control requests excluded), parsed."""
        return [parse_request(e) for e in self.log() if e.get("query")]


@pytest.fixture
def control():
    """control(endpoint) -> Control."""
    return Control


# --------------------------------------------------------------------------
# what a logged GraphQL request asked for


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
    error: str | None = None                           # query text that did not parse

    @property
    def status(self):
        return self.entry.get("status")

    @property
    def fault(self):
        return self.entry.get("fault")


_TX_FIELDS = {"transactions", "transactionAt", "transaction"}


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

    def block_sel(selection_set):
        for f in fields(selection_set):
            n = f.name.value
            if n in _TX_FIELDS:
                req.block_fields.add(n)
                all_names(f.selection_set, req.tx_fields)
            else:
                req.block_fields.add(n)
                all_names(f.selection_set, req.block_fields)

    for f in fields(op.selection_set):
        n = f.name.value
        args = {a.name.value: value(a.value) for a in f.arguments}
        req.root_fields.append(n)
        if n == "blocks":
            req.ranges.append((to_int(args.get("from")), to_int(args.get("to"))))
            block_sel(f.selection_set)
        elif n == "block":
            if "hash" in args and args["hash"] is not None:
                req.block_hashes.append(str(args["hash"]).lower())
            else:
                req.numbers.append(to_int(args.get("number")))
            block_sel(f.selection_set)
        elif n == "transaction":
            req.tx_hashes.append(str(args.get("hash")).lower())
            for sub in fields(f.selection_set):
                if sub.name.value == "block":
                    req.block_fields.add("block")
                    all_names(sub.selection_set, req.block_fields)
                else:
                    req.tx_fields.add(sub.name.value)
                    all_names(sub.selection_set, req.tx_fields)
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
