"""What each VPN backend adds between pods (runs inside clh-ctl on a fresh lab, issue 24).

The lab is up with --konnectivity (the migration brings its own hubs), and with
--wireguard-hubs 2 for WireGuard. Two pods on two vSphere nodes: their RTT (ping every 10 ms)
and TCP throughput (iperf3, one stream) with flannel on ens192; then the collection's own
phases up to vpn_overlay (preflight, workers_pause, seed_vpn, vpn_overlay: the hub(s), the
node agents, canal moved onto the tunnel) and the same again, now through the VPN hub.

OpenVPN: one hub, TCP, the role's default server args (--client-to-client --tcp-nodelay).
WireGuard: two hubs, UDP; the lab's nodes and hubs run wireguard-go (userspace: the kernel
module, which real nodes use, is not in this machine's kernel), and the tunnel's MTU is 1500
(the lab's pods have 1450), so the nodes fragment full-size WireGuard packets.

Prints one JSON line. Leaves the lab in overlay mode: run it on a lab brought down afterwards.
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

from cloudhop_lab.dataplane.netns import ns_name  # noqa: E402  pylint: disable=C0413
from api_latency import pct  # noqa: E402  pylint: disable=C0413
from vpn_latency import COUNT as PINGS, rtts, two_pods, wait  # noqa: E402  pylint: disable=C0413

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
POD_NS = ns_name("p-")  # this lab instance's pod namespaces
IPERF_SECONDS = int(os.environ.get("BENCH_IPERF_SECONDS", "5"))


def listening(ns, port):
    return (":%d " % port) in subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn"],
                                             capture_output=True, text=True, check=True).stdout


def throughput(src_ns, dst_ns, dst_ip):
    """TCP throughput src -> dst in Mbit/s (iperf3, one stream, what the receiver got)."""
    why = ""
    for _attempt in range(5):
        server = subprocess.Popen(["ip", "netns", "exec", dst_ns, "iperf3", "-s", "-1", "-p",
                                   "5201"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait(lambda: listening(dst_ns, 5201), timeout=10)
            proc = subprocess.run(["ip", "netns", "exec", src_ns, "iperf3", "-c", dst_ip, "-p",
                                   "5201", "-t", str(IPERF_SECONDS), "-J"],
                                  capture_output=True, text=True, check=False)
            try:
                result = json.loads(proc.stdout)
                return round(result["end"]["sum_received"]["bits_per_second"] / 1e6, 1)
            except (ValueError, KeyError):
                why = proc.stdout[-1000:] + proc.stderr[-500:]
        finally:
            server.kill()
            server.wait()
        time.sleep(1)
    raise SystemExit("iperf3 failed: %s" % why)


def measure(src_ns, dst_ns, dst_ip):
    wait(lambda: subprocess.run(["ip", "netns", "exec", src_ns, "ping", "-c1", "-W1", dst_ip],
                                capture_output=True, check=False).returncode == 0)
    times = rtts(src_ns, dst_ip)
    return {"rtt_ms_p50": round(statistics.median(times), 3),
            "rtt_ms_p99": round(pct(times, 99), 3),
            "lost": PINGS - len(times),
            "tcp_mbit_s": throughput(src_ns, dst_ns, dst_ip)}


def vxlan_local(node):
    link = subprocess.run(["ip", "-n", ns_name("n-") + node, "-d", "link", "show", "flannel.1"],
                          capture_output=True, text=True, check=True).stdout
    return re.search(r" local (\S+)", link).group(1)


def main():
    backend = sys.argv[1]
    api = config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"])
    core = client.CoreV1Api(api)
    nodes, pods = two_pods(core)
    src, dst = (POD_NS + p.metadata.uid[:12] for p in pods)
    dst_ip = pods[1].status.pod_ip
    before = measure(src, dst, dst_ip)
    vxlan_before = vxlan_local(nodes[0])
    lab = os.environ["CLH_LAB_DIR"]
    started = time.monotonic()
    proc = subprocess.run(
        [os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
         "-i", os.path.join(lab, "nodes.cloudhop.yml"), "-i", os.path.join(lab, "user_clusters.yml"),
         os.path.join(REPO, "playbooks", "migrate.yml"),
         "--tags", "preflight,workers_pause,seed_vpn,vpn_overlay"],
        cwd=REPO, capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg")))
    if proc.returncode != 0:
        raise SystemExit("the phases up to vpn_overlay failed:\n" + proc.stdout[-3000:])
    phases_s = time.monotonic() - started
    # flannel's VXLAN now starts on the node's VPN address: the pods' traffic is in the tunnel
    vxlan_after = vxlan_local(nodes[0])
    assert vxlan_after != vxlan_before, (vxlan_before, vxlan_after)
    after = measure(src, dst, dst_ip)
    print(json.dumps({"backend": backend, "pings": PINGS, "iperf_seconds": IPERF_SECONDS,
                      "flannel_on_ens192": before, "flannel_over_vpn": after,
                      "rtt_ms_p50_added": round(after["rtt_ms_p50"] - before["rtt_ms_p50"], 3),
                      "rtt_ms_p99_added": round(after["rtt_ms_p99"] - before["rtt_ms_p99"], 3),
                      "phases_to_overlay_s": round(phases_s, 1)}))


if __name__ == "__main__":
    main()
