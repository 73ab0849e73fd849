"""make bench: lab-up time and API latency; writes bench/results.json and a Markdown table."""

import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
QUICK = os.environ.get("BENCH_QUICK") == "1"


def lab(*args):
    subprocess.run([sys.executable, "-m", "cloudhop_lab", *args], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)


def main():
    ups = []
    for _i in range(2 if QUICK else 5):
        t = time.monotonic()
        lab("up")
        ups.append(time.monotonic() - t)
    time.sleep(2)  # let the fixture converge before measuring latency
    try:
        out = subprocess.run([os.path.join(REPO, "tests", "lab", "run"), sys.executable,
                              os.path.join(HERE, "api_latency.py")], check=True, cwd=REPO,
                             capture_output=True, text=True).stdout
    finally:
        lab("down")
    api = json.loads(out)
    path = os.path.join(HERE, "results.json")
    results = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            results = json.load(fh)
    results["lab_up_seconds"] = {"median": round(statistics.median(ups), 3),
                                 "runs": [round(u, 3) for u in ups]}
    results["api_latency_ms"] = api
    results["quick"] = QUICK
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
    rows = ["| measure | p50 | p99 |", "| --- | --- | --- |"]
    for name, r in api.items():
        rows.append("| API %s | %.2f ms | %.2f ms |" % (name, r["p50_ms"], r["p99_ms"]))
    rows.append("| lab-up (fixture) | %.2f s (median of %d) | |"
                % (results["lab_up_seconds"]["median"], len(ups)))
    table = "\n".join(rows)
    with open(os.path.join(HERE, "results.md"), "w", encoding="utf-8") as fh:
        fh.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
