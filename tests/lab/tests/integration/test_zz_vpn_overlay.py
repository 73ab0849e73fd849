"""The migration's core promise, with real packets: old-cloud and new-cloud pods reach each other
only through the VPN overlay. Runs last (it switches the cluster to AWS) and restores the fixture.
"""

import base64
import json
import os
import subprocess
import time

import pytest
from kubernetes import client

from cloudhop_lab.fixture import openvpn_client_pod_spec

from .conftest import wait_for
from .test_collection_targets import run_target
from .test_dataplane import _echo_pod, http_from, netns_run
from cloudhop_lab.dataplane.netns import ns_name

NODE_NS = ns_name("n-")  # this lab instance's node namespaces
POD_NS = ns_name("p-")  # this lab instance's pod namespaces

CID = "x8p9sk2tzv"
KKP = ("kubermatic.k8c.io", "v1", "clusters")
MD_ARGS = ("cluster.k8s.io", "v1alpha1", "kube-system", "machinedeployments")


def _cluster(seed_custom):
    return seed_custom.get_cluster_custom_object(*KKP, CID)


def _patch_cluster(seed_custom, body):
    seed_custom.patch_cluster_custom_object(*KKP, CID, body)


def _reconciled(seed_custom):
    conds = (_cluster(seed_custom).get("status") or {}).get("conditions") or {}
    return conds.get("CloudControllerReconcilledSuccessfully", {}).get("status") == "True"


def _server_args(seed_client):
    dep = client.AppsV1Api(seed_client).read_namespaced_deployment("openvpn-server",
                                                                   "cluster-" + CID)
    return dep.spec.template.spec.containers[0].args


def _set_server_args(seed_client, args):
    client.AppsV1Api(seed_client).patch_namespaced_deployment(
        "openvpn-server", "cluster-" + CID, {"spec": {"template": {"spec": {"containers": [
            {"name": "openvpn-server", "args": args}]}}}})


def _server_running_with(flag, present):
    """The real openvpn process in clh-seed runs (or does not run) with the flag."""
    def check():
        pids = subprocess.run(["ip", "netns", "pids", ns_name("seed")], capture_output=True,
                              text=True, check=False).stdout.split()
        cmds = []
        for pid in pids:
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    argv = fh.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"openvpn"):
                cmds.append([a.decode() for a in argv])
        return len(cmds) == 1 and ((flag in cmds[0]) == present)
    return check


def _pod_ns(pod):
    return POD_NS + pod.metadata.uid[:12]


def _reach(src, dst):
    out = http_from(_pod_ns(src), "http://%s:8080/" % dst.status.pod_ip, timeout=2)
    return out.returncode == 0 and dst.metadata.name in out.stdout


def _vpn_daemonset():
    spec = openvpn_client_pod_spec()
    spec["hostNetwork"] = True
    spec["tolerations"] = [{"operator": "Exists"}]
    spec["containers"][0]["securityContext"] = {"privileged": True}
    labels = {"role": "openvpn-client"}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "openvpn-client", "namespace": "kube-system",
                         "labels": labels},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}


