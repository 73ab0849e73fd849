"""One-way latency the VPN overlay adds (runs inside clh-ctl on a fresh lab).

Pod-to-pod ping between two vSphere nodes, first with flannel on ens192, then with the VPN
overlay (openvpn-client DaemonSet, --client-to-client on the paused cluster's server,
canal_iface=kube, canal restarted). One-way added latency = (median RTT after - before) / 2.
BENCH_VPN_EXTRA_ARGS adds server args (e.g. --tcp-nodelay). Leaves the lab in overlay mode:
run it on a lab that is brought down afterwards.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "lab"))
from kubernetes import client, config  # noqa: E402  pylint: disable=wrong-import-position

from cloudhop_lab.fixture import openvpn_client_pod_spec  # noqa: E402  pylint: disable=C0413
from cloudhop_lab.dataplane.netns import ns_name  # noqa: E402  pylint: disable=C0413

NODE_NS = ns_name("n-")  # this lab instance's node namespaces
POD_NS = ns_name("p-")  # this lab instance's pod namespaces

CID = "x8p9sk2tzv"
COUNT = int(os.environ.get("BENCH_PINGS", "200"))
EXTRA = os.environ.get("BENCH_VPN_EXTRA_ARGS", "").split()


def wait(fn, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn():
                return
        except (client.ApiException, AttributeError, TypeError):
            pass
        time.sleep(0.2)
    raise SystemExit("timed out")


def two_pods(core):
    """Two pods (bench-0, bench-1) on the first two nodes by name, once they have addresses:
    (the nodes, the pods)."""
    nodes = sorted(n.metadata.name for n in core.list_node().items)[:2]
    pods = []
    for i, node in enumerate(nodes):
        name = "bench-%d" % i
        core.create_namespaced_pod("default", {"metadata": {"name": name}, "spec": {
            "nodeName": node, "containers": [{"name": "e", "image": "cloudhop/echo:lab"}]}})
        wait(lambda name=name: core.read_namespaced_pod(name, "default").status.pod_ip)
        pods.append(core.read_namespaced_pod(name, "default"))
    return nodes, pods


def rtts(src_ns, dst_ip):
    out = subprocess.run(["ip", "netns", "exec", src_ns, "ping", "-c", str(COUNT), "-i", "0.01",
                          dst_ip], capture_output=True, text=True, check=True).stdout
    return [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]


def main():
    api = config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"])
    seed = config.new_client_from_config(os.environ["CLH_SEED_KUBECONFIG"])
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    nodes, pods = two_pods(core)
    src = POD_NS + pods[0].metadata.uid[:12]
    wait(lambda: subprocess.run(["ip", "netns", "exec", src, "ping", "-c1", "-W1",
                                 pods[1].status.pod_ip], capture_output=True,
                                check=False).returncode == 0)
    before = rtts(src, pods[1].status.pod_ip)
    # the overlay, as the migration sets it up
    custom = client.CustomObjectsApi(seed)
    custom.patch_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", CID,
                                       {"spec": {"pause": True}})
    seed_apps = client.AppsV1Api(seed)
    dep = seed_apps.read_namespaced_deployment("openvpn-server", "cluster-" + CID)
    args = dep.spec.template.spec.containers[0].args + ["--client-to-client"] + EXTRA
    seed_apps.patch_namespaced_deployment("openvpn-server", "cluster-" + CID, {"spec": {
        "template": {"spec": {"containers": [{"name": "openvpn-server", "args": args}]}}}})
    spec = openvpn_client_pod_spec()
    spec.update(hostNetwork=True, tolerations=[{"operator": "Exists"}])
    apps.create_namespaced_daemon_set("kube-system", {
        "metadata": {"name": "openvpn-client", "labels": {"role": "openvpn-client"}},
        "spec": {"selector": {"matchLabels": {"role": "openvpn-client"}},
                 "template": {"metadata": {"labels": {"role": "openvpn-client"}},
                              "spec": spec}}})
    wait(lambda: apps.read_namespaced_daemon_set("openvpn-client", "kube-system")
         .status.number_ready == len(core.list_node().items))
    core.patch_namespaced_config_map("canal-config", "kube-system",
                                     {"data": {"canal_iface": "kube"}})
    apps.patch_namespaced_daemon_set("canal", "kube-system", {"spec": {"template": {
        "metadata": {"annotations": {"restartedAt": str(time.time())}}}}})
    gen = apps.read_namespaced_daemon_set("canal", "kube-system").metadata.generation

    def canal_restarted():
        st = apps.read_namespaced_daemon_set("canal", "kube-system").status
        return st.observed_generation == gen and \
            st.number_ready == st.updated_number_scheduled == st.desired_number_scheduled
    wait(canal_restarted)
    link = subprocess.run(["ip", "-n", NODE_NS + nodes[0], "-d", "link", "show", "flannel.1"],
                          capture_output=True, text=True, check=True).stdout
    assert " local 10.20.0." in link, link
    wait(lambda: subprocess.run(["ip", "netns", "exec", src, "ping", "-c1", "-W1",
                                 pods[1].status.pod_ip], capture_output=True,
                                check=False).returncode == 0)
    after = rtts(src, pods[1].status.pod_ip)
    b, a = statistics.median(before), statistics.median(after)
    print(json.dumps({"pings": COUNT, "rtt_ms_p50_flannel_on_ens192": round(b, 3),
                      "rtt_ms_p50_flannel_over_vpn": round(a, 3),
                      "one_way_added_ms_p50": round((a - b) / 2, 3),
                      "rtt_ms_p99_over_vpn": round(sorted(after)[int(0.99 * (len(after) - 1))],
                                                   3)}))


if __name__ == "__main__":
    main()
