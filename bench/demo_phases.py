"""make bench: the demo migration (vSphere -> AWS under the traffic probe, as `make demo`) on
labs of N old nodes, N new: the whole time, the time of each phase (from the ledger), and the
probe's figures - failed requests, the longest gap without a success and p99 latency, during the
migration against the 30 s of traffic before it. Prints one JSON object: {"runs": [...]}.

Usage: demo_phases.py N [N ...]   (run from the host, as root: it brings labs up and down)
BENCH_VPN_BACKEND=wireguard: the migration's own two WireGuard hubs (a Konnectivity cluster,
lab up --wireguard-hubs 2) instead of the seed's OpenVPN server.
BENCH_CONTROLLER_NICE (default 10): the nice value of ansible-playbook and its modules. On real
clusters the controller (a laptop, AWX) does not share CPUs with the nodes' data plane; in the
lab it does, and every module task is a Python process at full CPU for about half a second. At
nice 10 the lab's data plane (proxies, VPN, kernel) comes first when both want the 2 cores;
BENCH_CONTROLLER_NICE=0 measures them contending as equals.
BENCH_SLOW_MS (default 500): the successful requests listed as slow_requests, with their phase
and the task then running (a TCP retransmit is 1 s; 25 shows what sets a p99 near the goal).
"""

import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LAB = os.path.join(REPO, ".lab")
CID = "x8p9sk2tzv"
BASELINE_S = 30
VPN = os.environ.get("BENCH_VPN_BACKEND", "openvpn")
LAB_UP = {"openvpn": [], "wireguard": ["--konnectivity", "--wireguard-hubs", "2"]}
NICE = int(os.environ.get("BENCH_CONTROLLER_NICE", "10"))

LEDGER = r"""
import json, os
from kubernetes import client, config
seed = config.new_client_from_config(os.environ["CLH_SEED_KUBECONFIG"])
cm = client.CoreV1Api(seed).read_namespaced_config_map("cloudhop-migration", "cluster-%s")
print(json.dumps({k[len("phase."):]: json.loads(v) for k, v in (cm.data or {}).items()
                  if k.startswith("phase.")}))
""" % CID


# the lab's package for the lab commands this runs (python -m cloudhop_lab), also when this
# script is run by hand rather than by make bench
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (os.path.join(REPO, "tests", "lab"), os.environ.get("PYTHONPATH")) if p)


def lab(*args):
    proc = subprocess.run([sys.executable, "-m", "cloudhop_lab", *args], check=False, cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("cloudhop_lab %s failed (rc %d): %s" % (
            " ".join(args), proc.returncode, (proc.stderr or proc.stdout).strip()[-2000:]))
    return proc.stdout


def epoch(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def p99(values):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(0.99 * len(values)))], 2) if values else None


def window(records, start, end):
    """The probe's figures for the requests scheduled in [start, end)."""
    rs = [r for r in records if start <= r["t"] < end]
    ok = [r for r in rs if r.get("status") == 200]
    gap, last = 0.0, start
    for r in ok:
        gap, last = max(gap, r["t"] - last), r["t"]
    gap = max(gap, end - last) if rs else None
    return {"requests": len(rs), "failed": len(rs) - len(ok),
            "longest_gap_s": round(gap, 2) if gap is not None else None,
            "p50_ms": round(statistics.median([r["ms"] for r in ok]), 2) if ok else None,
            "p99_ms": p99([r["ms"] for r in ok])}


TASK_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?(TASK|RUNNING HANDLER) \[(.*?)\]")


def task_starts(path):
    """[(epoch, task name)] from an ANSIBLE_LOG_PATH file (its stamps are local time)."""
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                m = TASK_LINE.match(line)
                if m:
                    stamp = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
                    out.append((time.mktime(stamp.timetuple()) + stamp.microsecond / 1e6,
                                m.group(3)))
    except OSError:
        pass
    return out


SLOW_MS = int(os.environ.get("BENCH_SLOW_MS", "500"))


def where(r, tasks, ledger):
    """(phase, task) a probe record fell in: the ledger's phase, the task the log says ran."""
    task = [name for t, name in tasks if t <= r["t"]][-1:] or [None]
    phase = [n for n, p in ledger.items() if epoch(p["started"]) <= r["t"] < epoch(p["finished"])]
    return (phase[0] if phase else None), task[0]


