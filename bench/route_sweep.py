"""route_verify on N lab nodes against a bare parallel SSH sweep (runs inside clh-ctl).

For each size: scale the vSphere MachineDeployment to N nodes, then, in alternating rounds,
- the bare sweep: one ``ssh root@node ip -j route`` per node, all at once, fresh connections;
- route_verify as the roles' gates run it: ``bench/route_verify.yml``, one task on localhost
  with ``nodes:`` - the command on every node at once, through Ansible's ssh connection plugin
  (the collection's ansible.cfg: ControlPersist);
- route_verify as a play over the nodes: ``bench/route_verify_hosts.yml``, a task per host,
  forks = N - for comparison;
each round with an empty ControlPath directory, so every connection is new, as in the bare
sweep. Reports medians: the bare sweep; each route_verify task (from the task's start to its
last result: ``callback_plugins/sweep_timer.py``); the play around it (between two timestamp
tasks) and the whole ansible-playbook command (with its start-up) of the fan-out; and their
ratios to the bare sweep.
Usage: route_sweep.py ROUNDS N [N ...]. Prints JSON.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scale_nodes import scale_to  # noqa: E402  pylint: disable=wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LAB = os.environ["CLH_LAB_DIR"]


def node_ips(core):
    return [next(a.address for a in n.status.addresses if a.type == "InternalIP")
            for n in core.list_node().items if n.metadata.name.startswith("to-migrate-vsphere")]


def bare_sweep(ips):
    ssh = ["ssh", "-i", os.path.join(LAB, "ssh", "id_ed25519"), "-o", "BatchMode=yes",
           "-o", "UserKnownHostsFile=" + os.path.join(LAB, "ssh", "known_hosts"),
           "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=no"]

    def one(ip):
        out = subprocess.run(ssh + ["root@" + ip, "ip", "-j", "route"], capture_output=True,
                             text=True, check=False, timeout=120)
        return out.returncode == 0 and out.stdout.startswith("[")
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(ips)) as pool:
        ok = list(pool.map(one, ips))
    took = time.monotonic() - t0
    assert all(ok), "the bare sweep failed on %d nodes" % ok.count(False)
    return took


def route_verify(n, playbook="route_verify.yml"):
    """(task s, play s, command s) of one run of ``playbook`` on the n nodes."""
    with tempfile.TemporaryDirectory() as cp_dir:
        timer = os.path.join(cp_dir, "timer.json")
        forks = os.environ.get("BENCH_FORKS") or str(max(n, 5))  # BENCH_FORKS: to experiment
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                   ANSIBLE_SSH_CONTROL_PATH_DIR=cp_dir, ANSIBLE_FORKS=forks,
                   ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED="sweep_timer", CLOUDHOP_SWEEP_TIMER=timer)
        t0 = time.monotonic()
        proc = subprocess.run(
            [os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
             "-i", os.path.join(LAB, "nodes.cloudhop.yml"), os.path.join(HERE, playbook)],
            capture_output=True, text=True, env=env, cwd=REPO, check=False, timeout=600)
        wall = time.monotonic() - t0
        subprocess.run(["pkill", "-f", cp_dir], check=False)  # the ControlPersist masters
        assert proc.returncode == 0, proc.stdout[-3000:]
        with open(timer, encoding="utf-8") as fh:
            clock = json.load(fh)
    marks = [float(line.split("SWEEP-T=")[1].split('"')[0]) for line in proc.stdout.splitlines()
             if "SWEEP-T=" in line]
    assert len(marks) == 2, proc.stdout[-3000:]
    # the fan-out has one result (localhost, its assert checks every node); the play, one a node
    want = 1 if playbook == "route_verify.yml" else n
    assert len(clock["results"]) == want, clock
    if want == n:
        checked = proc.stdout.count("ok: [to-migrate-vsphere")
        assert checked == n, "route_verify answered on %d of %d nodes" % (checked, n)
    return max(clock["results"].values()) - clock["task_start"], marks[1] - marks[0], wall


def main():
    rounds, sizes = int(sys.argv[1]), [int(a) for a in sys.argv[2:]]
    api = config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"])
    custom, apps, core = client.CustomObjectsApi(api), client.AppsV1Api(api), client.CoreV1Api(api)
    out = []
    for n in sizes:
        scale_to(custom, apps, n)
        ips = node_ips(core)
        assert len(ips) == n, (len(ips), n)
        bare, task, play, wall, hosts = [], [], [], [], []
        for _r in range(rounds):
            bare.append(bare_sweep(ips))
            t, p, w = route_verify(n)
            task.append(t)
            play.append(p)
            wall.append(w)
            hosts.append(route_verify(n, "route_verify_hosts.yml")[0])
        b, t = statistics.median(bare), statistics.median(task)
        p, w, h = statistics.median(play), statistics.median(wall), statistics.median(hosts)
        out.append({"nodes": n, "rounds": rounds, "bare_sweep_s": round(b, 2),
                    "route_verify_task_s": round(t, 2), "route_verify_play_s": round(p, 2),
                    "ansible_playbook_s": round(w, 2), "ratio_task": round(t / b, 2),
                    "ratio_play": round(p / b, 2), "ratio_command": round(w / b, 2),
                    "per_host_play_task_s": round(h, 2), "ratio_per_host_play": round(h / b, 2),
                    "runs": {"bare": [round(x, 2) for x in bare],
                             "task": [round(x, 2) for x in task],
                             "play": [round(x, 2) for x in play],
                             "per_host_play": [round(x, 2) for x in hosts]}})
        print(json.dumps(out[-1]), file=sys.stderr, flush=True)  # progress, one line a size
    print(json.dumps(out))


if __name__ == "__main__":
    main()
