#!/usr/bin/env python3
"""test/geth/populate.py URL [--out FILE] - put known transactions on a geth dev chain.

Talks JSON-RPC (Python standard library only) to a node started by test/geth/start.sh, and
sends from its unlocked, prefunded dev account (eth_accounts[0], normally
0x71562b71999873db5b286df957af199ec94617f7):

  * plain ETH transfers to fixed addresses, from 0 and 1 wei up to 10^40 wei (more than 2^128),
    among them 1000 ETH and 12345.678901234567890123 ETH, several of them in one block;
  * a contract creation carrying 1 ETH (a contract whose code is a single STOP);
  * the deployment of a tiny hand-assembled ERC-20-like token, and a few calls of its
    transfer(address,uint256) (selector 0xa9059cbb), each of which emits
    Transfer(address indexed from, address indexed to, uint256 value) with from = the caller
    (it keeps no balances: it only logs, and returns true);
  * one last transfer a few empty blocks later (so that empty blocks lie among them).

It waits for every receipt, checks that each transaction succeeded and that the node reports
what was sent, and writes a JSON manifest (stdout, or --out FILE):

  {"url", "chain_id", "account", "first_block", "last_block",
   "transactions": [{"kind": "transfer"|"create"|"token_deploy"|"token_transfer",
                     "hash", "block", "block_hash", "index", "from", "to" (null for creations),
                     "value" (wei, decimal string), "contract" (created contract or null),
                     "status", "gas_used", "input"}],
   "token": {"address", "deploy_tx", "block"},
   "token_transfers": [{"tx", "block", "log_index", "token", "from", "to",
                        "amount" (decimal string)}]}

Addresses and hashes are lowercase; numbers are ints except wei amounts (decimal strings).
Exit status: 0 done, 1 failure (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TRANSFER_SELECTOR = "a9059cbb"  # transfer(address,uint256)
ETH = 10**18

# Plain transfers: (to, wei). Checksummed spellings on purpose: the node reports lowercase.
TRANSFERS_A = [
    ("0x1111111111111111111111111111111111111111", 1000 * ETH),
    ("0x000000000000000000000000000000000000dEaD", 12345678901234567890123),  # 12345.678901234567890123 ETH
    ("0x2222222222222222222222222222222222222222", 1),
    ("0x3333333333333333333333333333333333333333", 0),
]
TRANSFERS_B = [
    ("0x4444444444444444444444444444444444444444", 2**64 + 1),
    ("0xABcdEFABcdEFabcdEfAbCdefabcdeFABcDEFabCD", 10**40),  # a whale: more than 2^128 wei
    ("0x1111111111111111111111111111111111111111", 5 * 10**17),  # 0.5 ETH, again to 0x11..11
]
# Sent alone, after a few empty blocks.
TRANSFER_LAST = ("0x6666666666666666666666666666666666666666", 31337 * 10**12)
# Token transfers: (to, amount)
TOKEN_TRANSFERS = [
    ("0x1111111111111111111111111111111111111111", 10**24),
    ("0x5555555555555555555555555555555555555555", 2**256 - 1),
    ("0x000000000000000000000000000000000000dEaD", 1),
]


# ------------------------------------------------------------------ EVM code, assembled by hand

def _push(data: bytes) -> bytes:
    assert 1 <= len(data) <= 32
    return bytes([0x5F + len(data)]) + data


def token_runtime() -> bytes:
    """transfer(address to, uint256 amount): LOG3(Transfer, caller, to) with data = amount; returns true."""
    code = b"".join([
        _push(b"\x24"), b"\x35",          # PUSH1 0x24 CALLDATALOAD   amount
        _push(b"\x00"), b"\x52",          # PUSH1 0 MSTORE            mem[0:32] = amount
        _push(b"\x04"), b"\x35",          # PUSH1 4 CALLDATALOAD      to (topic2)
        _push(b"\xff" * 20), b"\x16",     # PUSH20 ff..ff AND         keep 20 bytes
        b"\x33",                          # CALLER                    from (topic1)
        _push(bytes.fromhex(TRANSFER_TOPIC[2:])),  # PUSH32 topic0
        _push(b"\x20"),                   # PUSH1 32                  size
        _push(b"\x00"),                   # PUSH1 0                   offset
        b"\xa3",                          # LOG3
        _push(b"\x01"), _push(b"\x00"), b"\x52",   # mem[0:32] = 1
        _push(b"\x20"), _push(b"\x00"), b"\xf3",   # RETURN mem[0:32]
    ])
    return code


def init_code(runtime: bytes) -> bytes:
    """Constructor that returns `runtime` as the contract's code."""
    n = len(runtime)
    assert n < 256
    # PUSH1 n PUSH1 off PUSH1 0 CODECOPY PUSH1 n PUSH1 0 RETURN   (12 bytes), then the runtime
    head_len = 12
    head = bytes([0x60, n, 0x60, head_len, 0x60, 0x00, 0x39, 0x60, n, 0x60, 0x00, 0xF3])
    assert len(head) == head_len
    return head + runtime


