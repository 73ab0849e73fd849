"""make bench: lab-up time (also of the move world and of 3 clusters, and memory per cluster),
the migration of a fleet (1 and 3 clusters in one run: time, ratio, controller CPU and memory),
the MongoDB double (insert latency, step-down, memory per member),
API latency, scale, VPN latency, probe cost, route_verify against a
bare SSH sweep, gate latency and (not in the quick mode) the demo migration at 3 and 10 nodes; writes
bench/results.json and a Markdown table."""

import json
import os
import statistics
import subprocess
import sys
import time

from cloudhop_lab.cli import lab_dir
from cloudhop_lab.dataplane.netns import ns_name

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
QUICK = os.environ.get("BENCH_QUICK") == "1"


def lab(*args):
    subprocess.run([sys.executable, "-m", "cloudhop_lab", *args], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)


def in_fresh_lab(script, env=None, up=()):
    lab("up", *up)
    time.sleep(3)
    try:
        out = subprocess.run([os.path.join(REPO, "tests", "lab", "run"), sys.executable] + script,
                             check=True, cwd=REPO, capture_output=True, text=True,
                             env=dict(os.environ, **(env or {}))).stdout
    finally:
        lab("down")
    return json.loads(out.strip().splitlines()[-1])


def probe_overhead(seconds=10):
    """CPU the traffic probe uses at its default rate (20 requests/s)."""
    lab("up")
    time.sleep(4)
    try:
        subprocess.run([sys.executable, "-m", "cloudhop_lab", "probe", "start"], check=True,
                       cwd=REPO, stdout=subprocess.DEVNULL)
        with open(os.path.join(lab_dir(), "probe.pid"), encoding="utf-8") as fh:
            pid = fh.read().strip()
        time.sleep(2)
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu():
            total = 0
            for child in [pid] + subprocess.run(["pgrep", "-P", pid], capture_output=True,
                                                text=True, check=False).stdout.split():
                with open("/proc/%s/stat" % child, encoding="utf-8") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            return total / ticks
        c0, t0 = cpu(), time.monotonic()
        time.sleep(seconds)
        used = cpu() - c0
        elapsed = time.monotonic() - t0
        out = subprocess.run([sys.executable, "-m", "cloudhop_lab", "probe", "stop"],
                             check=True, cwd=REPO, capture_output=True, text=True).stdout
        summary = json.loads(out)
    finally:
        lab("down")
    return {"rate": summary["rate"], "cpu_percent": round(100 * used / elapsed, 1),
            "failed": summary["failed"], "latency_ms": summary["latency_ms"]}


CONVERGED = """
import json, socket, subprocess, sys, time, urllib.request
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    ip = subprocess.run(["dig", "+short", "@198.18.0.53", "app.example.test"],
                        capture_output=True, text=True).stdout.strip()
    if ip:
        try:
            req = urllib.request.Request("http://%s/" % ip, headers={"Host": "app.example.test"})
            if json.loads(urllib.request.urlopen(req, timeout=1).read())["cloud"] == "vsphere":
                sys.exit(0)
        except (OSError, ValueError):
            pass
    time.sleep(0.05)
sys.exit(1)
"""


def fixture_converged():
    """lab-up until the app answers through DNS, the vSphere LB and the ingress."""
    t = time.monotonic()
    lab("up")
    subprocess.run(["ip", "netns", "exec", ns_name("client"), sys.executable, "-c", CONVERGED],
                   check=True)
    elapsed = time.monotonic() - t
    lab("down")
    return elapsed


VPN_TITLE = {"openvpn": "OpenVPN hub (TCP, --tcp-nodelay)",
             "wireguard": "WireGuard, 2 hubs (wireguard-go, userspace)"}


def vpn_backend_summary(runs):
    """The medians over rounds of one backend's vpn_backends.py figures."""
    def med(fn):
        return round(statistics.median(fn(r) for r in runs), 3)
    return {"rounds": len(runs),
            "rtt_ms_p50_added": med(lambda r: r["rtt_ms_p50_added"]),
            "rtt_ms_p99_added": med(lambda r: r["rtt_ms_p99_added"]),
            "rtt_ms_p50_vpn": med(lambda r: r["flannel_over_vpn"]["rtt_ms_p50"]),
            "tcp_mbit_s_ens192": med(lambda r: r["flannel_on_ens192"]["tcp_mbit_s"]),
            "tcp_mbit_s_vpn": med(lambda r: r["flannel_over_vpn"]["tcp_mbit_s"]),
            "runs": runs}


