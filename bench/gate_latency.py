"""make bench: the time from a gate's condition becoming true to the next step starting.

canal: bench/gate_latency.yml runs the roles' canal rollout gate (restart_canal.yml: the rollout
restart and the wait on a watch, cloudhop.k8s_migration.rollout_restart); a watch on the DaemonSet here records
when its status first meets that wait's condition for the new generation (observedGeneration,
updated = ready = desired). until: for comparison, the k8s_info `until` pattern (one module run
per poll) waits for a ConfigMap key that turns true at a random moment. In both, the next task
prints when it started. Runs inside clh-ctl (tests/lab/run); prints one JSON object.

Usage: gate_latency.py ROUNDS
"""

import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time

from kubernetes import client, config, watch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def rolled_out(ds):
    """kubernetes.core's DaemonSet readiness (waiter.daemonset_ready), on a V1DaemonSet."""
    st = ds.status
    return bool(st and st.desired_number_scheduled is not None
                and (st.updated_number_scheduled or 0) == st.desired_number_scheduled
                and st.number_ready == st.desired_number_scheduled
                and st.observed_generation == ds.metadata.generation)


def playbook(kubeconfig, kind, name=""):
    return subprocess.Popen(
        [os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
         os.path.join(HERE, "gate_latency.yml"), "-e", "gate_repo=%s" % REPO,
         "-e", "gate_kubeconfig=%s" % kubeconfig, "-e", "gate_kind=%s" % kind,
         "-e", "gate_name=%s" % name],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"))


def finished(proc):
    out = proc.communicate(timeout=300)[0]
    found = re.search(r"next_step_started=([0-9.]+)", out)
    if proc.returncode != 0 or not found:
        raise SystemExit("the gate playbook failed:\n" + out[-3000:])
    return float(found.group(1))


def canal_round(api, kubeconfig):
    """One rollout restart through the roles' gate -> seconds from the DaemonSet first meeting
    the condition (for a generation after the one before the restart) to the next task."""
    before = api.read_namespaced_daemon_set("canal", "kube-system").metadata.generation
    seen = {}
    listening, ready = threading.Event(), threading.Event()
    stream = watch.Watch()

    def watcher():
        for event in stream.stream(api.list_namespaced_daemon_set, "kube-system",
                                   field_selector="metadata.name=canal", timeout_seconds=120):
            listening.set()  # the watch's first event: the DaemonSet as it is now
            ds = event["object"]
            if ds.metadata.generation > before and rolled_out(ds):
                seen["at"] = time.time()
                break
        ready.set()

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    if not listening.wait(30):
        raise SystemExit("the watch on canal never started")
    next_at = finished(playbook(kubeconfig, "canal"))
    ready.wait(30)
    stream.stop()
    if "at" not in seen:
        raise SystemExit("the watch never saw canal rolled out")
    return next_at - seen["at"]


def until_round(core, kubeconfig, rng, i):
    name = "bench-gate-%d" % i
    core.create_namespaced_config_map("default", {"metadata": {"name": name},
                                                  "data": {"ready": "no"}})
    proc = playbook(kubeconfig, "until", name)
    time.sleep(4 + rng.uniform(0, 2))  # the wait has started polling
    core.patch_namespaced_config_map(name, "default", {"data": {"ready": "yes"}})
    true_at = time.time()
    next_at = finished(proc)
    core.delete_namespaced_config_map(name, "default")
    return next_at - true_at


def figures(latencies):
    return {"rounds": len(latencies), "median_s": round(statistics.median(latencies), 3),
            "max_s": round(max(latencies), 3), "runs_s": [round(v, 3) for v in latencies]}


def main(rounds):
    kubeconfig = os.environ["CLH_USER_KUBECONFIG"]
    api_client = config.new_client_from_config(kubeconfig)
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    rng = random.Random(1)
    canal = [canal_round(apps, kubeconfig) for dummy in range(rounds)]
    until = [until_round(core, kubeconfig, rng, i) for i in range(rounds)]
    return dict(figures(canal), until_polling=figures(until))


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))