def transfer_calldata(to: str, amount: int) -> str:
    return "0x" + TRANSFER_SELECTOR + to.lower()[2:].rjust(64, "0") + format(amount, "064x")


# ------------------------------------------------------------------ JSON-RPC

class RpcError(Exception):
    pass


class Rpc:
    def __init__(self, url: str, timeout: float = 15):
        self.url = url
        self.timeout = timeout
        self.n = 0

    def __call__(self, method: str, *params):
        self.n += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method,
                           "params": list(params)}).encode()
        req = urllib.request.Request(self.url, data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                ans = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RpcError(f"{method}: HTTP {e.code}: {e.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as e:
            raise RpcError(f"{method}: cannot reach {self.url}: {e}") from None
        if "error" in ans:
            raise RpcError(f"{method}{tuple(params)!r}: {ans['error']}")
        return ans.get("result")


def qty(n: int) -> str:
    return hex(n)


def num(h) -> int | None:
    return None if h is None else int(h, 16)


def log(msg: str) -> None:
    print(f"populate.py: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url", help="JSON-RPC URL of the node, e.g. http://127.0.0.1:8545")
    ap.add_argument("--out", help="write the manifest here instead of stdout")
    ap.add_argument("--timeout", type=float, default=90,
                    help="seconds to wait for all receipts (default 90)")
    args = ap.parse_args(argv)
    url = args.url.rstrip("/")
    if url.endswith("/graphql"):
        url = url[: -len("/graphql")]
    rpc = Rpc(url)

    accounts = rpc("eth_accounts")
    if not accounts:
        raise RpcError("eth_accounts is empty: is this a geth --dev node?")
    me = accounts[0].lower()
    chain_id = num(rpc("eth_chainId"))
    log(f"node {url}, chain id {chain_id}, account {me}, "
        f"head {num(rpc('eth_blockNumber'))}")

    sent: list[dict] = []  # what we sent, in order

    def send(kind: str, to: str | None, value: int, data: str | None = None) -> dict:
        tx = {"from": me, "value": qty(value)}
        if to is not None:
            tx["to"] = to
        if data is not None:
            tx["input"] = data
        h = rpc("eth_sendTransaction", tx)
        rec = {"kind": kind, "hash": h.lower(), "to_sent": to.lower() if to else None,
               "value_sent": value, "input_sent": data or "0x"}
        sent.append(rec)
        return rec

    def wait(recs: list[dict]) -> None:
        deadline = time.monotonic() + args.timeout
        for rec in recs:
            while True:
                r = rpc("eth_getTransactionReceipt", rec["hash"])
                if r is not None and r.get("blockNumber") is not None:
                    rec["receipt"] = r
                    break
                if time.monotonic() > deadline:
                    raise RpcError(f"no receipt for {rec['kind']} {rec['hash']} "
                                   f"after {args.timeout:.0f}s")
                time.sleep(0.2)

    # Batch 1: four transfers sent back to back (they share a block or two).
    batch = [send("transfer", to, v) for to, v in TRANSFERS_A]
    # Batch 2: a contract creation with value, and the token.
    create = send("create", None, ETH, "0x" + init_code(b"\x00").hex())
    deploy = send("token_deploy", None, 0, "0x" + init_code(token_runtime()).hex())
    wait(batch + [create, deploy])
    token = deploy["receipt"].get("contractAddress")
    if not token:
        raise RpcError(f"token deployment {deploy['hash']} created no contract")
    token = token.lower()
    code = rpc("eth_getCode", token, "latest")
    if code.lower() != "0x" + token_runtime().hex():
        raise RpcError(f"token {token} has unexpected code {code}")
    log(f"token deployed at {token}")

    # Batch 3: token transfers mixed with more ETH transfers.
    batch = []
    for (to, amount), more in zip(TOKEN_TRANSFERS, TRANSFERS_B):
        batch.append(send("token_transfer", token, 0, transfer_calldata(to, amount)))
        batch.append(send("transfer", more[0], more[1]))
    wait(batch)

    # Batch 4: one more transfer a few (empty) blocks later, so that the range of blocks
    # with our transactions has empty blocks inside it.
    last = max(num(rec["receipt"]["blockNumber"]) for rec in sent)
    deadline = time.monotonic() + args.timeout
    while num(rpc("eth_blockNumber")) < last + 2:
        if time.monotonic() > deadline:
            raise RpcError(f"the chain does not advance past block {last}")
        time.sleep(0.2)
    wait([send("transfer", *TRANSFER_LAST)])

    # Read back what the node reports, and check it against what was sent.
    txs, transfers = [], []
    token_amounts = iter(TOKEN_TRANSFERS)
    for rec in sent:
        t = rpc("eth_getTransactionByHash", rec["hash"])
        r = rec["receipt"]
        if num(r["status"]) != 1:
            raise RpcError(f"{rec['kind']} {rec['hash']} failed: receipt {r}")
        entry = {
            "kind": rec["kind"],
            "hash": t["hash"].lower(),
            "block": num(t["blockNumber"]),
            "block_hash": t["blockHash"].lower(),
            "index": num(t["transactionIndex"]),
            "from": t["from"].lower(),
            "to": t["to"].lower() if t.get("to") else None,
            "value": str(num(t["value"])),
            "contract": (r.get("contractAddress") or None) and r["contractAddress"].lower(),
            "status": num(r["status"]),
            "gas_used": num(r["gasUsed"]),
            "input": t["input"].lower(),
        }
        problems = []
        if entry["from"] != me:
            problems.append(f"from {entry['from']}")
        if entry["to"] != rec["to_sent"]:
            problems.append(f"to {entry['to']} (sent {rec['to_sent']})")
        if entry["value"] != str(rec["value_sent"]):
            problems.append(f"value {entry['value']} (sent {rec['value_sent']})")
        if entry["input"] != rec["input_sent"].lower():
            problems.append("input differs")
        if (entry["contract"] is None) != (entry["to"] is not None):
            problems.append(f"contract {entry['contract']} with to {entry['to']}")
        if problems:
            raise RpcError(f"{rec['kind']} {rec['hash']}: node reports " + ", ".join(problems))
        txs.append(entry)

        if rec["kind"] == "token_transfer":
            to, amount = next(token_amounts)
            logs = [lg for lg in r["logs"] if lg["topics"] and lg["topics"][0].lower() == TRANSFER_TOPIC]
            if len(logs) != 1:
                raise RpcError(f"token transfer {rec['hash']}: {len(logs)} Transfer logs: {r['logs']}")
            lg = logs[0]
            tr = {
                "tx": entry["hash"],
                "block": num(lg["blockNumber"]),
                "log_index": num(lg["logIndex"]),
                "token": lg["address"].lower(),
                "from": "0x" + lg["topics"][1][-40:].lower(),
                "to": "0x" + lg["topics"][2][-40:].lower(),
                "amount": str(int(lg["data"], 16)),
            }
            if (tr["token"], tr["from"], tr["to"], tr["amount"]) != (token, me, to.lower(), str(amount)):
                raise RpcError(f"token transfer {rec['hash']}: unexpected log {lg}")
            transfers.append(tr)

    blocks = [t["block"] for t in txs]
    manifest = {
        "url": url,
        "chain_id": chain_id,
        "account": me,
        "first_block": min(blocks),
        "last_block": max(blocks),
        "transactions": txs,
        "token": {"address": token, "deploy_tx": deploy["hash"],
                  "block": num(deploy["receipt"]["blockNumber"])},
        "token_transfers": transfers,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    log(f"{len(txs)} transactions ({len(transfers)} token transfers) in blocks "
        f"{manifest['first_block']}..{manifest['last_block']}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RpcError as e:
        print(f"populate.py: error: {e}", file=sys.stderr)
        sys.exit(1)
