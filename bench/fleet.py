"""make bench: a fleet - the migration of 1 and of 3 user clusters (lab up --clusters N), each
cluster under a probe of its own, all clusters in one migrate.yml run (each its own nodes
source). Per N: the run's wall time, the controller's CPU (user + system of ansible-playbook
and everything it started: forks, ssh) and its peak memory (PSS of the whole process group,
sampled every second), each also per cluster; failed requests per cluster; and the changed
count of a second run (0: nothing left to do). Then the ratio of the 3-cluster time to the
1-cluster time. Prints one JSON object.

Usage: fleet.py [ROUNDS [SIZES]]   (run from the host, as root: it brings labs up and down)
SIZES: cluster counts, comma-separated (default 1,3: the ratio is of the last to the first).
"""

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (os.path.join(REPO, "tests", "lab"), os.environ.get("PYTHONPATH")) if p)
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

from cloudhop_lab.cli import lab_dir  # noqa: E402  pylint: disable=wrong-import-position
from demo_phases import lab  # noqa: E402  pylint: disable=wrong-import-position

LAB = lab_dir()


def names(n):
    """The lab's names of its first n user clusters: user, user2, user3, ..."""
    return ["user"] + ["user%d" % k for k in range(2, n + 1)]


def group_pss_kib(pgid):
    """PSS of every process of process group ``pgid``, KiB."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid, encoding="utf-8") as fh:
                if int(fh.read().rsplit(")", 1)[1].split()[2]) != pgid:
                    continue
            with open("/proc/%s/smaps_rollup" % pid, encoding="utf-8") as fh:
                total += next(int(ln.split()[1]) for ln in fh if ln.startswith("Pss:"))
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return total


def migrate(n):
    """One migrate.yml over the lab's n clusters: (seconds, cpu seconds, peak PSS MiB, output)."""
    cmd = [os.path.join(REPO, "tests", "lab", "run"),
           os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
           "-i", os.path.join(LAB, "nodes.cloudhop.yml")]
    for name in names(n)[1:]:
        cmd += ["-i", os.path.join(LAB, "nodes-%s.cloudhop.yml" % name)]
    cmd += ["-i", os.path.join(LAB, "user_clusters.yml"),
            os.path.join(REPO, "playbooks", "migrate.yml"), "-e", "cloudhop_confirm_destroy=true"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True,
                            env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                                     ANSIBLE_FORCE_COLOR="0"))
    peak, done = [0], threading.Event()

    def sample():
        while not done.wait(1.0):
            peak[0] = max(peak[0], group_pss_kib(proc.pid))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.communicate()[0]
    seconds = time.monotonic() - t0
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit("migrate.yml over %d clusters failed (rc %d):\n%s"
                         % (n, proc.returncode, out[-4000:]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, peak[0] / 1024.0, out


def changed(out):
    return sum(int(c) for c in re.findall(r"^\S+ +: ok=\d+ +changed=(\d+)",
                                          out.rsplit("PLAY RECAP", 1)[-1], re.M))


def run(n):
    lab("up", "--clusters", str(n), "--dns-ttl", "10")
    try:
        hosts = ["app.example.test"] + ["app%d.example.test" % k for k in range(2, n + 1)]
        for host in hosts:
            lab("wait-app", "--host", host)
        for name, host in zip(names(n), hosts):
            lab("probe", "start", "--name", name, "--host", host, "--rate", "10")
        seconds, cpu, pss, _out = migrate(n)
        again = changed(migrate(n)[3])
        probes = [json.loads(lab("probe", "stop", "--name", name)) for name in names(n)]
    finally:
        lab("down")
    return {"clusters": n, "seconds": round(seconds, 1), "cpu_s": round(cpu, 1),
            "cpu_s_per_cluster": round(cpu / n, 1), "peak_pss_mib": round(pss, 1),
            "peak_pss_mib_per_cluster": round(pss / n, 1), "second_run_changed": again,
            "requests": [p["total"] for p in probes], "failed": [p["failed"] for p in probes]}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    sizes = [int(n) for n in (sys.argv[2] if len(sys.argv) > 2 else "1,3").split(",")]
    runs = {n: [] for n in sizes}
    for _r in range(rounds):
        for n in sizes:  # alternated, so a noisy stretch of the machine falls on every size
            runs[n].append(run(n))
            print(json.dumps(runs[n][-1]), file=sys.stderr, flush=True)

    def med(n, key):
        return round(statistics.median(r[key] for r in runs[n]), 1)
    out = {"rounds": rounds, "runs": {str(n): rs for n, rs in runs.items()}}
    for n in sizes:
        out["clusters_%d" % n] = {k: med(n, k) for k in (
            "seconds", "cpu_s", "cpu_s_per_cluster", "peak_pss_mib", "peak_pss_mib_per_cluster")}
    first, last = sizes[0], sizes[-1]
    out["ratio_%d_to_%d" % (last, first)] = round(
        out["clusters_%d" % last]["seconds"] / out["clusters_%d" % first]["seconds"], 2)
    out["failed_max"] = max(f for n in runs for r in runs[n] for f in r["failed"])
    out["second_run_changed_max"] = max(r["second_run_changed"] for n in runs for r in runs[n])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
