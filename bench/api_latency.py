"""API latency of the lab (runs inside clh-ctl): get, list of 1,000 objects, patch.

Each figure is measured in several rounds; the report quotes the median of the rounds' p50 and
p99 (these machines are shared and noisy). Results are merged into bench/results.json.
"""

import json
import os
import statistics
import sys
import time

from kubernetes import client, config

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
N_OBJECTS = 100 if QUICK else 1000
N_CALLS = 20 if QUICK else 200
N_LISTS = 5 if QUICK else 30


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1))))]


def timed(fn, n):
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main():
    core = client.CoreV1Api(config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"]))
    ns = "bench-api"
    core.create_namespace({"metadata": {"name": ns}})
    data = {"k%d" % i: "v" * 40 for i in range(10)}
    for i in range(N_OBJECTS):
        core.create_namespaced_config_map(ns, {"metadata": {"name": "cm-%04d" % i,
                                                            "labels": {"bench": "1"}},
                                               "data": data})
    rounds = {"get": [], "list_%d" % N_OBJECTS: [], "patch": []}
    for _r in range(ROUNDS):
        rounds["get"].append(timed(lambda i: core.read_namespaced_config_map(
            "cm-%04d" % (i % N_OBJECTS), ns), N_CALLS))
        rounds["list_%d" % N_OBJECTS].append(timed(
            lambda i: core.list_namespaced_config_map(ns), N_LISTS))
        rounds["patch"].append(timed(lambda i: core.patch_namespaced_config_map(
            "cm-%04d" % (i % N_OBJECTS), ns, {"data": {"n": str(time.time())}}), N_CALLS))
    core.delete_namespace(ns)
    result = {}
    for name, samples in rounds.items():
        result[name] = {
            "p50_ms": round(statistics.median(pct(s, 50) for s in samples), 2),
            "p99_ms": round(statistics.median(pct(s, 99) for s in samples), 2),
            "rounds": ROUNDS, "calls_per_round": len(samples[0])}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
