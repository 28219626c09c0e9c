#!/usr/bin/env python3
"""bench/gql_blocks.py - the origin's approach, peer (e) of bench/compare.

    gql_blocks.py ENDPOINT FROM TO [--step 100] [--fields "number transactions { value }"]

What the project's origin did before the wrapper: a Python script with the
`gql` client (https://github.com/graphql-python/gql, RequestsHTTPTransport)
that asks Geth's GraphQL for blocks(from, to) 100 blocks at a time and adds
the transactions up in Python.  It prints one JSON line:
{"blocks": N, "txs": count, "sum_value": "wei"} so that bench/compare can
check it computed the same answer as the wrapper.
"""
import argparse
import json
import sys

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("endpoint")
    ap.add_argument("first", type=int)
    ap.add_argument("last", type=int)
    ap.add_argument("--step", type=int, default=100)
    ap.add_argument("--fields", default="number transactions { value }")
    a = ap.parse_args()

    transport = RequestsHTTPTransport(url=a.endpoint, timeout=300, retries=0)
    client = Client(transport=transport, fetch_schema_from_transport=False)
    # Long is passed as a variable: literals in the query text are 32-bit.
    query = gql("query($from: Long!, $to: Long!) { blocks(from: $from, to: $to) { %s } }" % a.fields)
    blocks = txs = 0
    total = 0
    with client as session:
        lo = a.first
        while lo <= a.last:
            hi = min(lo + a.step - 1, a.last)
            data = session.execute(query, variable_values={"from": hex(lo), "to": hex(hi)})
            for b in data["blocks"]:
                blocks += 1
                for t in b.get("transactions") or []:
                    txs += 1
                    total += int(t["value"], 16)
            lo = hi + 1
    print(json.dumps({"blocks": blocks, "txs": txs, "sum_value": str(total)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
