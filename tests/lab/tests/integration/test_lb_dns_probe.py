"""Load balancers, DNS with RFC 2136 updates, and the traffic probe - from the internet side."""

import json
import os
import subprocess
import sys
import time

import dns.query
import dns.tsigkeyring
import dns.update

from .conftest import LAB, wait_for
from cloudhop_lab.dataplane.netns import ns_name

INGRESS_LABELS = {"app.kubernetes.io/name": "ingress-nginx",
                  "app.kubernetes.io/component": "controller"}


def _lb_ip(core, ns, name):
    svc = core.read_namespaced_service(name, ns)
    ingress = (svc.status.load_balancer.ingress or []) if svc.status.load_balancer else []
    return ingress[0].ip if ingress else None


def _get(url_ip, host="app.example.test"):
    code = ("import urllib.request,sys\n"
            "r = urllib.request.Request('http://%s/', headers={'Host': '%s'})\n"
            "print(urllib.request.urlopen(r, timeout=3).read().decode())" % (url_ip, host))
    return subprocess.run(["ip", "netns", "exec", ns_name("client"), "python3", "-c", code],
                          capture_output=True, text=True, timeout=20, check=False)


def _dns_update(name, address, ttl):
    with open(os.path.join(LAB, "dns", "tsig.json"), encoding="utf-8") as fh:
        key = json.load(fh)
    ring = dns.tsigkeyring.from_text({key["name"]: (key["algorithm"], key["secret"])})
    upd = dns.update.Update(key["zone"], keyring=ring, keyname=key["name"])
    upd.replace(name, ttl, "A", address)
    assert dns.query.tcp(upd, key["server"], timeout=5).rcode() == 0


def _probe(action):
    out = subprocess.run([sys.executable, "-m", "cloudhop_lab", "probe", action],
                         capture_output=True, text=True, timeout=30, check=True,
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
                             os.path.dirname(os.path.abspath(__file__))))))
    return out.stdout


