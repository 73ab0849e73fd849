"""route_verify's parsing and judging, on the seed document's own before/after listings."""

import json
import os

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import netcheck

FIX = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name):
    with open(os.path.join(FIX, name), encoding="utf-8") as fh:
        return fh.read()


def model(addr, route, link=""):
    return netcheck.parse_text(fixture(addr), fixture(route), fixture(link) if link else "")


def checks(violations):
    return sorted(v["check"] for v in violations)


def test_route_text_parses_the_seed_listing_before():
    routes = netcheck.parse_route_text(fixture("seed000_route_before.txt"))
    assert routes[0] == {"dst": "default", "type": "unicast", "gateway": "10.2.0.1",
                         "dev": "ens192", "flags": [], "scope": None, "protocol": "dhcp",
                         "prefsrc": "10.2.9.219"}
    peer = [r for r in routes if r["dst"] == "172.25.1.0/24"][0]
    assert peer["gateway"] == "172.25.1.0" and peer["dev"] == "flannel.1"
    assert peer["flags"] == ["onlink"]
    docker = [r for r in routes if r["dev"] == "docker0"][0]
    assert "linkdown" in docker["flags"]
    assert len([r for r in routes if r["dev"] and r["dev"].startswith("cali")]) == 7


def test_addr_text_parses_point_to_point_and_flannel():
    links, addrs = netcheck.parse_addr_text(fixture("seed000_addr_after.txt"))
    assert "POINTOPOINT" in links["kube"]["flags"] and "UP" in links["kube"]["flags"]
    assert addrs["kube"] == [{"local": "10.20.0.46", "peer": "10.20.0.45", "prefixlen": 32}]
    assert links["flannel.1"]["mtu"] == 1450 and links["flannel.1"]["ifindex"] == 18
    assert addrs["flannel.1"][0]["local"] == "172.25.0.0"
    # before and after the canal restart flannel.1 is another device (new ifindex and MAC)
    before, dummy = netcheck.parse_addr_text(fixture("seed000_addr_before.txt"))
    assert before["flannel.1"]["ifindex"] == 13
    assert before["flannel.1"]["mac"] != links["flannel.1"]["mac"]


def test_before_the_vpn_the_vpn_checks_fail_with_expected_and_found():
    m = model("seed000_addr_before.txt", "seed000_route_before.txt")
    m["links"].pop("kube")  # the node before the client ran had no kube interface
    m["addrs"].pop("kube")
    violations = netcheck.judge(m, {"vpn_cidr": "10.20.0.0/24"})
    assert checks(violations) == ["vpn_interface_exists", "vpn_route"]
    route = [v for v in violations if v["check"] == "vpn_route"][0]
    assert route["expected"] == "10.20.0.0/24 dev kube" and route["found"] == "no route"
    # the failure line of a missing tunnel says what to look at and which variable to check
    missing = netcheck.violation_text(violations[0])
    assert missing.startswith("vpn_interface_exists: expected interface kube, found missing (")
    assert "no tunnel device kube on this node" in missing
    assert "cloudhop_vpn_interface" in missing
    assert netcheck.violation_text(route) == \
        "vpn_route: expected 10.20.0.0/24 dev kube, found no route"


@pytest.mark.parametrize("routes", ["seed000_route_vpn.txt", "seed000_route_after.txt"])
def test_after_the_vpn_every_vpn_check_passes(routes):
    """Both listings the seed shows once the VPN client runs (before and after canal's restart)."""
    m = model("seed000_addr_after.txt", routes)
    assert netcheck.judge(m, {"vpn_cidr": "10.20.0.0/24",
                              "peer_pod_cidrs": ["172.25.1.0/24"]}) == []


def test_vpn_address_outside_the_cidr_is_named():
    m = model("seed000_addr_after.txt", "seed000_route_after.txt")
    violations = netcheck.judge(m, {"vpn_cidr": "10.30.0.0/24"})
    assert checks(violations) == ["vpn_address", "vpn_route"]
    assert [v for v in violations if v["check"] == "vpn_address"][0]["found"] == ["10.20.0.46"]