def _restart_canal(apps):
    apps.patch_namespaced_daemon_set("canal", "kube-system", {"spec": {"template": {
        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": str(time.time())}}}}})
    gen = apps.read_namespaced_daemon_set("canal", "kube-system").metadata.generation

    def done():
        st = apps.read_namespaced_daemon_set("canal", "kube-system").status
        return st.observed_generation == gen and st.updated_number_scheduled == \
            st.desired_number_scheduled == st.number_ready
    wait_for(done, timeout=90, what="canal restarted on every node")


def _flannel_local(node_name):
    out = netns_run(NODE_NS + node_name, "ip", "-d", "link", "show", "flannel.1").stdout
    return out.split(" local ")[1].split()[0] if " local " in out else None


@pytest.mark.timeout(600)
def test_pods_of_two_clouds_talk_only_through_the_vpn_overlay(
        core, apps, custom, seed_custom, seed_client, seed_core, ns, tmp_path):
    canonical = _server_args(seed_client)
    aws_md = None
    try:
        # --- the cluster moves to AWS (while paused; KKP reconciles after the unpause)
        _patch_cluster(seed_custom, {"spec": {"pause": True}})
        seed_core.create_namespaced_secret("kubermatic", {
            "metadata": {"name": "credential-aws-" + CID,
                         "labels": {"name": "credential-aws-" + CID, "project-id": "k7xz5qd2wm"}},
            "data": {"accessKeyId": base64.b64encode(b"AKIALABTEST").decode(),
                     "secretAccessKey": base64.b64encode(b"lab-secret").decode()}})
        _patch_cluster(seed_custom, {"metadata": {"annotations": {
            "kubermatic.io/aws-region": "eu-central-1"}}, "spec": {"cloud": {
                "dc": "aws-eu-central-1", "vsphere": None,
                "aws": {"credentialsReference": {"name": "credential-aws-" + CID,
                                                 "namespace": "kubermatic"},
                        "vpcID": "vpc-lab", "securityGroupID": "sg-lab"}}}})
        # --- one AWS worker
        md = custom.get_namespaced_custom_object(*MD_ARGS, "to-migrate-vsphere-node")
        aws_md = {"apiVersion": "cluster.k8s.io/v1alpha1", "kind": "MachineDeployment",
                  "metadata": {"name": "aws-workers", "namespace": "kube-system"},
                  "spec": {**md["spec"], "replicas": 1,
                           "selector": {"matchLabels": {"name": "aws-workers"}}}}
        aws_md["spec"]["template"]["metadata"] = {"labels": {"name": "aws-workers"}}
        value = aws_md["spec"]["template"]["spec"]["providerSpec"]["value"]
        value["cloudProvider"] = "aws"
        value["cloudProviderSpec"] = {"region": "eu-central-1",
                                      "availabilityZone": "eu-central-1a",
                                      "instanceType": "t3.large", "vpcId": "vpc-lab"}
        custom.create_namespaced_custom_object(*MD_ARGS[:3], "machinedeployments", aws_md)
        # while paused the switch is not live: machine-controller still runs with the vSphere
        # credentials the seed last reconciled, so the AWS machine reports the mismatch

        def mismatch():
            for m in custom.list_namespaced_custom_object(*MD_ARGS[:3], "machines")["items"]:
                msg = (m.get("status") or {}).get("errorMessage") or ""
                if m["metadata"]["name"].startswith("aws-workers") and '"vsphere"' in msg:
                    return msg
            return None
        wait_for(mismatch, timeout=30, what="AWS machine refused while the cluster is paused")
        _patch_cluster(seed_custom, {"spec": {"pause": False}})
        wait_for(lambda: _reconciled(seed_custom), what="cluster reconciled on AWS")
        aws_node = wait_for(lambda: next((n for n in core.list_node().items
                                          if n.metadata.name.startswith("aws-workers")), None),
                            timeout=60, what="AWS node")
        assert aws_node.status.addresses[0].address.startswith("172.31.")
        vs_node = next(n for n in core.list_node().items
                       if n.metadata.name.startswith("to-migrate") and not n.spec.unschedulable)
        a = _echo_pod(core, ns, "on-vsphere", vs_node.metadata.name)
        b = _echo_pod(core, ns, "on-aws", aws_node.metadata.name)
        # --- before the overlay: flannel sends VXLAN to the AWS node's private address
        assert not _reach(a, b) and not _reach(b, a)

        # --- the VPN server gets --client-to-client (paused, so KKP leaves it alone)
        _patch_cluster(seed_custom, {"spec": {"pause": True}})
        _set_server_args(seed_client, canonical + ["--client-to-client"])
        wait_for(_server_running_with("--client-to-client", True), timeout=60,
                 what="server restarted with --client-to-client")
        # --- VPN clients on every node, then flannel over the tunnel
        apps.create_namespaced_daemon_set("kube-system", _vpn_daemonset())

        def vpn_ready():
            st = apps.read_namespaced_daemon_set("openvpn-client", "kube-system").status
            return st.desired_number_scheduled == st.number_ready == len(core.list_node().items)
        wait_for(vpn_ready, timeout=90, what="VPN client ready on every node")

        # this DaemonSet has no readinessProbe, so Ready means the process runs (as in
        # Kubernetes), not that its tunnel is up yet: wait for the route the server pushes
        def vpn_routed():
            routes = netns_run(NODE_NS + vs_node.metadata.name, "ip", "route").stdout
            return "10.20.0.0/24 via 10.20.0." in routes and "dev kube" in routes
        wait_for(vpn_routed, timeout=30, interval=0.2, what="the VPN route on " + vs_node.metadata.name)
        core.patch_namespaced_config_map("canal-config", "kube-system",
                                         {"data": {"canal_iface": "kube"}})
        # a ConfigMap change alone does nothing: flannel still uses ens192
        time.sleep(1.5)
        assert _flannel_local(vs_node.metadata.name) == vs_node.status.addresses[0].address
        _restart_canal(apps)
        assert _flannel_local(vs_node.metadata.name).startswith("10.20.0.")
        assert _flannel_local(aws_node.metadata.name).startswith("10.20.0.")
        assert wait_for(lambda: _reach(a, b) and _reach(b, a), timeout=30,
                        what="vSphere <-> AWS pod traffic over the VPN")
        # --- the collection's gates agree: route_verify (kube tun, VPN route, flannel over
        # kube, every peer routed) and an all-green matrix over VPN and pod addresses, old and
        # new nodes, run by the integration target through the nodes inventory plugin
        out = tmp_path / "matrix.json"
        proc = run_target("reachability_matrix", tmp_path, [
            "-e", "reachability_matrix_expect_vpn=true", "-e",
            "reachability_matrix_output=%s" % out])
        assert proc.returncode == 0, proc.stdout[-6000:]
        matrix = json.loads(out.read_text())
        assert matrix["ok"] and aws_node.metadata.name in matrix["nodes"]
        assert matrix["matrix"][aws_node.metadata.name][vs_node.metadata.name] == "ok"

        # --- the CCM role: an ingress on the AWS node gets an AWS load balancer
        _aws_load_balancer(core, aws_node.metadata.name)

        # --- without --client-to-client, node-to-node VPN traffic stops
        _set_server_args(seed_client, canonical)
        wait_for(_server_running_with("--client-to-client", False), timeout=60,
                 what="server restarted without --client-to-client")
        wait_for(lambda: not _reach(a, b), timeout=60, what="cross-cloud traffic broken")
    finally:
        if not os.environ.get("CLH_KEEP_STATE"):
            _restore(core, apps, custom, seed_custom, seed_client, seed_core, canonical, aws_md)


def _aws_load_balancer(core, aws_node):
    labels = {"app.kubernetes.io/name": "ingress-nginx",
              "app.kubernetes.io/component": "controller"}
    core.create_namespaced_pod("ingress-nginx", {
        "metadata": {"name": "ingress-on-aws", "labels": labels},
        "spec": {"nodeName": aws_node, "hostNetwork": True, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "controller",
                                 "image": "registry.k8s.io/ingress-nginx/controller:v1.11.3",
                                 "ports": [{"containerPort": 80, "hostPort": 80,
                                            "name": "http"}]}]}})
    core.create_namespaced_service("ingress-nginx", {
        "metadata": {"name": "ingress-aws"},
        "spec": {"type": "LoadBalancer", "selector": labels,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
    aws_ip = wait_for(lambda: _lb(core, "ingress-aws"), timeout=30, what="AWS load balancer")
    vsphere_ip = _lb(core, "ingress-nginx-controller")
    assert aws_ip != vsphere_ip  # the MetalLB Service keeps its vSphere load balancer
    # AWS LB -> ingress on the AWS node -> echo pods on vSphere nodes, across the overlay
    body = wait_for(lambda: _get_app(aws_ip), timeout=30, what="the app through the AWS LB")
    assert body["cloud"] == "vsphere"
    # a single request can meet the connection blip of the canal restart just before (kube-proxy
    # masquerade while flannel.1 is re-created); the load balancer must serve, so wait for it
    assert wait_for(lambda: _get_app(vsphere_ip), timeout=30,
                    what="the app through the vSphere LB")["cloud"] == "vsphere"
    # the cloud's record of it carries the cluster tag, as the AWS CCM sets it
    import boto3  # pylint: disable=import-outside-toplevel
    with open(os.path.join(os.environ["CLH_LAB_DIR"], "aws.json"), encoding="utf-8") as fh:
        aws = json.load(fh)
    elb = boto3.client("elbv2", endpoint_url=aws["endpoint_url"], region_name=aws["region"],
                       aws_access_key_id=aws["aws_access_key_id"],
                       aws_secret_access_key=aws["aws_secret_access_key"])
    arns = [lb["LoadBalancerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"]]
    tags = {t["Key"]: t["Value"] for d in elb.describe_tags(ResourceArns=arns)["TagDescriptions"]
            for t in d["Tags"]}
    assert tags["kubernetes.io/cluster/" + CID] == "owned"
    assert tags["kubernetes.io/service-name"] == "ingress-nginx/ingress-aws"


def _lb(core, name):
    svc = core.read_namespaced_service(name, "ingress-nginx")
    ingress = svc.status.load_balancer.ingress if svc.status.load_balancer else None
    return ingress[0].ip if ingress else None


def _get_app(ip):
    code = ("import urllib.request\n"
            "r = urllib.request.Request('http://%s/', headers={'Host': 'app.example.test'})\n"
            "print(urllib.request.urlopen(r, timeout=3).read().decode())" % ip)
    out = netns_run(ns_name("client"), "python3", "-c", code)
    return json.loads(out.stdout) if out.returncode == 0 else None


def _restore(core, apps, custom, seed_custom, seed_client, seed_core, canonical, aws_md):
    for delete, name in ((core.delete_namespaced_service, "ingress-aws"),
                         (core.delete_namespaced_pod, "ingress-on-aws")):
        try:
            delete(name, "ingress-nginx")
        except client.ApiException:
            pass
    try:
        apps.delete_namespaced_daemon_set("openvpn-client", "kube-system")
    except client.ApiException:
        pass
    core.patch_namespaced_config_map("canal-config", "kube-system",
                                     {"data": {"canal_iface": ""}})
    _restart_canal(apps)
    if aws_md is not None:
        custom.delete_namespaced_custom_object(*MD_ARGS, "aws-workers")
        wait_for(lambda: not [n for n in core.list_node().items
                              if n.metadata.name.startswith("aws-workers")],
                 timeout=90, what="AWS node removed")
    _patch_cluster(seed_custom, {"spec": {"pause": True}})
    _set_server_args(seed_client, canonical)
    _patch_cluster(seed_custom, {"metadata": {"annotations": {
        "kubermatic.io/aws-region": None}}, "spec": {"cloud": {
            "dc": "vsphere-dc1", "aws": None,
            "vsphere": {"credentialsReference": {"name": "credential-vsphere-" + CID,
                                                 "namespace": "kubermatic"}}}}})
    try:
        seed_core.delete_namespaced_secret("credential-aws-" + CID, "kubermatic")
    except client.ApiException:
        pass
    _patch_cluster(seed_custom, {"spec": {"pause": False}})
    wait_for(lambda: _reconciled(seed_custom), what="back on vSphere")
