# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WireGuard backend's controller side: keys, the address plan, slots, hub config, the
VPN variables' checks and the MTU budget."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import stat
import subprocess
import shutil

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import network, wireguard
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

# RFC 7748 section 6.1: Alice's private and public key
ALICE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUB = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")


def test_public_key_is_x25519_of_rfc7748():
    pub = wireguard.public_key(base64.b64encode(ALICE).decode())
    assert base64.b64decode(pub) == ALICE_PUB


@pytest.mark.skipif(shutil.which("wg") is None, reason="wireguard-tools not installed")
def test_keys_agree_with_wg_pubkey():
    key = wireguard.new_private_key()
    out = subprocess.run(["wg", "pubkey"], input=key + "\n", capture_output=True, text=True,
                         check=True).stdout.strip()
    assert wireguard.public_key(key) == out


def test_public_key_refuses_what_is_not_a_key():
    with pytest.raises(MigrationError, match="not a WireGuard key"):
        wireguard.public_key("not base64 at all!")
    with pytest.raises(MigrationError, match="16 bytes, not 32"):
        wireguard.public_key(base64.b64encode(b"x" * 16).decode())


def test_ensure_keys_makes_0600_keeps_and_rotates(tmp_path):
    d = str(tmp_path / "backups" / "vpn-wg")
    keys, made = wireguard.ensure_keys(d, ["hub-0", "slot-0"])
    assert made == ["hub-0", "slot-0"]
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.dirname(d)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(d, "hub-0.key")).st_mode) == 0o600
    again, made = wireguard.ensure_keys(d, ["hub-0", "slot-0"])
    assert made == [] and again == keys
    rotated, made = wireguard.ensure_keys(d, ["hub-0", "slot-0"], rotate=["hub-0"])
    assert made == ["hub-0"] and rotated["hub-0"] != keys["hub-0"]
    assert rotated["slot-0"] == keys["slot-0"]


def test_ensure_keys_in_check_mode_writes_nothing(tmp_path):
    d = str(tmp_path / "vpn-wg")
    keys, made = wireguard.ensure_keys(d, ["hub-0"], check_mode=True)
    assert made == ["hub-0"] and keys == {"hub-0": None} and not os.path.exists(d)


