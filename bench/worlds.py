"""The lab's several clusters: lab-up time of the move world and of --clusters 3 (until every
app has answered through DNS and its load balancer: the move world's shop on every host and path,
HTTP and HTTPS; each of the 3 clusters' apps), and the lab's memory per user cluster (PSS of every lab process at --clusters 1
and 3). The move world's MongoDB: time from lab up until its replica set has a primary, and the
app's writes through the load balancer (write probe, w:majority, 20/s for 10 s: latency p50/p99
of acknowledged POSTs). Prints JSON. Runs from the host (each measurement brings its own lab up
and down)."""

import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cloudhop_lab.cli import lab_dir, shop_urls  # noqa: E402  pylint: disable=C0413
from cloudhop_lab.dataplane.netns import ns_name  # noqa: E402  pylint: disable=C0413
from scale_nodes import lab_pss_mib  # noqa: E402  pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
os.environ.setdefault("CLH_LAB_DIR", lab_dir())  # labd_pids() finds this lab's daemon by it


def lab(*args):
    subprocess.run([sys.executable, "-m", "cloudhop_lab", *args], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)


SERVED = r"""
import json, ssl, sys, time, urllib.parse
from cloudhop_lab.probe import Resolver, request
ctx = ssl.create_default_context(cafile=sys.argv[1])
todo = [urllib.parse.urlsplit(u) for u in sys.argv[2:]]
deadline = time.monotonic() + 120
while todo and time.monotonic() < deadline:
    for url in list(todo):
        try:
            ip = Resolver("198.18.0.53").resolve(url.hostname)
            if request(ip, url, 1, ctx)[0] == 200:
                todo.remove(url)
        except Exception:  # not yet: no record, no load balancer, no backend
            pass
    time.sleep(0.05)
sys.exit(1 if todo else 0)
"""


def up_until_served(up_args, urls):
    """Seconds from lab up until every URL of the world has answered 200 through DNS and its
    load balancer, from the internet client."""
    t = time.monotonic()
    lab("up", *up_args)
    subprocess.run(["ip", "netns", "exec", ns_name("client"), sys.executable, "-c", SERVED,
                    os.path.join(lab_dir(), "pki", "ca.crt")] + urls, check=True, cwd=REPO,
                   env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "tests", "lab")))
    return time.monotonic() - t


def write_probe(seconds=10):
    """A write probe's summary after ``seconds`` at 20/s (read back from the primary), after a
    3 s warm-up: the api's pods started before the replica set had a primary, and their first
    write waits for pymongo's next look at the set (about 1 s; not in the figure)."""
    lab("probe", "start", "--name", "bench-warmup", "--writes", "--rate", "20")
    time.sleep(3)
    lab("probe", "stop", "--name", "bench-warmup")
    lab("probe", "start", "--name", "bench-writes", "--writes", "--rate", "20")
    time.sleep(seconds)
    lab("probe", "stop", "--name", "bench-writes")
    with open(os.path.join(lab_dir(), "probe-bench-writes-summary.json"), encoding="utf-8") as fh:
        return json.load(fh)


def settled_pss(up_args, waits):
    lab("up", *up_args)
    for wait in waits:
        lab("wait-app", *wait)
    time.sleep(3)
    return lab_pss_mib()


def main():
    three = [["--host", "app.example.test"], ["--host", "app2.example.test"],
             ["--host", "app3.example.test"]]
    move, clusters3, primary, writes = [], [], [], []
    try:
        for _i in range(ROUNDS):
            t = time.monotonic()
            move.append(up_until_served(["--world", "move"], shop_urls()))
            lab("mongo", "wait")
            primary.append(time.monotonic() - t)
            writes.append(write_probe())
            clusters3.append(up_until_served(["--clusters", "3"], [
                "http://app.example.test/", "http://app2.example.test/",
                "http://app3.example.test/"]))
        one = settled_pss([], [[]])
        three_mem = settled_pss(["--clusters", "3"], three)
    finally:
        lab("down")
    print(json.dumps({
        "move_world_up_s": {"median": round(statistics.median(move), 2),
                            "runs": [round(x, 2) for x in move]},
        "move_world_mongo_primary_s": {"median": round(statistics.median(primary), 2),
                                       "runs": [round(x, 2) for x in primary]},
        "move_world_writes": {
            "p50_ms": statistics.median(w["latency_ms"]["p50"] for w in writes),
            "p99_ms": statistics.median(w["latency_ms"]["p99"] for w in writes),
            "acknowledged": [w["acknowledged"] for w in writes],
            "failed": [w["failed"] for w in writes], "lost": [w["lost"] for w in writes]},
        "clusters_3_up_s": {"median": round(statistics.median(clusters3), 2),
                            "runs": [round(x, 2) for x in clusters3]},
        "pss_mib_clusters_1": one[0], "pss_mib_clusters_3": three_mem[0],
        "processes_clusters_1": one[1], "processes_clusters_3": three_mem[1],
        "pss_mib_per_cluster": round((three_mem[0] - one[0]) / 2, 1)}))


if __name__ == "__main__":
    main()
