"""Bad input is refused before anything is written, with a message that names the variable.

One `playbooks/preflight.yml` run over an inventory of one user-cluster host per case (each the
lab's cluster with one input broken) fails every host; the lab's audit logs (both API servers)
and the Google API's log then prove that nothing was written. A case that got through would
write its plan to the ledger, and the audit check would catch it.
"""

import copy
import json
import os
import subprocess

import yaml

from .conftest import LAB

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def _sa_with_another_key(tmp_path):
    from cryptography.hazmat.primitives import serialization  # pylint: disable=C0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # pylint: disable=C0415
    with open(os.path.join(LAB, "gcp-sa.json"), encoding="utf-8") as fh:
        sa = json.load(fh)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa["private_key"] = key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
    path = tmp_path / "unknown-sa.json"
    path.write_text(json.dumps(sa))
    path.chmod(0o600)
    return str(path)


def _unreadable_key(tmp_path):
    """A backup directory whose first WireGuard key cannot be read (a directory where the key
    file should be: root reads any file)."""
    root = tmp_path / "backups"
    (root / "x8p9sk2tzv" / "vpn-wg" / "hub-0.key").mkdir(parents=True, mode=0o700)
    return str(root)


def cases(base, tmp_path):
    """{host: (variables to override, text the refusal must contain)}."""
    dns, aws, gcp = base["cloudhop_dns"], base["cloudhop_aws"], base["cloudhop_gcp"]
    to_gcp = {"cloudhop_target_cloud": "gcp"}
    hub = base["cloudhop_vpn_hub"]
    wg = {"cloudhop_vpn_backend": "wireguard", "cloudhop_vpn_tunnel_mtu": 1500,
          "cloudhop_vpn_hub": dict(hub, count=2)}
    return {
        # a fleet's settings (checked before the first phase of the run)
        "fleet-drains-negative": ({"cloudhop_fleet_drains": -1}, "cloudhop_fleet_drains"),
        # the gates
        "gate-ping-parallel-negative": ({"cloudhop_gate_ping_parallel": -1},
                                        "cloudhop_gate_ping_parallel is -1: give 0"),
        "gate-drain-peers-negative": ({"cloudhop_gate_drain_peers": -2},
                                      "cloudhop_gate_drain_peers is -2: give 0"),
        # networks
        "target-overlaps-source": ({"cloudhop_target_node_cidr": "10.2.0.0/16"},
                                   "cloudhop_target_node_cidr"),
        "vpn-in-a-cloud-network": ({"cloudhop_vpn_cidr": "172.31.10.0/24"}, "cloudhop_vpn_cidr"),
        "vpn-in-the-pod-network": ({"cloudhop_vpn_cidr": "172.25.5.0/24"}, "cloudhop_vpn_cidr"),
        "pods-overlap-services": ({"cloudhop_pod_cidr": "10.240.0.0/16"}, "cloudhop_pod_cidr"),
        "not-a-cidr": ({"cloudhop_vpn_cidr": "10.20.0.0/33"}, "cloudhop_vpn_cidr"),
        "tunnel-mtu-too-small": ({"cloudhop_vpn_tunnel_mtu": 1000},
                                 "cloudhop_vpn_tunnel_mtu 1000, at least 1330"),
        # target cloud and credentials
        "unknown-target-cloud": ({"cloudhop_target_cloud": "azure", "cloudhop_target_dc":
                                  "azure-westeurope", "cloudhop_target_node_cidr": "10.224.0.0/16",
                                  "cloudhop_target_machine": {"vmSize": "Standard_D2s_v3"}},
                                 "cloudhop_target_cloud"),
        "target-machine-not-a-dict": ({"cloudhop_target_machine": "t3.large"},
                                      "cloudhop_target_machine"),
        "aws-keys-missing": ({"cloudhop_aws": {"region": aws["region"]}},
                             "cloudhop_aws.access_key_id"),
        "aws-secret-malformed": ({"cloudhop_aws": dict(aws, secret_access_key="short")},
                                 "secret_access_key"),
        "gcp-key-missing": (dict(to_gcp, cloudhop_gcp={"network": gcp["network"]}),
                            "cloudhop_gcp.service_account"),
        "gcp-json-malformed": (dict(to_gcp, cloudhop_gcp=dict(
            gcp, service_account='{"type": "service_account", "project_id": ')),
            "gcp.service_account is not valid JSON"),
        "gcp-wrong-key-type": (dict(to_gcp, cloudhop_gcp=dict(gcp, service_account={
            "type": "authorized_user", "project_id": "p", "client_email": "a@b",
            "private_key": "x"})), "not 'service_account'"),
        "gcp-key-unknown-to-google": (dict(to_gcp, cloudhop_gcp=dict(
            gcp, service_account=_sa_with_another_key(tmp_path))), "Google refused a token"),
        # the cluster, its nodes and workloads
        "no-such-cluster": ({"cloudhop_cluster_id": "zzzzzzzzzz"}, "zzzzzzzzzz"),
        "no-such-machinedeployment": ({"cloudhop_source_machinedeployments": ["nope-md"]},
                                      "cloudhop_source_machinedeployments: nope-md not found"),
        "empty-node-group": ({"cloudhop_nodes_group": "no_such_group"}, "cloudhop_nodes_group"),
        "no-such-ingress-service": ({"cloudhop_ingress_service": {
            "namespace": "ingress-nginx", "name": "nope"}}, "cloudhop_ingress_service"),
        # a name kube-apiserver would refuse when the ledger is written (preflight's name check)
        "ledger-name-not-a-configmap-name": ({"cloudhop_ledger_name": "Cloudhop_Migration"},
                                             "cloudhop_ledger_name: the ledger ConfigMap "
                                             "'Cloudhop_Migration' would be refused"),
        "seed-kubeconfig-missing": ({"cloudhop_seed_kubeconfig": "/nonexistent/seed.kubeconfig"},
                                    "/nonexistent/seed.kubeconfig"),
        # VPN
        "unknown-vpn-mode": ({"cloudhop_vpn_mode": "both"}, "cloudhop_vpn_mode"),
        "hub-without-address": ({"cloudhop_vpn_mode": "hub", "cloudhop_vpn_hub": {}},
                                "cloudhop_vpn_hub.address"),
        "hub-port-not-a-nodeport": ({"cloudhop_vpn_mode": "hub", "cloudhop_vpn_hub": {
            "address": "198.18.0.10", "node_port": 80}}, "cloudhop_vpn_hub.node_port 80"),
        # the VPN's backend and hubs
        "unknown-vpn-backend": ({"cloudhop_vpn_backend": "ipsec"}, "cloudhop_vpn_backend"),
        "wireguard-on-the-seeds-openvpn-server": (dict(wg, cloudhop_vpn_mode="seed"),
                                                  "wireguard needs a VPN hub of the migration's"),
        "two-openvpn-hubs": ({"cloudhop_vpn_mode": "hub", "cloudhop_vpn_hub": dict(hub, count=2)},
                             "more than one hub needs cloudhop_vpn_backend=wireguard"),
        "nine-wireguard-hubs": (dict(wg, cloudhop_vpn_hub=dict(hub, count=9)),
                                "cloudhop_vpn_hub.count is 9: give 1 to 8 hubs"),
        "wireguard-node-ports-past-the-range": (
            dict(wg, cloudhop_vpn_hub=dict(hub, count=2, wireguard_node_port=32767)),
            "the 2 hubs take NodePorts 32767-32768, outside the NodePort range"),
        "wireguard-slots-beyond-the-vpn": (dict(wg, cloudhop_vpn_cidr="10.20.0.0/28"),
                                           "VPN network 10.20.0.0/28 has room for 0 nodes"),
        "wireguard-key-unreadable": (dict(wg, cloudhop_backup_dir=_unreadable_key(tmp_path)),
                                     "vpn-wg/hub-0.key cannot be read"),
        "wireguard-mtu-budget-too-small": (dict(wg, cloudhop_vpn_tunnel_mtu=1300),
                                           "flannel.1 over the tunnel would get MTU 1250"),
        # the lab's pods have MTU 1450 (VXLAN on a 1500 underlay): WireGuard's default leaves 1370
        "wireguard-pods-do-not-fit": (dict(wg, cloudhop_vpn_tunnel_mtu=0),
                                      "veth_mtu 1450 is larger than flannel.1's MTU over "
                                      "WireGuard (1370"),
        # a name no node's tunnel would have when the gates verify it: the client's config
        # says dev kube
        "vpn-interface-not-the-clients-dev": ({"cloudhop_vpn_interface": "tun7"},
                                              "cloudhop_vpn_interface is tun7, but the cluster's "
                                              "OpenVPN client config"),
        # DNS
        "ttl-too-low": ({"cloudhop_dns": dict(dns, ttl=1)}, "ttl 1 is out of range"),
        "ttl-too-high": ({"cloudhop_dns": dict(dns, ttl=86400)}, "ttl 86400 is out of range"),
        "record-not-in-zone": ({"cloudhop_dns": dict(dns, record="app.other.test")},
                               "the record app.other.test is not in zone example.test"),
        "zone-missing": ({"cloudhop_dns": {k: v for k, v in dns.items() if k != "zone"}},
                         "zone is not set"),
        "tsig-key-missing": ({"cloudhop_dns": {k: v for k, v in dns.items()
                                               if k != "key_secret"}}, "key_secret"),
        "unknown-dns-provider": ({"cloudhop_dns": dict(dns, provider="bind9")}, "provider"),
        "clouddns-without-account": ({"cloudhop_gcp": {}, "cloudhop_dns": {
            "provider": "clouddns", "zone": "example.test", "ttl": 60}},
            "clouddns needs a service account"),
    }