def _records():
    with open(os.path.join(LAB, "probe.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_vsphere_load_balancer_serves_the_app(core):
    ip = wait_for(lambda: _lb_ip(core, "ingress-nginx", "ingress-nginx-controller"),
                  what="LB address")
    assert ip.startswith("198.18.0.")
    out = _get(ip)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["cloud"] == "vsphere" and body["pod"].startswith("echo-")
    # an unknown Host is the ingress' 404, not the app
    assert "404" in _get(ip, host="other.example.test").stderr
    # the record the fixture created
    answer = subprocess.run(["ip", "netns", "exec", ns_name("client"), "dig", "+noall", "+answer",
                             "@198.18.0.53", "app.example.test"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert answer[1] == "300" and answer[-1] == ip


def test_ingress_reaches_pods_on_other_nodes_over_the_overlay(core):
    """ingress-nginx routes to pod IPs: a pod on a node without an ingress is reached through
    another node's ingress, across flannel."""
    ingress_nodes = {p.spec.node_name for p in core.list_namespaced_pod("ingress-nginx").items}
    target = next(n.metadata.name for n in core.list_node().items
                  if n.metadata.name not in ingress_nodes and not n.spec.unschedulable)
    core.create_namespaced_pod("echo", {
        "metadata": {"name": "echo-remote", "labels": {"app": "echo"}},
        "spec": {"nodeName": target, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "echo", "image": "cloudhop/echo:lab",
                                 "ports": [{"containerPort": 8080, "name": "http"}]}]}})
    try:
        wait_for(lambda: any(a.target_ref.name == "echo-remote" for a in
                             core.read_namespaced_endpoints("echo", "echo").subsets[0].addresses),
                 what="echo-remote in the endpoints")
        lb = _lb_ip(core, "ingress-nginx", "ingress-nginx-controller")
        served = []
        for _i in range(16):
            out = _get(lb)
            assert out.returncode == 0, out.stderr
            served.append(json.loads(out.stdout))
        remote = [b for b in served if b["pod"] == "echo-remote"]
        assert remote and remote[0]["node"] == target
        assert remote[0]["client"] not in ("", None)
    finally:
        core.delete_namespaced_pod("echo-remote", "echo")


def test_dns_change_reaches_the_probe_after_the_ttl(core):
    old_ip = _lb_ip(core, "ingress-nginx", "ingress-nginx-controller")
    core.create_namespaced_service("ingress-nginx", {
        "metadata": {"name": "ingress-second"},
        "spec": {"type": "LoadBalancer", "selector": INGRESS_LABELS,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
    try:
        new_ip = wait_for(lambda: _lb_ip(core, "ingress-nginx", "ingress-second"),
                          what="second LB")
        assert new_ip != old_ip
        wait_for(lambda: _get(new_ip).returncode == 0, what="second LB serving")
        _dns_update("app.example.test.", old_ip, 1)
        time.sleep(1.2)  # nothing cached the 300 s answer yet: the probe starts now
        _probe("start")
        try:
            time.sleep(1.5)
            switched = time.time()
            _dns_update("app.example.test.", new_ip, 1)
            time.sleep(3.5)
        finally:
            summary = json.loads(_probe("stop"))
        recs = _records()
        assert summary["failed"] == 0 and summary["total"] >= 60
        before = [r for r in recs if r["t"] < switched]
        after = [r for r in recs if r["t"] > switched + 2.0]  # TTL 1 s + slack
        assert before and all(r["ip"] == old_ip for r in before)
        assert after and all(r["ip"] == new_ip for r in after)
    finally:
        _dns_update("app.example.test.", old_ip, 300)
        core.delete_namespaced_service("ingress-second", "ingress-nginx")
        if os.path.exists(os.path.join(LAB, "probe.pid")):
            _probe("stop")


def _http_from(ns, address):
    code = ("import urllib.request\n"
            "r = urllib.request.Request('http://%s/', headers={'Host': 'app.example.test'})\n"
            "print(urllib.request.urlopen(r, timeout=3).status)" % address)
    return subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", code],
                          capture_output=True, text=True, timeout=20, check=False)


def test_internal_load_balancer_on_the_node_network_at_the_address_asked_for(core):
    """MetalLB's loadBalancerIPs on the node network: an internal load balancer at exactly that
    address, reached from the network (the operator's leg), not from the internet; an
    address outside the network or taken leaves the Service pending."""
    wanted = "10.2.0.230"
    spec = {"type": "LoadBalancer", "selector": INGRESS_LABELS,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    names = {"internal-ok": wanted, "internal-outside": "10.3.0.9", "internal-taken": wanted}
    try:
        core.create_namespaced_service("ingress-nginx", {
            "metadata": {"name": "internal-ok",
                         "annotations": {"metallb.universe.tf/loadBalancerIPs": wanted}},
            "spec": spec})
        assert wait_for(lambda: _lb_ip(core, "ingress-nginx", "internal-ok"),
                        what="internal LB") == wanted
        wait_for(lambda: _http_from(ns_name("ctl"), wanted).stdout.strip() == "200",
                 what="internal LB serving the node network")
        assert _http_from(ns_name("client"), wanted).returncode != 0  # not on the internet
        for name in ("internal-outside", "internal-taken"):
            core.create_namespaced_service("ingress-nginx", {
                "metadata": {"name": name, "annotations": {
                    "metallb.universe.tf/loadBalancerIPs": names[name]}}, "spec": spec})
        # the controller has decided on both (its warning), and neither got an address
        wanted_lines = ["ingress-nginx/internal-outside: address 10.3.0.9 is not in the vsphere",
                        "ingress-nginx/internal-taken: address %s is taken" % wanted]

        def refused():
            with open(os.path.join(LAB, "labd.log"), encoding="utf-8") as fh:
                text = fh.read()
            return all(line in text for line in wanted_lines)
        wait_for(refused, timeout=20, what="the refusals in labd.log")
        for name in ("internal-outside", "internal-taken"):
            assert _lb_ip(core, "ingress-nginx", name) is None, name
    finally:
        for name in names:
            try:
                core.delete_namespaced_service(name, "ingress-nginx")
            except Exception:  # pylint: disable=broad-except
                pass


def _http_host(address, host, port=80):
    code = ("import urllib.request, urllib.error\n"
            "r = urllib.request.Request('http://%s:%d/', headers={'Host': '%s'})\n"
            "try:\n    print(urllib.request.urlopen(r, timeout=3).status)\n"
            "except urllib.error.HTTPError as e:\n    print(e.code)" % (address, port, host))
    return subprocess.run(["ip", "netns", "exec", ns_name("ctl"), "python3", "-c", code],
                          capture_output=True, text=True, timeout=20, check=False).stdout.strip()


def test_a_second_ingress_controller_serves_only_its_own_class(core, apps, user_client):
    """ingress-nginx with --ingress-class=cloudhop-proxy and its own --controller-class (the
    move's proxy): it serves the Ingresses whose IngressClass names its controller - none
    before that IngressClass exists - and those with the deprecated annotation of its class,
    and no other; the nginx controller does not serve them."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    net = client.NetworkingV1Api(user_client)
    labels = {"app.kubernetes.io/name": "proxy-controller"}
    apps.create_namespaced_deployment("ingress-nginx", {
        "metadata": {"name": "proxy-controller", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                     "name": "controller",
                     "image": "registry.k8s.io/ingress-nginx/controller:v1.11.3",
                     "args": ["/nginx-ingress-controller", "--ingress-class=cloudhop-proxy",
                              "--controller-class=k8s.io/cloudhop-proxy"],
                     "ports": [{"containerPort": 80, "name": "http"}]}]}}}})
    core.create_namespaced_service("ingress-nginx", {
        "metadata": {"name": "proxy-controller"},
        "spec": {"type": "NodePort", "selector": labels,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
    rule = {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
        "service": {"name": "echo", "port": {"number": 80}}}}]}}
    net.create_namespaced_ingress("echo", {
        "metadata": {"name": "proxied"},
        "spec": {"ingressClassName": "cloudhop-proxy",
                 "rules": [dict(rule, host="proxied.example.test")]}})
    net.create_namespaced_ingress("echo", {
        "metadata": {"name": "legacy-proxied",
                     "annotations": {"kubernetes.io/ingress.class": "cloudhop-proxy"}},
        "spec": {"rules": [dict(rule, host="legacy.example.test")]}})
    try:
        port = core.read_namespaced_service("proxy-controller", "ingress-nginx").spec.ports[0].node_port
        node_ip = core.list_node().items[0].status.addresses[0].address
        wait_for(lambda: _http_host(node_ip, "legacy.example.test", port) == "200",
                 timeout=30, what="the proxy controller serving the annotated Ingress")
        # no IngressClass cloudhop-proxy yet: ingress-nginx does not serve the class's Ingress
        assert _http_host(node_ip, "proxied.example.test", port) == "404"
        net.create_ingress_class({"metadata": {"name": "cloudhop-proxy"},
                                  "spec": {"controller": "k8s.io/cloudhop-proxy"}})
        wait_for(lambda: _http_host(node_ip, "proxied.example.test", port) == "200",
                 timeout=30, what="the proxy controller serving its Ingress")
        assert _http_host(node_ip, "app.example.test", port) == "404"  # nginx's, not its own
        nginx = _lb_ip(core, "ingress-nginx", "ingress-nginx-controller")
        assert _http_host(nginx, "app.example.test") == "200"
        assert _http_host(nginx, "proxied.example.test") == "404"
        assert _http_host(nginx, "legacy.example.test") == "404"
    finally:
        for name in ("proxied", "legacy-proxied"):
            net.delete_namespaced_ingress(name, "echo")
        if [c for c in net.list_ingress_class().items if c.metadata.name == "cloudhop-proxy"]:
            net.delete_ingress_class("cloudhop-proxy")
        core.delete_namespaced_service("proxy-controller", "ingress-nginx")
        apps.delete_namespaced_deployment("proxy-controller", "ingress-nginx")


def test_probe_counts_a_stopped_backend_as_failures(core, apps):
    _probe("start")
    try:
        wait_for(lambda: os.path.exists(os.path.join(LAB, "probe.jsonl")) and
                 [r for r in _records()[-5:] if r.get("status") == 200],
                 what="the probe's first successes")
        apps.patch_namespaced_deployment_scale("echo", "echo", {"spec": {"replicas": 0}})
        wait_for(lambda: any(r.get("status") != 200 for r in _records()[-5:]),
                 what="failures seen by the probe")
        apps.patch_namespaced_deployment_scale("echo", "echo", {"spec": {"replicas": 3}})
        wait_for(lambda: all(r.get("status") == 200 for r in _records()[-5:]), timeout=30,
                 what="the app answers again")
    finally:
        summary = json.loads(_probe("stop"))
        apps.patch_namespaced_deployment_scale("echo", "echo", {"spec": {"replicas": 3}})
    assert summary["failed"] > 0
    # at 20 requests/s, a failed request between two successes is a gap of at least 100 ms
    assert summary["longest_gap_s"] >= 2 / summary["rate"] - 0.001
    assert summary["per_cloud"].get("vsphere", 0) > 0
    assert summary["latency_ms"]["p50"] is not None


def test_a_rolling_restart_of_the_app_and_the_ingress_loses_no_request(core, apps):
    """kubectl rollout restart of the app and of ingress-nginx under the probe: new pods are
    Endpoints only once they listen (the ingress pod once its proxy runs its configuration),
    old ones keep serving through their preStop, and a connection an ingress proxy cannot make
    goes to the next pod at once - so no request fails, as on a real cluster."""
    _probe("start")
    try:
        wait_for(lambda: os.path.exists(os.path.join(LAB, "probe.jsonl")) and
                 [r for r in _records()[-5:] if r.get("status") == 200],
                 what="the probe's first successes")
        for ns, name in (("echo", "echo"), ("ingress-nginx", "ingress-nginx-controller")):
            before = {p.metadata.name for p in core.list_namespaced_pod(ns).items}
            apps.patch_namespaced_deployment(name, ns, {"spec": {"template": {"metadata": {
                "annotations": {"kubectl.kubernetes.io/restartedAt": str(time.time())}}}}})

            def rolled(ns=ns, name=name, before=before):
                dep = apps.read_namespaced_deployment(name, ns)
                pods = {p.metadata.name for p in core.list_namespaced_pod(ns).items}
                return (dep.status.observed_generation == dep.metadata.generation and
                        dep.status.updated_replicas == dep.spec.replicas ==
                        dep.status.available_replicas and not pods & before)
            wait_for(rolled, timeout=90, what="the rollout of %s/%s" % (ns, name))
    finally:
        summary = json.loads(_probe("stop"))
    assert summary["total"] > 20, summary
    assert summary["failed"] == 0, summary