def main():
    converged = [fixture_converged() for _i in range(1 if QUICK else 3)]
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
    scale = in_fresh_lab([os.path.join(HERE, "scale_nodes.py"), "10" if QUICK else "100"])
    pings = "20" if QUICK else "500"
    # the seed's openvpn-server set up by hand, without and with --tcp-nodelay (full run only:
    # vpn_backends below checks the same overlay as the collection makes it)
    vpn = vpn_nodelay = None
    if not QUICK:
        vpn = in_fresh_lab([os.path.join(HERE, "vpn_latency.py")], {"BENCH_PINGS": pings})
        vpn_nodelay = in_fresh_lab([os.path.join(HERE, "vpn_latency.py")],
                                   {"BENCH_PINGS": pings, "BENCH_VPN_EXTRA_ARGS": "--tcp-nodelay"})
    # OpenVPN (one hub, --tcp-nodelay) beside WireGuard (two hubs, wireguard-go), each set up by
    # the collection's own phases up to vpn_overlay: RTT and TCP throughput between two pods
    backends = {}
    for _i in range(1 if QUICK else 3):
        for backend, up in (("openvpn", ["--konnectivity"]),
                            ("wireguard", ["--konnectivity", "--wireguard-hubs", "2"])):
            backends.setdefault(backend, []).append(in_fresh_lab(
                [os.path.join(HERE, "vpn_backends.py"), backend],
                {"BENCH_PINGS": "50" if QUICK else "1000",
                 "BENCH_IPERF_SECONDS": "1" if QUICK else "5"}, up=up))
    probe = probe_overhead()
    # the lab's MongoDB double: insert latency, step-down to a writable primary, memory
    mongo = json.loads(subprocess.run(
        [sys.executable, os.path.join(HERE, "mongo.py")], check=True, cwd=REPO,
        capture_output=True, text=True).stdout.strip().splitlines()[-1])
    # several clusters: the move world's and --clusters 3's lab-up, memory per cluster
    worlds = json.loads(subprocess.run(
        [sys.executable, os.path.join(HERE, "worlds.py")], check=True, cwd=REPO,
        capture_output=True, text=True,
        env=dict(os.environ, BENCH_ROUNDS="1" if QUICK else "3")).stdout.strip().splitlines()[-1])
    # route_verify against a bare parallel SSH sweep, at growing node counts (one lab: it scales)
    sweep = in_fresh_lab([os.path.join(HERE, "route_sweep.py")] +
                         (["1", "3"] if QUICK else ["3", "10", "50", "100"]))
    # a gate's condition turning true -> the next task starting (the roles' canal gate, and
    # until polling for comparison)
    gate = in_fresh_lab([os.path.join(HERE, "gate_latency.py"), "3" if QUICK else "10"])
    # the demo migration (3 -> 3 and 10 -> 10 nodes) and a fleet of 1 and 3 clusters: minutes
    # each, so only in the full run
    demo = fleet = None
    if not QUICK:
        fleet = json.loads(subprocess.run(
            [sys.executable, os.path.join(HERE, "fleet.py"), "3"], check=True, cwd=REPO,
            capture_output=True, text=True).stdout.strip().splitlines()[-1])
        demo = json.loads(subprocess.run(
            [sys.executable, os.path.join(HERE, "demo_phases.py"), "3", "10"], check=True,
            cwd=REPO, capture_output=True, text=True).stdout)["runs"]
    path = os.path.join(HERE, "results.json")
    results = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            results = json.load(fh)
    results["lab_up_seconds"] = {"median": round(statistics.median(ups), 3),
                                 "runs": [round(u, 3) for u in ups]}
    results["fixture_converged_seconds"] = {"median": round(statistics.median(converged), 2),
                                            "runs": [round(c, 2) for c in converged]}
    results["api_latency_ms"] = api
    results["scale_nodes"] = scale
    if vpn is not None:
        results["vpn_latency"] = vpn
        results["vpn_latency_tcp_nodelay"] = vpn_nodelay
    results["vpn_backends"] = {name: vpn_backend_summary(runs) for name, runs in backends.items()}
    results["probe_overhead"] = probe
    results["worlds"] = worlds
    results["mongo"] = mongo
    results["route_verify_sweep"] = sweep
    results["gate_latency"] = gate
    if demo is not None:
        results["demo_migration"] = demo
    if fleet is not None:
        results["fleet_migration"] = fleet
    results["quick"] = QUICK
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
    rows = ["| measure | p50 | p99 |", "| --- | --- | --- |"]
    for name, r in api.items():
        rows.append("| API %s | %.2f ms | %.2f ms |" % (name, r["p50_ms"], r["p99_ms"]))
    rows.append("| lab-up (fixture) | %.2f s (median of %d) | |"
                % (results["lab_up_seconds"]["median"], len(ups)))
    rows.append("| lab-up until the app answers via DNS + LB | %.2f s (median of %d) | |"
                % (results["fixture_converged_seconds"]["median"], len(converged)))
    rows.append("| lab-up until served: move world (old + new cluster, shop app on every host "
                "and path, HTTP and HTTPS) | %.2f s (median of %d) | |"
                % (worlds["move_world_up_s"]["median"], len(worlds["move_world_up_s"]["runs"])))
    rows.append("| move world: lab-up until its MongoDB replica set has a primary | %.2f s "
                "(median of %d) | |" % (worlds["move_world_mongo_primary_s"]["median"],
                                        len(worlds["move_world_mongo_primary_s"]["runs"])))
    rows.append("| move world: the api's write (POST through DNS, LB, ingress; w:majority) | "
                "%.2f ms | %.2f ms |" % (worlds["move_world_writes"]["p50_ms"],
                                         worlds["move_world_writes"]["p99_ms"]))
    rows.append("| lab-up until served: --clusters 3 (each app) | %.2f s (median of %d) | |"
                % (worlds["clusters_3_up_s"]["median"], len(worlds["clusters_3_up_s"]["runs"])))
    rows.append("| lab memory per user cluster (PSS, --clusters 3 against 1) | %.1f MiB | |"
                % worlds["pss_mib_per_cluster"])
    rows.append("| MongoDB double: insert, w:1 | %.2f ms | %.2f ms |"
                % (mongo["insert_ms_w1"]["p50"], mongo["insert_ms_w1"]["p99"]))
    rows.append("| MongoDB double: insert, w:majority (3 members) | %.2f ms | %.2f ms |"
                % (mongo["insert_ms_majority"]["p50"], mongo["insert_ms_majority"]["p99"]))
    stepdown = mongo["stepdown_to_writable_s"]
    rows.append("| MongoDB double: replSetStepDown -> next insert acknowledged by the new primary "
                "| %.2f s (median of %d) | |" % (stepdown["median"], len(stepdown["runs"])))
    rows.append("| MongoDB double: memory per member (PSS, %d documents) | %.1f MiB | |"
                % (mongo["documents"], mongo["pss_mib_per_member"]))
    rows.append("| %d nodes Ready (flannel on all) | %.1f s | |"
                % (scale["nodes"], scale["seconds_to_ready"]))
    rows.append("| memory per node (PSS) | %.2f MiB | |" % scale["pss_mib_per_node"])
    rows.append("| lab daemon CPU with nothing to do, 3 / %d nodes | %.1f %% / %.1f %% of one core | |"
                % (scale["nodes"], scale["labd_cpu_percent_idle_at_3"],
                   scale["labd_cpu_percent_idle_at_n"]))
    if vpn is not None:
        rows.append("| pod RTT flannel / over VPN | %.3f ms / %.3f ms | %.3f ms (VPN) |"
                    % (vpn["rtt_ms_p50_flannel_on_ens192"], vpn["rtt_ms_p50_flannel_over_vpn"],
                       vpn["rtt_ms_p99_over_vpn"]))
        rows.append("| one-way latency added by the VPN | %.3f ms | |"
                    % vpn["one_way_added_ms_p50"])
        rows.append("| same, server with --tcp-nodelay | %.3f ms | %.3f ms (RTT) |"
                    % (vpn_nodelay["one_way_added_ms_p50"], vpn_nodelay["rtt_ms_p99_over_vpn"]))
    for name, r in results["vpn_backends"].items():
        rows.append("| %s: pod RTT added by the VPN (median of %d rounds) | %+.3f ms | %+.3f ms |"
                    % (VPN_TITLE[name], r["rounds"], r["rtt_ms_p50_added"],
                       r["rtt_ms_p99_added"]))
        rows.append("| %s: pod-to-pod TCP, flannel on ens192 / over the VPN (iperf3) | %.0f / "
                    "%.0f Mbit/s | |" % (VPN_TITLE[name], r["tcp_mbit_s_ens192"],
                                         r["tcp_mbit_s_vpn"]))
    rows.append("| probe at %d req/s: CPU | %.1f %% of one core | |"
                % (probe["rate"], probe["cpu_percent"]))
    for r in sweep:
        rows.append("| route_verify on %d nodes (one task, nodes:): task / play / bare SSH sweep | "
                    "%.2f s / %.2f s / %.2f s = %.2f x / %.2f x (whole command %.2f s; as a play "
                    "over the nodes %.2f s = %.2f x) | |"
                    % (r["nodes"], r["route_verify_task_s"], r["route_verify_play_s"],
                       r["bare_sweep_s"], r["ratio_task"], r["ratio_play"],
                       r["ansible_playbook_s"], r["per_host_play_task_s"],
                       r["ratio_per_host_play"]))
    rows.append("| gate condition true -> next task started: canal rollout gate (%d rounds) "
                "| %.2f s | %.2f s (max) |" % (gate["rounds"], gate["median_s"], gate["max_s"]))
    rows.append("| same, k8s_info `until` polling (for comparison) | %.2f s | %.2f s (max) |"
                % (gate["until_polling"]["median_s"], gate["until_polling"]["max_s"]))
    for r in results.get("demo_migration") or []:
        rows.append("| demo %d -> %d nodes: migration (lab up included) | %.0f s (%.0f s) | |"
                    % (r["workers"], r["workers"], r["migration_s"], r["with_lab_up_s"]))
        rows.append("| demo %d -> %d: per phase | %s | |" % (r["workers"], r["workers"], ", ".join(
            "%s %.0f s" % kv for kv in r["phases_s"].items())))
        rows.append("| demo %d -> %d: probe failed, longest gap | %d of %d, %.2f s | |"
                    % (r["workers"], r["workers"], r["probe_during"]["failed"],
                       r["probe_during"]["requests"], r["probe_during"]["longest_gap_s"]))
        rows.append("| demo %d -> %d: probe latency before / during | %.2f / %.2f ms | %.2f / %.2f "
                    "ms (+%.2f ms) |" % (r["workers"], r["workers"], r["probe_before"]["p50_ms"],
                                         r["probe_during"]["p50_ms"], r["probe_before"]["p99_ms"],
                                         r["probe_during"]["p99_ms"], r["p99_increase_ms"]))
    fl = results.get("fleet_migration")
    if fl:
        one, three = fl["clusters_1"], fl["clusters_3"]
        rows.append("| fleet migration in one run, 1 / 3 clusters (probe each) | %.0f s / %.0f s = "
                    "%.2f x (median of %d) | |" % (one["seconds"], three["seconds"],
                                                   fl["ratio_3_to_1"], fl["rounds"]))
        rows.append("| fleet: controller CPU per cluster, 1 / 3 clusters | %.1f s / %.1f s | |"
                    % (one["cpu_s_per_cluster"], three["cpu_s_per_cluster"]))
        rows.append("| fleet: controller peak memory (PSS) per cluster, 1 / 3 clusters | "
                    "%.1f MiB / %.1f MiB | |"
                    % (one["peak_pss_mib_per_cluster"], three["peak_pss_mib_per_cluster"]))
        rows.append("| fleet: failed requests (max over clusters and runs), second run changed | "
                    "%d, %d | |" % (fl["failed_max"], fl["second_run_changed_max"]))
    table = "\n".join(rows)
    with open(os.path.join(HERE, "results.md"), "w", encoding="utf-8") as fh:
        fh.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
