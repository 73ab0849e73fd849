"""make bench: the time from a gate's condition becoming true to the next step starting. A
ConfigMap's key turns true at a random moment while bench/gate_latency.yml waits for it the way
the roles do (k8s_info until, delay cloudhop_poll_interval); the next task prints when it
started. Runs inside clh-ctl (tests/lab/run); prints one JSON object.

Usage: gate_latency.py ROUNDS
"""

import json
import os
import random
import re
import statistics
import subprocess
import sys
import time

from kubernetes import client, config

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def main(rounds):
    kubeconfig = os.environ["CLH_USER_KUBECONFIG"]
    core = client.CoreV1Api(config.new_client_from_config(kubeconfig))
    rng = random.Random(1)
    latencies = []
    for i in range(rounds):
        name = "bench-gate-%d" % i
        core.create_namespaced_config_map("default", {"metadata": {"name": name},
                                                      "data": {"ready": "no"}})
        proc = subprocess.Popen(
            [os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
             os.path.join(HERE, "gate_latency.yml"), "-e", "gate_repo=%s" % REPO,
             "-e", "gate_kubeconfig=%s" % kubeconfig, "-e", "gate_name=%s" % name],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"))
        time.sleep(4 + rng.uniform(0, 2))  # the wait has started polling
        core.patch_namespaced_config_map(name, "default", {"data": {"ready": "yes"}})
        true_at = time.time()
        out = proc.communicate(timeout=120)[0]
        core.delete_namespaced_config_map(name, "default")
        found = re.search(r"next_step_started=([0-9.]+)", out)
        if proc.returncode != 0 or not found:
            raise SystemExit("the gate playbook failed:\n" + out[-3000:])
        latencies.append(float(found.group(1)) - true_at)
    return {"rounds": rounds, "median_s": round(statistics.median(latencies), 3),
            "max_s": round(max(latencies), 3), "runs_s": [round(v, 3) for v in latencies]}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))
