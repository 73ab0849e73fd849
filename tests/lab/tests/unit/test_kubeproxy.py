"""kube-proxy's NodePort rules (pure function; the integration suite runs them for real)."""

from cloudhop_lab.dataplane.kubeproxy import ruleset


def _svc(name, etp=None, typ="LoadBalancer"):
    spec = {"type": typ, "ports": [{"name": "http", "port": 80, "nodePort": 30000,
                                    "targetPort": "http", "protocol": "TCP"}]}
    if etp:
        spec["externalTrafficPolicy"] = etp
    return {"metadata": {"namespace": "ingress-nginx", "name": name}, "spec": spec}


def _eps(name, *addrs):
    return {("ingress-nginx", name): {"subsets": [{
        "ports": [{"name": "http", "port": 80}],
        "addresses": [{"ip": ip, "nodeName": node} for ip, node in addrs]}]}}


def test_cluster_policy_dnats_to_every_ready_endpoint_and_masquerades():
    text = ruleset("n1", "10.2.0.10", [_svc("lb")],
                   _eps("lb", ("172.25.1.5", "n2"), ("172.25.0.7", "n1")))
    assert ("ip daddr 10.2.0.10 tcp dport 30000 meta mark set meta mark or 0x4000 dnat ip to numgen random "
            "mod 2 map { 0 : 172.25.0.7 . 80, 1 : 172.25.1.5 . 80 }") in text
    # the masquerade is not in this table: it is iptables' KUBE-POSTROUTING, as with real
    # kube-proxy, so a rule inserted ahead of its jump (the node hooks' SNAT) wins
    assert "postrouting" not in text and "masquerade" not in text
    assert "reject" not in text


def test_local_policy_uses_only_this_nodes_endpoints_and_keeps_the_source():
    text = ruleset("n1", "10.2.0.10", [_svc("lb", "Local")],
                   _eps("lb", ("172.25.1.5", "n2"), ("172.25.0.7", "n1")))
    assert "dnat ip to numgen random mod 1 map { 0 : 172.25.0.7 . 80 }" in text
    assert "mark or 0x4000" not in text
    text = ruleset("n3", "10.2.0.12", [_svc("lb", "Local")], _eps("lb", ("172.25.1.5", "n2")))
    assert "ip daddr 10.2.0.12 tcp dport 30000 reject with tcp reset" in text


def test_no_ready_endpoint_rejects_and_cluster_ip_services_get_no_rule():
    text = ruleset("n1", "10.2.0.10", [_svc("lb"), _svc("internal", typ="ClusterIP")], {})
    assert "tcp dport 30000 reject with tcp reset" in text
    assert text.count("tcp dport") == 1