def test_flannel_over_kube_with_the_detail_listing():
    m = model("seed000_addr_after.txt", "seed000_route_after.txt", "seed000_link_after_detail.txt")
    assert m["links"]["flannel.1"]["vxlan"] == {"id": 1, "local": "10.20.0.46", "port": 8472,
                                                "dev": "kube"}
    assert netcheck.judge(m, {"vpn_cidr": "10.20.0.0/24", "flannel_underlay": "kube",
                              "peer_pod_cidrs": ["172.25.1.0/24"]}) == []
    # still on the host NIC is what the check must catch
    wrong = netcheck.judge(m, {"flannel_underlay": "default"})
    assert checks(wrong) == ["flannel_underlay"]


def test_flannel_mtu_larger_than_the_underlay_allows():
    m = model("seed000_addr_after.txt", "seed000_route_after.txt", "seed000_link_after_detail.txt")
    m["links"]["kube"]["mtu"] = 1400
    violations = netcheck.judge(m, {"flannel_underlay": "kube"})
    assert checks(violations) == ["flannel_mtu"]
    assert violations[0]["found"] == 1450 and violations[0]["expected"].startswith("<= 1350")
    assert netcheck.judge(m, {"flannel_underlay": "kube", "check_mtu": False}) == []


def test_flannel_wrong_vni_and_missing_device():
    m = model("seed000_addr_after.txt", "seed000_route_after.txt", "seed000_link_after_detail.txt")
    assert checks(netcheck.judge(m, {"flannel_underlay": "kube", "flannel_vni": 4096})) == \
        ["flannel_vni"]
    m["links"].pop("flannel.1")
    assert checks(netcheck.judge(m, {"flannel_underlay": "kube"})) == ["flannel_exists"]


def test_missing_and_wrong_peer_routes():
    m = model("seed000_addr_after.txt", "seed000_route_after.txt")
    violations = netcheck.judge(m, {"peer_pod_cidrs": ["172.25.1.0/24", "172.25.2.0/24"]})
    assert checks(violations) == ["peer_pod_route"]
    assert violations[0]["expected"] == "172.25.2.0/24 via 172.25.2.0 dev flannel.1 onlink"
    for r in m["routes"]:
        if r["dst"] == "172.25.1.0/24":
            r["flags"] = []
    assert checks(netcheck.judge(m, {"peer_pod_cidrs": ["172.25.1.0/24"]})) == ["peer_pod_route"]


def test_json_and_text_give_the_same_model_for_the_same_state():
    addr_json = json.dumps([
        {"ifindex": 17, "ifname": "kube", "mtu": 1500,
         "flags": ["POINTOPOINT", "MULTICAST", "NOARP", "UP", "LOWER_UP"],
         "addr_info": [{"family": "inet", "local": "10.20.0.46", "address": "10.20.0.45",
                        "prefixlen": 32}]}])
    route_json = json.dumps([{"dst": "10.20.0.0/24", "gateway": "10.20.0.45", "dev": "kube",
                              "flags": []}])
    j = netcheck.parse_output("%s\n%s\n%s\n%s\n[]"
                              % (addr_json, netcheck.SEPARATOR, route_json, netcheck.SEPARATOR))
    t = netcheck.parse_output(fixture("seed000_addr_after.txt") + netcheck.SEPARATOR + "\n" +
                              "10.20.0.0/24 via 10.20.0.45 dev kube\n" + netcheck.SEPARATOR)
    assert j["addrs"]["kube"] == t["addrs"]["kube"]
    assert j["routes"][0]["dst"] == t["routes"][0]["dst"] == "10.20.0.0/24"
    assert netcheck.judge(j, {"vpn_cidr": "10.20.0.0/24"}) == []