def _failures(stdout):
    """{host: every failure message of the run} from the json callback's output."""
    out = {}
    doc = json.loads(stdout[stdout.index("{"):])
    for play in doc["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                if res.get("failed"):
                    out.setdefault(host, []).append(str(res.get("msg", "")))
    return out


def test_bad_input_is_refused_before_any_write(tmp_path):
    with open(os.path.join(LAB, "user_clusters.yml"), encoding="utf-8") as fh:
        inv = yaml.safe_load(fh)
    (cid, base), = inv["all"]["children"]["user_clusters"]["hosts"].items()
    table = cases(base, tmp_path)
    assert len(table) >= 25
    hosts = {}
    for name, (override, dummy) in table.items():
        host = copy.deepcopy(base)
        host.update(override)
        hosts[name] = host
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"all": {"children": {"user_clusters": {"hosts": hosts}}}}))
    lab = [os.path.join(REPO, ".venv", "bin", "python"), "-m", "cloudhop_lab"]
    mark = subprocess.run(lab + ["audit", "mark"], capture_output=True, text=True, check=True,
                          cwd=REPO).stdout.strip()
    gcp_mark = json.loads(subprocess.run(lab + ["admin", '{"cmd": "gcp"}'], capture_output=True,
                                         text=True, check=True, cwd=REPO).stdout)["mark"]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_FORKS="10")
    proc = subprocess.run([os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
                           "-i", os.path.join(LAB, "nodes.cloudhop.yml"), "-i", str(bad),
                           os.path.join(REPO, "playbooks", "preflight.yml")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode != 0
    failures = _failures(proc.stdout)
    unclear = {name: failures.get(name) for name, (dummy, want) in table.items()
               if not any(want in msg for msg in failures.get(name, []))}
    assert not unclear, json.dumps(unclear, indent=1)[:6000]
    # nothing was written: no API write (dry runs are reads), no Google API write, no ledger
    audit = json.loads(subprocess.run(lab + ["audit", "writes", "--since", mark],
                                      capture_output=True, text=True, check=True,
                                      cwd=REPO).stdout)
    assert audit["writes"] == [], audit["writes"]
    gcp = json.loads(subprocess.run(lab + ["admin", json.dumps({"cmd": "gcp", "since": gcp_mark})],
                                    capture_output=True, text=True, check=True, cwd=REPO).stdout)
    assert gcp["writes"] == [], gcp["writes"]
    assert cid == "x8p9sk2tzv"