def failures(records, tasks, ledger):
    """Each failed request during the migration, with its phase and the task then running."""
    out = []
    for r in records:
        if r.get("status") == 200:
            continue
        phase, task = where(r, tasks, ledger)
        out.append({"t": round(r["t"], 3), "ip": r.get("ip"),
                    "error": r.get("error") or "HTTP %s" % r.get("status"),
                    "ms": r.get("ms"), "phase": phase, "task": task})
    return out


def slow(records, tasks, ledger, ms=SLOW_MS):
    """Each successful request of ``ms`` or more (a TCP retransmit is 1 s): the p99's tail, with
    its phase and the task then running."""
    out = []
    for r in records:
        if r.get("status") == 200 and r["ms"] >= ms:
            phase, task = where(r, tasks, ledger)
            out.append({"t": round(r["t"], 3), "ip": r.get("ip"), "ms": r["ms"],
                        "phase": phase, "task": task})
    return out


def run(workers):
    started = time.monotonic()
    lab("up", "--workers", str(workers), "--dns-ttl", "20", *LAB_UP[VPN])
    try:
        lab("wait-app")
        lab("probe", "start", "--rate", "20", "--wait-ready")
        time.sleep(BASELINE_S)  # the baseline: traffic before the migration
        t0 = time.time()
        proc = subprocess.run(
            ["nice", "-n", str(NICE), os.path.join(REPO, "tests", "lab", "run"),
             os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
             "-i", os.path.join(LAB, "nodes.cloudhop.yml"),
             "-i", os.path.join(LAB, "user_clusters.yml"),
             os.path.join(REPO, "playbooks", "migrate.yml"), "-e", "cloudhop_confirm_destroy=true",
             "-e", "report_probe_log=%s" % os.path.join(LAB, "probe.jsonl")],
            cwd=REPO, capture_output=True, text=True, check=False,
            env=dict(os.environ, ANSIBLE_LOG_PATH=os.path.join(LAB, "ansible.log")))
        t1 = time.time()
        lab("probe", "stop")
        if proc.returncode != 0:
            raise SystemExit("the migration of %d nodes failed:\n%s" % (workers, proc.stdout[-4000:]))
        ledger = json.loads(subprocess.run(
            [os.path.join(REPO, "tests", "lab", "run"), sys.executable, "-c", LEDGER],
            cwd=REPO, capture_output=True, text=True, check=True).stdout)
        with open(os.path.join(LAB, "probe.jsonl"), encoding="utf-8") as fh:
            records = sorted((json.loads(line) for line in fh if line.strip()),
                             key=lambda r: r["t"])
        tasks = task_starts(os.path.join(LAB, "ansible.log"))
    finally:
        lab("down")
    phases = {name: round(epoch(p["finished"]) - epoch(p["started"]), 1)
              for name, p in sorted(ledger.items(), key=lambda kv: kv[1]["started"])}
    before = window(records, t0 - BASELINE_S, t0)
    during = window(records, t0, t1)
    return {"workers": workers, "vpn": VPN, "controller_nice": NICE,
            "migration_s": round(t1 - t0, 1),
            "with_lab_up_s": round(time.monotonic() - started, 1), "phases_s": phases,
            "probe_before": before, "probe_during": during,
            "failed_requests": failures([r for r in records if t0 <= r["t"] < t1], tasks, ledger),
            "slow_requests": slow([r for r in records if t0 <= r["t"] < t1], tasks, ledger),
            "p99_increase_ms": round(during["p99_ms"] - before["p99_ms"], 2)
            if during["p99_ms"] is not None and before["p99_ms"] is not None else None,
            "phase_probe": {name: window(records, epoch(p["started"]), epoch(p["finished"]))
                            for name, p in ledger.items()}}


if __name__ == "__main__":
    if VPN not in LAB_UP:
        raise SystemExit("BENCH_VPN_BACKEND: %s is not one of %s" % (VPN, ", ".join(LAB_UP)))
    print(json.dumps({"runs": [run(int(n)) for n in sys.argv[1:]]}))