def test_a_blackhole_route_is_typed_not_read_as_a_destination():
    """The node hooks' pod-CIDR blackhole: text and JSON listings give the same model, and the
    more specific flannel routes still satisfy the peer check."""
    text = ("blackhole 172.25.0.0/16 metric 4242\n"
            "172.25.1.0/24 via 172.25.1.0 dev flannel.1 onlink\n")
    routes = netcheck.parse_route_text(text)
    assert routes[0]["dst"] == "172.25.0.0/16" and routes[0]["type"] == "blackhole"
    assert routes[0]["dev"] is None and routes[0]["flags"] == []
    assert routes[1]["type"] == "unicast"
    m = netcheck.parse_json("[]", json.dumps([
        {"type": "blackhole", "dst": "172.25.0.0/16", "metric": 4242, "flags": []},
        {"dst": "172.25.1.0/24", "gateway": "172.25.1.0", "dev": "flannel.1",
         "flags": ["onlink"]}]), "[]")
    assert [(r["dst"], r["type"]) for r in m["routes"]] == [(r["dst"], r["type"]) for r in routes]
    assert netcheck.judge(m, {"peer_pod_cidrs": ["172.25.1.0/24"]}) == []


@pytest.mark.parametrize("opts,msg", [
    ({"vpn_cidr": "10.20.0.0/33"}, "vpn_cidr '10.20.0.0/33' is not a CIDR"),
    ({"peer_pod_cidrs": ["172.25.1.0/24", "nope"]}, "peer_pod_cidrs: 'nope' is not a CIDR"),
])
def test_bad_options_are_refused(opts, msg):
    assert msg in netcheck.check_options(opts)


def test_truncated_output_is_a_parse_error():
    with pytest.raises(netcheck.ParseError):
        netcheck.parse_output("[]" + netcheck.SEPARATOR)


def test_login_noise_before_the_listings_is_skipped():
    """raw runs on a tty: a profile's messages come first in stdout."""
    noise = "bash: pyenv: command not found\r\nWelcome to Flatcar\n"
    addr = '[{"ifindex": 2, "ifname": "ens192", "flags": ["UP"], "mtu": 1500, "addr_info": []}]'
    m = netcheck.parse_output(noise + addr + "\n" + netcheck.SEPARATOR + "\n[]\n" +
                              netcheck.SEPARATOR + "\n[]")
    assert list(m["links"]) == ["ens192"]
    text = netcheck.parse_output(noise + fixture("seed000_addr_after.txt") + netcheck.SEPARATOR +
                                 "\n" + fixture("seed000_route_after.txt") + netcheck.SEPARATOR)
    assert sorted(text["links"]) == ["flannel.1", "kube"]


def test_output_without_interfaces_is_an_error_not_a_pass():
    with pytest.raises(netcheck.ParseError, match="no interface found"):
        netcheck.parse_output("garbage\n" + netcheck.SEPARATOR + "\n" + netcheck.SEPARATOR)


def test_the_detailed_address_listing_carries_the_vxlan_settings():
    """route_verify reads ``ip -d -j addr show`` and the routes, no third listing: the link
    details (kind, VXLAN id/port/local/underlay) come from the address listing's linkinfo."""
    addr = json.dumps([
        {"ifindex": 2, "ifname": "ens192", "flags": ["UP"], "mtu": 1500,
         "addr_info": [{"family": "inet", "local": "10.2.0.10", "prefixlen": 17}]},
        {"ifindex": 6, "ifname": "flannel.1", "flags": ["UP"], "mtu": 1450,
         "address": "5a:be:b1:8a:74:7f",
         "linkinfo": {"info_kind": "vxlan", "info_data": {"id": 1, "local": "10.2.0.10",
                                                          "link": "ens192", "port": 8472}},
         "addr_info": [{"family": "inet", "local": "172.25.0.0", "prefixlen": 32}]}])
    routes = json.dumps([{"dst": "default", "gateway": "10.2.0.1", "dev": "ens192", "flags": []}])
    m = netcheck.parse_output("%s\n%s\n%s\n%s\n" % (addr, netcheck.SEPARATOR, routes,
                                                    netcheck.SEPARATOR))
    assert m["links"]["flannel.1"]["kind"] == "vxlan"
    assert m["links"]["flannel.1"]["vxlan"] == {"id": 1, "local": "10.2.0.10", "port": 8472,
                                                "dev": "ens192"}
    assert m["links"]["flannel.1"]["mac"] == "5a:be:b1:8a:74:7f"
    assert netcheck.judge(m, {"flannel_underlay": "default"}) == []
    assert netcheck.COMMAND.count("ip ") == 2 and "ip -d -j addr show" in netcheck.COMMAND


