"""lab-up / lab-down from the host: timing, idempotence, nothing left behind, legacy API.

These tests start and stop the lab themselves, so they run outside clh-ctl (make integration
runs them after the in-lab tests).
"""

import json
import os
import subprocess
import sys
import time

import pytest

from cloudhop_lab import cli
from cloudhop_lab.dataplane.netns import ns_name

REPO = cli.REPO
NODE_NS = ns_name("n-")  # this lab instance's node namespaces
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


def lab(*args, check=True):
    return subprocess.run([sys.executable, "-m", "cloudhop_lab", *args], cwd=REPO,
                          capture_output=True, text=True, check=check, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "tests", "lab")))


def in_lab(code):
    proc = subprocess.run([os.path.join(REPO, "tests", "lab", "run"), sys.executable, "-c",
                           code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def lab_processes():
    """Processes in lab namespaces, and any process whose command line names the lab dir (a
    process left in a namespace whose name was already deleted is found only that way)."""
    out = []
    for name in cli.lab_namespaces():
        out += subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                              text=True, check=False).stdout.split()
    lab_dir = cli.lab_dir().encode()
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    # this lab's directory, not another instance's (.lab is a prefix of .lab-2)
                    if any(arg == lab_dir or lab_dir + b"/" in arg
                           for arg in fh.read().split(b"\0")):
                        out.append(pid)
            except OSError:
                pass
    return out


READ_CLUSTER = """
import json, os
from kubernetes import client, config
api = client.CustomObjectsApi(config.new_client_from_config(os.environ["CLH_SEED_KUBECONFIG"]))
groups = [g.name for g in client.ApisApi(api.api_client).get_api_versions().groups]
group = "kubermatic.k8c.io" if "kubermatic.k8c.io" in groups else "kubermatic.k8s.io"
c = api.list_cluster_custom_object(group, "v1", "clusters")["items"][0]
print(json.dumps({"group": group, "conditions": c.get("status", {}).get("conditions")}))
"""


def test_up_twice_then_down_leaves_nothing():
    started = time.monotonic()
    lab("up")
    first = time.monotonic() - started
    pid_before = open(os.path.join(cli.lab_dir(), "labd.pid"), encoding="utf-8").read()
    lab("up")  # removes the stale lab first
    assert open(os.path.join(cli.lab_dir(), "labd.pid"), encoding="utf-8").read() != pid_before
    names = cli.lab_namespaces()
    assert {ns_name(n) for n in ("ctl", "inet", "rt-vsphere", "rt-aws", "rt-gcp")} <= set(names)
    assert first < 60
    # the stale lab was removed: one set of fixture nodes only, once they have booted
    deadline = time.monotonic() + 30
    while len([n for n in cli.lab_namespaces() if n.startswith(NODE_NS)]) != 3:
        assert time.monotonic() < deadline, cli.lab_namespaces()
        time.sleep(0.2)
    recorded = json.load(open(os.path.join(cli.lab_dir(), "lab-up.json"), encoding="utf-8"))
    assert recorded["seconds"] < 60
    # the host's namespace got nothing: the API listens only inside clh-ctl
    host = subprocess.run(["ss", "-ltn"], capture_output=True, text=True, check=False).stdout
    assert ":6443 " not in host and ":7443 " not in host
    lab("down")
    assert cli.lab_namespaces() == []
    assert not lab_processes()
    labd = "cloudhop_lab.labd --dir %s$" % cli.lab_dir()  # this instance's daemon
    assert subprocess.run(["pgrep", "-f", labd], check=False, capture_output=True).returncode == 1
    assert not os.path.exists("/run/netns/" + ns_name("ctl"))
    lab("down")  # twice is fine


def test_down_right_after_up_leaves_no_process():
    """Down while nodes still boot: labd must be gone before the namespaces are swept."""
    for dummy in range(2):
        lab("up")
        lab("down")
        assert not lab_processes()
        assert cli.lab_namespaces() == []


def test_legacy_api_group_serves_conditions_as_a_list():
    lab("up", "--legacy-api")
    try:
        deadline = time.monotonic() + 20
        while True:
            out = json.loads(in_lab(READ_CLUSTER))
            if out["conditions"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert out["group"] == "kubermatic.k8s.io"
        assert isinstance(out["conditions"], list)
        assert {c["type"] for c in out["conditions"]} >= {
            "CloudControllerReconcilledSuccessfully", "SeedResourcesUpToDate"}
        # the collection finds the legacy group by discovery and reads list-form conditions
        play = os.path.join(REPO, "tests", "lab", "tests", "lifecycle", "legacy_pause.yml")
        proc = subprocess.run(
            [os.path.join(REPO, "tests", "lab", "run"),
             os.path.join(REPO, ".venv", "bin", "ansible-playbook"), play],
            capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
            env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg")))
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    finally:
        lab("down")
    assert cli.lab_namespaces() == []


def test_haproxy_serves_every_configuration_it_was_given(tmp_path):
    """The lab's HAProxy wrapper: each apply() is followed by the configuration it was given,
    also when applies come back to back. (HAProxy 2.6 drops a SIGUSR2 sent right after it
    logs its load, so a wrapper that reloads by signal serves a stale configuration here.)"""
    from cloudhop_lab.dataplane import haproxy, netns as nsx  # pylint: disable=import-outside-toplevel
    ns = ns_name("test-haproxy")
    nsx.create(ns)
    proxy = haproxy.HAProxy(ns, str(tmp_path / "hx"))
    try:
        def config(gen):
            return (haproxy.GLOBAL + "frontend f\n  mode http\n  bind 127.0.0.1:8080\n"
                    "  http-request return status 200 content-type text/plain "
                    "string gen%d\n" % gen)
        for gen in range(0, 20, 2):
            # two applies back to back, as a controller does when two changes come in a row:
            # the second must not be lost
            proxy.apply(config(gen))
            proxy.apply(config(gen + 1))
            got = subprocess.run(
                ["ip", "netns", "exec", ns, sys.executable, "-c",
                 "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/', "
                 "timeout=3).read().decode())"],
                capture_output=True, text=True, timeout=30, check=False)
            assert got.stdout.strip() == "gen%d" % (gen + 1), (gen, got.stdout, got.stderr)
        assert proxy.alive()
    finally:
        proxy.stop()
        nsx.remove(ns)
    assert not os.path.exists("/run/netns/" + ns)
