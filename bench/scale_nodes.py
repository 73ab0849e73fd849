"""Scale the lab's vSphere MachineDeployment to N nodes (runs inside clh-ctl).

Measures the time until N nodes are Ready with flannel configured (canal pods Ready on every
node) and the memory of the lab's processes (sum of PSS, so shared pages count once: the lab daemon and every
process in a clh-* namespace) and the machine's used memory, at 3 nodes and at N, and the lab daemon's CPU while nothing
happens (10 s). Prints JSON.
"""

import json
import os
import subprocess
import sys
import time

from kubernetes import client, config

from cloudhop_lab.dataplane.netns import PREFIX

MD = ("cluster.k8s.io", "v1alpha1", "kube-system", "machinedeployments",
      "to-migrate-vsphere-node")


def labd_pids():
    # this lab's daemon only (another lab instance may run beside it)
    out = subprocess.run(["pgrep", "-f", "cloudhop_lab.labd --dir %s$" % os.environ["CLH_LAB_DIR"]],
                         capture_output=True, text=True, check=False).stdout
    return out.split()


def labd_cpu_percent(seconds=10.0):
    """The lab daemon's CPU (user + system, % of one core) over ``seconds`` with nothing to do:
    its controllers and flannel agents must wait for changes, not poll."""
    def ticks():
        total = 0
        for pid in labd_pids():
            with open("/proc/%s/stat" % pid, encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total
    t0, c0 = time.monotonic(), ticks()
    time.sleep(seconds)
    return round(100.0 * (ticks() - c0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0), 1)


def lab_pss_mib():
    pids = set()
    for ns in os.listdir("/run/netns"):
        if ns.startswith(PREFIX):
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                                 check=False).stdout
            pids.update(out.split())
    pids.update(labd_pids())
    total = 0
    for pid in pids:
        try:
            with open("/proc/%s/smaps_rollup" % pid, encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024.0, 1), len(pids)


def used_mib():
    with open("/proc/meminfo", encoding="utf-8") as fh:
        info = {line.split(":")[0]: int(line.split()[1]) for line in fh}
    return (info["MemTotal"] - info["MemAvailable"]) // 1024


def scale_to(custom, apps, n, t0=None):
    """Scale the vSphere MachineDeployment to n nodes and wait until n are Ready with canal."""
    t0 = t0 or time.monotonic()
    custom.patch_namespaced_custom_object(*MD, {"spec": {"replicas": n}})
    while True:
        md = custom.get_namespaced_custom_object(*MD)
        canal = apps.read_namespaced_daemon_set("canal", "kube-system").status
        if (md.get("status") or {}).get("readyReplicas") == n and canal.number_ready == n:
            return
        if time.monotonic() - t0 > 900:
            raise SystemExit("timed out at %s nodes" % (md.get("status") or {}).get(
                "readyReplicas"))
        time.sleep(0.2)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    api = config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"])
    custom = client.CustomObjectsApi(api)
    apps = client.AppsV1Api(api)
    base_cpu = labd_cpu_percent()
    base_mem, base_procs = lab_pss_mib()
    base_used = used_mib()
    t0 = time.monotonic()
    scale_to(custom, apps, n, t0)
    elapsed = time.monotonic() - t0
    time.sleep(2)
    mem, procs = lab_pss_mib()
    used = used_mib()
    cpu = labd_cpu_percent()
    print(json.dumps({"nodes": n, "seconds_to_ready": round(elapsed, 1),
                      "pss_mib_at_3": base_mem, "pss_mib_at_n": mem,
                      "pss_mib_per_node": round((mem - base_mem) / (n - 3), 2),
                      "machine_used_mib_delta": used - base_used,
                      "processes_at_3": base_procs, "processes_at_n": procs,
                      "labd_cpu_percent_idle_at_3": base_cpu, "labd_cpu_percent_idle_at_n": cpu}))


if __name__ == "__main__":
    main()