@pytest.mark.parametrize("opts,msg", [
    ({"node_pod_cidrs": {"a": "172.25.0.0/24"}}, "node_pod_cidrs needs nodes"),
    ({"nodes": ["a"], "node_pod_cidrs": {"a": "172.25.0/24x"}},
     "node_pod_cidrs: '172.25.0/24x' of node a is not a CIDR"),
    ({"nodes": []}, "nodes is empty"),
    ({"nodes": ["a"], "settle_timeout": -1}, "settle_timeout must be 0 or more"),
    ({"nodes": ["a"], "settle_interval": 0}, "settle_interval more than 0"),
    ({"routes_for": ["a"]}, "routes_for needs nodes"),
])
def test_bad_fan_out_options_are_refused(opts, msg):
    assert msg in netcheck.check_options(opts)


def test_each_node_of_a_fan_out_gets_the_other_nodes_cidrs_and_its_routes_choice():
    opts = {"nodes": ["a", "b", "c"], "peer_pod_cidrs": ["10.9.0.0/24"], "routes_for": ["b"],
            "node_pod_cidrs": {"a": "172.25.0.0/24", "b": "172.25.1.0/24", "c": "172.25.2.0/24"}}
    a, b = netcheck.node_options(opts, "a"), netcheck.node_options(opts, "b")
    assert a["peer_pod_cidrs"] == ["10.9.0.0/24", "172.25.1.0/24", "172.25.2.0/24"]
    assert b["peer_pod_cidrs"] == ["10.9.0.0/24", "172.25.0.0/24", "172.25.2.0/24"]
    assert (a["return_routes"], b["return_routes"]) == (False, True)
    assert netcheck.node_options(dict(opts, routes_for=None), "a")["return_routes"] is True
    assert opts["peer_pod_cidrs"] == ["10.9.0.0/24"]  # the task's options stay as they were


@pytest.mark.parametrize("violations,expected", [
    ([], False),
    ([{"check": "peer_pod_route"}], True),
    ([{"check": "peer_pod_route"}, {"check": "peer_pod_route"}], True),
    ([{"check": "peer_pod_route"}, {"check": "vpn_interface_exists"}], False),
    ([{"check": "flannel_underlay"}], False),
])
def test_only_a_node_short_of_peer_routes_alone_may_settle(violations, expected):
    assert netcheck.settling({"violations": violations}) is expected
    assert netcheck.settling({"ssh_unreachable": True, "msg": "refused"}) is False


def test_summary_can_leave_the_routes_out_but_keeps_the_default_route():
    m = netcheck.parse_text(fixture("seed000_addr_after.txt"), fixture("seed000_route_after.txt"))
    full, short = netcheck.summary(m), netcheck.summary(m, routes=False)
    assert full["routes"] == m["routes"] and "routes" not in short
    assert full["default_route"] == short["default_route"] == {"dev": "ens192",
                                                               "gateway": "10.2.0.1"}
    assert short["interfaces"] == full["interfaces"]
    assert netcheck.summary({"links": {}, "addrs": {}, "routes": []})["default_route"] is None


def test_peer_routes_of_many_nodes_are_each_found():
    """A node of a 100-node cluster routes 99 peer subnets: each is found (or named missing)."""
    routes = [{"dst": "172.25.%d.0/24" % i, "gateway": "172.25.%d.0" % i, "dev": "flannel.1",
               "flags": ["onlink"]} for i in range(1, 100) if i != 42]
    m = netcheck.parse_json("[]", json.dumps(routes), "[]")
    found = netcheck.judge(m, {"peer_pod_cidrs": ["172.25.%d.0/24" % i for i in range(1, 100)]})
    assert [v["expected"] for v in found] == ["172.25.42.0/24 via 172.25.42.0 dev flannel.1 onlink"]