def test_a_key_file_that_is_not_a_key_is_named(tmp_path):
    (tmp_path / "hub-0.key").write_text("garbage\n")
    with pytest.raises(MigrationError, match=r"hub-0.key is not a WireGuard key.*remove it"):
        wireguard.ensure_keys(str(tmp_path), ["hub-0"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_key_file_is_named(tmp_path):
    path = tmp_path / "hub-0.key"
    path.write_text(wireguard.new_private_key())
    path.chmod(0)
    with pytest.raises(MigrationError, match="hub-0.key cannot be read"):
        wireguard.ensure_keys(str(tmp_path), ["hub-0"])


def test_address_plan_hubs_first_slots_from_16():
    p = wireguard.address_plan("10.20.0.0/24", 2, 3)
    assert p["hubs"] == ["10.20.0.1/24", "10.20.0.2/24"]
    assert p["slots"] == ["10.20.0.16/24", "10.20.0.17/24", "10.20.0.18/24"]


def test_address_plan_refuses_what_does_not_fit():
    with pytest.raises(MigrationError, match="room for 15 nodes"):
        wireguard.address_plan("10.20.0.0/27", 2, 16)
    with pytest.raises(MigrationError, match="count is 9"):
        wireguard.address_plan("10.20.0.0/24", 9, 3)


def test_assign_slots_keeps_fills_the_lowest_and_runs_out():
    addrs = ["10.20.0.16/24", "10.20.0.17/24", "10.20.0.18/24"]
    first, added = wireguard.assign_slots(["b", "a"], {}, addrs)
    assert first == {"a": "0 10.20.0.16/24", "b": "1 10.20.0.17/24"} and added == ["a", "b"]
    # a gone keeps its slot; c gets the free one
    second, added = wireguard.assign_slots(["b", "c"], first, addrs)
    assert second["c"] == "2 10.20.0.18/24" and second["a"] == first["a"] and added == ["c"]
    with pytest.raises(MigrationError, match="no WireGuard slot left for node d"):
        wireguard.assign_slots(["d"], second, addrs)
    with pytest.raises(MigrationError, match="not '<slot> <address>'"):
        wireguard.assign_slots(["a"], {"x": ""}, addrs)


def test_hub_config_has_every_slot_as_a_peer():
    text = wireguard.hub_config("KEY=", 51820, ["P0=", "P1="], ["10.20.0.16/24", "10.20.0.17/24"])
    assert text.startswith("[Interface]\nPrivateKey = KEY=\nListenPort = 51820\n")
    assert text.count("[Peer]") == 2
    assert "PublicKey = P1=\nAllowedIPs = 10.20.0.17/32\nPersistentKeepalive = 1" in text


def test_plan_endpoints_and_the_agents_hub_list():
    p = wireguard.plan("10.20.0.0/24", 2, 4, ["H0=", "H1="], ["S0="], "192.0.2.10", 31820)
    assert [h["name"] for h in p["hubs"]] == ["cloudhop-vpn-hub", "cloudhop-vpn-hub-2"]
    assert [h["endpoint"] for h in p["hubs"]] == ["192.0.2.10:31820", "192.0.2.10:31821"]
    assert p["node_hubs"] == "H0=@192.0.2.10:31820@10.20.0.1 H1=@192.0.2.10:31821@10.20.0.2"


@pytest.mark.parametrize("args, message", [
    (("ipsec", "hub", 1), "cloudhop_vpn_backend is 'ipsec'"),
    (("wireguard", "seed", 1), "wireguard needs a VPN hub of the migration's own"),
    (("openvpn", "hub", 2), "more than one hub needs cloudhop_vpn_backend=wireguard"),
    (("openvpn", "seed", 2), "the seed has one openvpn-server"),
    (("wireguard", "hub", 0, "10.20.0.0/24"), "count is 0"),
    (("wireguard", "hub", "two"), "count is 'two'"),
    (("wireguard", "hub", 2, "10.20.0.0/28", 0, 3), "has room for 0 nodes"),
    (("wireguard", "hub", 2, "10.20.0.0/24", 4, 6), "slots is 4, fewer than the 6 nodes"),
])
def test_vpn_check_names_the_variable(args, message):
    problems = wireguard.vpn_check(*args)["problems"]
    assert len(problems) == 1 and message in problems[0], problems


@pytest.mark.parametrize("count, node_port, message", [
    (2, 32767, "the 2 hubs take NodePorts 32767-32768, outside the NodePort range 30000-32767"),
    (1, 29999, "wireguard_node_port 29999 is outside the NodePort range 30000-32767"),
    (3, "x", "wireguard_node_port is 'x'"),
])
def test_vpn_check_refuses_hub_node_ports_outside_the_range(count, node_port, message):
    problems = wireguard.vpn_check("wireguard", "hub", count, node_port=node_port)["problems"]
    assert len(problems) == 1 and message in problems[0], problems


def test_vpn_check_takes_the_last_node_ports_of_the_range():
    assert wireguard.vpn_check("wireguard", "hub", 8, node_port=32760)["problems"] == []
    assert wireguard.vpn_check("wireguard", "hub", 1, node_port=30000)["problems"] == []
    assert wireguard.vpn_check("openvpn", "hub", 1, node_port=32767)["problems"] == []
    # the seed's openvpn-server has its own Service: no hub port is checked
    assert wireguard.vpn_check("openvpn", "seed", 1, node_port=40000)["problems"] == []


def test_vpn_check_refuses_the_openvpn_hubs_node_port_outside_the_range():
    problems = wireguard.vpn_check("openvpn", "hub", 1, node_port=80)["problems"]
    assert problems == ["cloudhop_vpn_hub.node_port 80 is outside the NodePort range "
                        "30000-32767"], problems


def test_vpn_check_default_slots():
    assert wireguard.vpn_check("wireguard", "hub", 2, "10.20.0.0/24", 0, 6) == \
        {"problems": [], "slots": 32}
    assert wireguard.vpn_check("wireguard", "hub", 2, "10.20.0.0/24", 0, 30)["slots"] == 90
    assert wireguard.vpn_check("wireguard", "hub", 2, "10.20.0.0/26", 0, 30)["slots"] == 47
    assert wireguard.vpn_check("openvpn", "seed", 1) == {"problems": [], "slots": 0}


def test_mtu_budget_of_wireguard():
    out = network.mtu_budget(1500, 0, None, backend="wireguard")
    assert out["tunnel_mtu"] == 1420 and out["flannel_mtu"] == 1370 and out["problems"] == []
    assert not out["fragments"]
    assert network.mtu_budget(1500, 0)["tunnel_mtu"] == 1500  # OpenVPN's own
    out = network.mtu_budget(1380, 0, None, backend="wireguard")
    assert out["problems"] == ["the MTU budget is too small: the underlay's MTU 1380 leaves "
                               "WireGuard 1300 and flannel.1 over it 1250 (< 1280); the nodes "
                               "need an underlay MTU of at least 1410"]


def test_pods_made_for_vxlan_on_the_host_do_not_fit_wireguard_unless_it_fragments():
    out = network.mtu_budget(1500, 0, 1450, backend="wireguard")
    assert len(out["problems"]) == 1
    assert "veth_mtu 1450 is larger than flannel.1's MTU over WireGuard (1370" in \
        out["problems"][0]
    assert "set cloudhop_vpn_tunnel_mtu to 1500" in out["problems"][0]
    assert "by up to 60 bytes" in out["problems"][0]
    out = network.mtu_budget(1500, 1500, 1450, backend="wireguard")
    assert out["problems"] == [] and out["fragments"] and out["flannel_mtu"] == 1450
