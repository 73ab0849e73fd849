"""A replica set of lab MongoDB members as a test fixture (the collection's integration
targets): ``python -m cloudhop_lab.mongo.rs up --dir D --hosts H1,H2,... [--initiate N]``
starts one member process per host (detached, each with its dbpath under D), waits until they
listen, and initiates the first N as replica set rs0 with fast heartbeats and elections; the
others stay without a config (new members). Prints {"hosts": [...], "initiated": [...]}.
``down --dir D`` stops them. Runs where the hosts are local addresses (clh-ctl's loopback).
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

from . import wire

FAST = {"heartbeatIntervalMillis": 200, "electionTimeoutMillis": 1500, "heartbeatTimeoutSecs": 2}


def _listening(host):
    name, port = host.rsplit(":", 1)
    try:
        socket.create_connection((name, int(port)), timeout=0.2).close()
        return True
    except OSError:
        return False


def up(directory, hosts, initiate):
    os.makedirs(directory, exist_ok=True)
    pids = []
    for host in hosts:
        name, port = host.rsplit(":", 1)
        dbpath = os.path.join(directory, host.replace(":", "_"))
        log = open(dbpath + ".log", "ab")  # pylint: disable=consider-using-with
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "cloudhop_lab.mongo.member", "--host", host, "--bind", name,
             "--port", port, "--replSet", "rs0", "--dbpath", dbpath],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        pids.append(proc.pid)
    with open(os.path.join(directory, "pids"), "w", encoding="utf-8") as fh:
        json.dump(pids, fh)
    deadline = time.monotonic() + 20
    while not all(_listening(h) for h in hosts):
        if time.monotonic() > deadline:
            raise SystemExit("members did not listen: %s" % [h for h in hosts if not _listening(h)])
        time.sleep(0.05)
    if initiate:
        cfg = {"_id": "rs0", "settings": FAST,
               "members": [{"_id": i, "host": h} for i, h in enumerate(hosts[:initiate])]}
        reply = wire.Client(hosts[0], timeout=10).command("admin", {"replSetInitiate": cfg})
        if not reply.get("ok"):
            raise SystemExit("replSetInitiate: %s" % reply.get("errmsg"))
        deadline = time.monotonic() + 30
        while True:
            states = []
            for h in hosts[:initiate]:
                try:
                    states.append(wire.Client(h, timeout=2).command("admin", {"hello": 1}).get(
                        "isWritablePrimary"))
                except (OSError, EOFError, wire.ProtocolError):
                    states.append(None)
            if any(states):
                break
            if time.monotonic() > deadline:
                raise SystemExit("no primary elected")
            time.sleep(0.1)
    print(json.dumps({"hosts": hosts, "initiated": hosts[:initiate]}))


def down(directory):
    path = os.path.join(directory, "pids")
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        pids = json.load(fh)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.unlink(path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cloudhop_lab.mongo.rs")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--hosts", default="")
    parser.add_argument("--initiate", type=int, default=0)
    args = parser.parse_args(argv)
    if args.action == "up":
        up(args.dir, [h for h in args.hosts.split(",") if h], args.initiate)
    else:
        down(args.dir)


if __name__ == "__main__":
    main()
