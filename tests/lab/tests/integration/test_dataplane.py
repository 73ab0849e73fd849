"""The data plane with real packets: namespaces, sshd, routes, flannel VXLAN, isolation."""

import http.client
import json
import os
import subprocess
import time

import yaml

from cloudhop_lab.dataplane.runtime import cali_name
from cloudhop_lab.dataplane.topology import router_ns

from .conftest import LAB, wait_for
from cloudhop_lab.dataplane.netns import ns_name

NODE_NS = ns_name("n-")  # this lab instance's node namespaces
POD_NS = ns_name("p-")  # this lab instance's pod namespaces

MD = "to-migrate-vsphere-node"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def netns_run(ns, *cmd, timeout=15):
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                          timeout=timeout, check=False)


def http_from(ns, url, timeout=3):
    code = ("import urllib.request,sys\n"
            "print(urllib.request.urlopen(sys.argv[1], timeout=%d).read().decode())" % timeout)
    return netns_run(ns, "python3", "-c", code, url, timeout=timeout + 10)


def ssh(ip, command):
    return subprocess.run(
        ["ssh", "-i", os.path.join(LAB, "ssh", "id_ed25519"), "-o", "BatchMode=yes",
         "-o", "UserKnownHostsFile=" + os.path.join(LAB, "ssh", "known_hosts"),
         "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5", "root@" + ip, command],
        capture_output=True, text=True, timeout=30, check=False)


def _nodes(core):
    """Ready, schedulable fixture nodes (earlier tests may leave some draining)."""
    def ok(n):
        return n.metadata.name.startswith(MD) and not n.metadata.deletion_timestamp and \
            not n.spec.unschedulable and any(c.type == "Ready" and c.status == "True"
                                             for c in n.status.conditions or [])
    return sorted((n for n in core.list_node().items if ok(n)), key=lambda n: n.metadata.name)


def _ip(node):
    return next(a.address for a in node.status.addresses if a.type == "InternalIP")


def _echo_pod(core, ns, name, node):
    core.create_namespaced_pod(ns, {"metadata": {"name": name, "labels": {"app": name}},
                                    "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                                             "containers": [{"name": "echo",
                                                             "image": "cloudhop/echo:lab",
                                                             "ports": [{"containerPort": 8080}]}]}})

    def ready():
        p = core.read_namespaced_pod(name, ns)
        return p if any(c.type == "Ready" and c.status == "True"
                        for c in p.status.conditions or []) else None
    return wait_for(ready, what="pod %s ready" % name)


def test_nodes_answer_ssh_like_cloud_vms(core):
    for node in _nodes(core):
        out = ssh(_ip(node), "hostname; ip -j addr show ens192; command -v python3 ip")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == node.metadata.name
        addr = json.loads(lines[1])[0]
        assert addr["ifname"] == "ens192" and addr["operstate"] == "UP"
        assert any(a["local"] == _ip(node) and a["prefixlen"] == 17 for a in addr["addr_info"])
        assert "/python3" in out.stdout and "/ip" in out.stdout


def test_a_node_has_a_root_home_of_its_own(core):
    """A login on a node must not run this machine's /root/.bashrc (pyenv here) nor see what
    another node wrote to its home: each node's /root is its own, with Debian's dotfiles."""
    first, second = [_ip(n) for n in _nodes(core)[:2]]
    marker = "cloudhop-home-%d" % os.getpid()
    out = ssh(first, "echo ${PYENV_ROOT:-unset}; ls -A ~; touch ~/%s" % marker)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "unset"
    assert ".bashrc" in lines[1:] and ".profile" in lines[1:] and ".pyenv" not in lines[1:]
    assert ssh(first, "test -e ~/%s" % marker).returncode == 0
    assert ssh(second, "test -e ~/%s" % marker).returncode == 1
    assert not os.path.exists(os.path.join("/root", marker))
    assert ssh(first, "rm ~/%s" % marker).returncode == 0


def test_ansible_reaches_every_node_through_the_nodes_inventory_plugin(core, tmp_path):
    """The lab's inventory is the collection's plugin over the user cluster's Node objects."""
    config = os.path.join(LAB, "nodes.cloudhop.yml")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    proc = subprocess.run([os.path.join(REPO, ".venv", "bin", "ansible-inventory"), "-i", config,
                           "--list"], capture_output=True, text=True, timeout=120, check=False,
                          env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    inv = json.loads(proc.stdout)
    names = sorted(n.metadata.name for n in _nodes(core))
    assert sorted(inv["workers"]["hosts"]) == names
    assert sorted(inv["md_to_migrate_vsphere_node"]["hosts"]) == names
    assert sorted(inv["old_workers"]["hosts"]) == names and sorted(inv["vsphere"]["hosts"]) == names

    def plain(value):  # ansible-inventory marks plugin-sourced strings as unsafe
        return value.get("__ansible_unsafe") if isinstance(value, dict) else value
    for node in _nodes(core):
        hv = {k: plain(v) for k, v in inv["_meta"]["hostvars"][node.metadata.name].items()}
        assert hv["ansible_host"] == next(a.address for a in node.status.addresses
                                          if a.type == "InternalIP")
        assert hv["node_pod_cidr"] == node.spec.pod_cidr and hv["node_cloud"] == "vsphere"
        assert "StrictHostKeyChecking=yes" in hv["ansible_ssh_common_args"]
    # a jump host and the address type come from options
    with open(config, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    other = os.path.join(str(tmp_path), "jump.cloudhop.yml")
    with open(other, "w", encoding="utf-8") as fh:
        yaml.safe_dump(dict(cfg, jump_host="ops@bastion.example.test:2222",
                            new_machinedeployments=["to-migrate-vsphere-node"],
                            old_machinedeployments=[]), fh)
    jump = json.loads(subprocess.run(
        [os.path.join(REPO, ".venv", "bin", "ansible-inventory"), "-i", other, "--list"],
        capture_output=True, text=True, timeout=120, check=True, env=env).stdout)
    args = plain(jump["_meta"]["hostvars"][names[0]]["ansible_ssh_common_args"])
    assert args.endswith("-o ProxyJump=ops@bastion.example.test:2222")
    assert sorted(jump["new_workers"]["hosts"]) == names
    assert not jump.get("old_workers", {}).get("hosts")
    proc = subprocess.run([os.path.join(REPO, ".venv", "bin", "ansible"), "-i", config, "all",
                           "-m", "ansible.builtin.ping", "-o"], capture_output=True, text=True,
                          timeout=120, check=False, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for node in _nodes(core):
        assert "%s | SUCCESS" % node.metadata.name in proc.stdout


def test_node_routes_look_like_the_seed_document(core):
    nodes = _nodes(core)
    node = nodes[0]
    out = ssh(_ip(node), "ip route show; ip -d link show flannel.1")
    routes = out.stdout
    assert "default via 10.2.0.1 dev ens192 proto dhcp src %s metric 100" % _ip(node) in routes
    assert "10.2.0.0/17 dev ens192 proto kernel scope link src %s" % _ip(node) in routes
    assert "10.2.0.1 dev ens192 proto dhcp scope link src %s metric 100" % _ip(node) in routes
    assert "172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown" in routes
    for peer in nodes[1:]:
        net = peer.spec.pod_cidr
        assert "%s via %s dev flannel.1 onlink" % (net, net.split("/")[0]) in routes
    assert "vxlan id 1 local %s dev ens192" % _ip(node) in routes
    assert "dstport 8472" in routes and "mtu 1450" in routes
    ann = node.metadata.annotations
    assert ann["flannel.alpha.coreos.com/public-ip"] == _ip(node)
    assert json.loads(ann["flannel.alpha.coreos.com/backend-data"])["VtepMAC"]


def test_flannel_recreates_a_deleted_vxlan_device(core):
    """flanneld watches the node's links (flannel v0.27's VXLAN device watcher): flannel.1
    deleted behind its back comes back with a new MAC, published on the Node, and the peers'
    neighbour entries follow it. The lab's agent sees it by a netlink event, not by polling."""
    nodes = _nodes(core)
    node, peer = nodes[0], nodes[1]
    ns = NODE_NS + node.metadata.name

    def link():
        out = netns_run(ns, "ip", "-j", "link", "show", "flannel.1")
        return json.loads(out.stdout)[0] if out.returncode == 0 and out.stdout.strip() else None
    before = link()
    assert before, "flannel.1 missing before the test"
    assert netns_run(ns, "ip", "link", "del", "flannel.1").returncode == 0
    after = wait_for(lambda: (link() or {}).get("ifindex") not in (None, before["ifindex"])
                     and link(), what="flannel.1 re-created on %s" % node.metadata.name)
    assert after["address"] != before["address"]

    def published():
        ann = core.read_node(node.metadata.name).metadata.annotations
        return json.loads(ann["flannel.alpha.coreos.com/backend-data"])["VtepMAC"] == \
            after["address"]
    wait_for(published, what="the new VtepMAC on the Node")
    gw = node.spec.pod_cidr.split("/")[0]

    def peer_follows():
        out = netns_run(NODE_NS + peer.metadata.name, "ip", "neigh", "show", gw,
                        "dev", "flannel.1").stdout
        return after["address"] in out
    wait_for(peer_follows, what="the peer's neighbour entry for %s" % gw)
    routes = netns_run(ns, "ip", "route").stdout
    assert "%s via %s dev flannel.1 onlink" % (peer.spec.pod_cidr,
                                               peer.spec.pod_cidr.split("/")[0]) in routes


def test_a_canal_restart_keeps_flannel_1(core):
    """flanneld restarted with the same settings keeps its VXLAN device (flannel-io/flannel#628),
    so a canal rollout does not change a node's VtepMAC nor break its pods' traffic."""
    node = _nodes(core)[0]
    ns = NODE_NS + node.metadata.name

    def link():
        return json.loads(netns_run(ns, "ip", "-j", "link", "show", "flannel.1").stdout)[0]
    before = link()
    pod = next(p for p in core.list_namespaced_pod("kube-system", label_selector="k8s-app=canal")
               .items if p.spec.node_name == node.metadata.name)
    core.delete_namespaced_pod(pod.metadata.name, "kube-system")

    def replaced():
        return [p for p in core.list_namespaced_pod("kube-system", label_selector="k8s-app=canal")
                .items if p.spec.node_name == node.metadata.name and p.metadata.uid !=
                pod.metadata.uid and any(c.type == "Ready" and c.status == "True"
                                         for c in p.status.conditions or [])]
    wait_for(replaced, timeout=60, what="a new canal pod on %s, ready" % node.metadata.name)
    after = link()
    assert (after["ifindex"], after["address"]) == (before["ifindex"], before["address"])


HOOKS = os.path.join(REPO, "roles", "vpn_overlay", "files", "node-hooks.sh")
SNAT_TAG = "cloudhop-flannel-snat"


def _recreate_flannel(ns):
    """Delete flannel.1 on a node; the lab's flannel re-creates it (new ifindex)."""
    def index():
        out = netns_run(ns, "ip", "-j", "link", "show", "flannel.1")
        return json.loads(out.stdout)[0]["ifindex"] if out.returncode == 0 else None
    before = index()
    assert before and netns_run(ns, "ip", "link", "del", "flannel.1").returncode == 0
    wait_for(lambda: index() not in (None, before), what="flannel.1 re-created in %s" % ns)


def _second_request_after_flannel_1_is_recreated(ip, ns):
    """A keep-alive connection to the ingress NodePort through ``ip``: one request, flannel.1
    re-created on that node, a second request on the same connection. The second's status, or
    the exception it raised."""
    conn = http.client.HTTPConnection(ip, 30000, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": "app.example.test"})
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        _recreate_flannel(ns)
        time.sleep(0.5)  # the peers program the new VtepMAC (a TCP retransmit would cover it)
        try:
            conn.request("GET", "/", headers={"Host": "app.example.test"})
            second = conn.getresponse()
            second.read()
            return second.status
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            return exc
    finally:
        conn.close()


def test_a_recreated_flannel_1_resets_masqueraded_connections_unless_the_hooks_snat_them(core):
    """A load balancer's connection to a NodePort whose ingress pod runs on another node is
    masqueraded out of flannel.1 (kube-proxy's KUBE-POSTROUTING, in iptables' nat table as on a
    real node). The kernel forgets masqueraded connections of a device that goes down, so when
    flannel re-creates flannel.1 (every canal underlay move) the connection's next packet is NATed
    afresh to another random port and the ingress pod resets it. The VPN client's node hooks
    SNAT that traffic to flannel.1's own address instead, first in nat POSTROUTING; SNAT is not
    tied to the device and the connection lives on. ``down`` takes the rules away again."""
    ingress_nodes = {p.spec.node_name for p in core.list_namespaced_pod("ingress-nginx").items}
    entry = next((n for n in _nodes(core) if n.metadata.name not in ingress_nodes), None)
    assert entry is not None, "every node runs an ingress pod; the test needs one that does not"
    ns, ip = NODE_NS + entry.metadata.name, _ip(entry)
    outcome = _second_request_after_flannel_1_is_recreated(ip, ns)
    assert isinstance(outcome, ConnectionResetError), outcome
    try:
        up = netns_run(ns, "sh", HOOKS, "up", "172.25.0.0/16")
        assert up.returncode == 0, up.stderr
        assert "SNATed to %s" % entry.spec.pod_cidr.split("/")[0] in up.stdout
        rules = netns_run(ns, "iptables", "-w", "-t", "nat", "-S", "POSTROUTING").stdout
        # first in POSTROUTING, ahead of kube-proxy's and flanneld's jumps
        assert [SNAT_TAG in line for line in rules.splitlines()[1:3]] == [True, True], rules
        for _round in range(2):
            assert _second_request_after_flannel_1_is_recreated(ip, ns) == 200
    finally:
        down = netns_run(ns, "sh", HOOKS, "down", "172.25.0.0/16")
    assert down.returncode == 0, down.stderr
    assert SNAT_TAG not in netns_run(ns, "iptables", "-w", "-t", "nat", "-S").stdout
    assert isinstance(_second_request_after_flannel_1_is_recreated(ip, ns), ConnectionResetError)


def test_the_hooks_add_the_snat_rules_once_flannel_1_appears():
    """On a new node the tunnel can come up before flanneld has made flannel.1: "up" then waits
    in the background and adds the rules for flannel.1's address once it exists; "down" ends the
    wait and removes them. Run in a scratch namespace of this lab instance."""
    ns = ns_name("t-hooks")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        up = netns_run(ns, "sh", HOOKS, "up", "172.25.0.0/16")
        assert up.returncode == 0, up.stderr
        assert "flannel.1 is not there yet" in up.stdout
        assert SNAT_TAG not in netns_run(ns, "iptables", "-w", "-t", "nat", "-S").stdout
        for cmd in (["ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport",
                     "8472", "nolearning"], ["ip", "addr", "add", "172.25.9.0/32", "dev",
                                             "flannel.1"], ["ip", "link", "set", "flannel.1", "up"]):
            assert netns_run(ns, *cmd).returncode == 0
        rules = wait_for(lambda: [line for line in netns_run(
            ns, "iptables", "-w", "-t", "nat", "-S", "POSTROUTING").stdout.splitlines()
            if SNAT_TAG in line], timeout=10, what="the SNAT rules after flannel.1 appeared")
        assert any("--to-source 172.25.9.0" in line for line in rules), rules
        down = netns_run(ns, "sh", HOOKS, "down", "172.25.0.0/16")
        assert down.returncode == 0, down.stderr
        assert SNAT_TAG not in netns_run(ns, "iptables", "-w", "-t", "nat", "-S").stdout
        # a second "up" while flannel.1 is missing, then "down": the waiter gives up (no
        # blackhole route left), so a flannel.1 made after that gets no rules
        netns_run(ns, "ip", "link", "del", "flannel.1")
        assert "not there yet" in netns_run(ns, "sh", HOOKS, "up", "172.25.0.0/16").stdout
        assert netns_run(ns, "sh", HOOKS, "down", "172.25.0.0/16").returncode == 0
        time.sleep(1.5)  # longer than the waiter's 1 s poll
        netns_run(ns, "ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport",
                  "8472", "nolearning")
        netns_run(ns, "ip", "addr", "add", "172.25.9.0/32", "dev", "flannel.1")
        time.sleep(1.5)
        assert SNAT_TAG not in netns_run(ns, "iptables", "-w", "-t", "nat", "-S").stdout
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


SYN_SENT = "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_syn_sent"


def _half_open_timeout(ns, addr):
    """The seconds left on a new half-open connection's tracking entry in ``ns``: a SYN to
    ``addr``, where nothing answers (a fresh address each time: the kernel may pick the same
    source port again, and a SYN from it would only refresh the old entry)."""
    netns_run(ns, "timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/%s/80" % addr)
    lines = [line for line in netns_run(ns, "cat", "/proc/net/nf_conntrack").stdout.splitlines()
             if " SYN_SENT " in line and "dst=%s " % addr in line]
    assert lines, "no SYN_SENT entry for the SYN to %s" % addr
    return max(int(line.split()[4]) for line in lines)


def test_the_hooks_shorten_half_open_connection_entries_and_put_the_kernel_default_back():
    """A SYN that got no answer keeps its tracking entry - and kube-proxy's DNAT to the endpoint
    chosen then - for nf_conntrack_tcp_timeout_syn_sent; a load balancer that reuses the port
    meanwhile follows it to a pod moved away since (the lab reproduced it: a request lost 35 s
    after its pod was deleted). While the overlay exists the hooks make it 21 s instead of 120;
    "up" twice keeps 21, "down" puts 120 back, and a value set on purpose is left alone. The
    kernel's own entries show it. Run in a scratch namespace of this lab instance."""
    ns = ns_name("t-synsent")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        # a link where nothing answers: a veth pair in the namespace, the far end without address
        for cmd in (["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                    ["ip", "addr", "add", "10.250.0.1/24", "dev", "v0"],
                    ["ip", "link", "set", "v0", "up"], ["ip", "link", "set", "v1", "up"],
                    ["ip", "neigh", "replace", "10.250.0.9", "lladdr", "02:00:0a:fa:00:09",
                     "dev", "v0"],
                    ["ip", "neigh", "replace", "10.250.0.10", "lladdr", "02:00:0a:fa:00:0a",
                     "dev", "v0"],
                    # connection tracking stays on after "down", as kube-proxy's rules keep it
                    ["nft", "add table ip keep; add chain ip keep out { type filter hook output "
                     "priority 0; }; add rule ip keep out ct state new accept"]):
            assert netns_run(ns, *cmd).returncode == 0
        up = netns_run(ns, "sh", HOOKS, "up", "172.25.0.0/16")
        assert up.returncode == 0, up.stderr
        assert "forgotten after 21 s, not 120 s" in up.stdout, up.stdout
        assert netns_run(ns, "cat", SYN_SENT).stdout.strip() == "21"
        assert _half_open_timeout(ns, "10.250.0.9") <= 21
        assert netns_run(ns, "sh", HOOKS, "up", "172.25.0.0/16").returncode == 0
        assert netns_run(ns, "cat", SYN_SENT).stdout.strip() == "21"
        down = netns_run(ns, "sh", HOOKS, "down", "172.25.0.0/16")
        assert down.returncode == 0, down.stderr
        assert netns_run(ns, "cat", SYN_SENT).stdout.strip() == "120"
        assert _half_open_timeout(ns, "10.250.0.10") > 100
        # a node whose operator chose a value of its own keeps it
        netns_run(ns, "sh", "-c", "echo 60 > " + SYN_SENT)
        up = netns_run(ns, "sh", HOOKS, "up", "172.25.0.0/16")
        assert "is 60 on this node (not the kernel's 120): left alone" in up.stdout, up.stdout
        assert netns_run(ns, "sh", HOOKS, "down", "172.25.0.0/16").returncode == 0
        assert netns_run(ns, "cat", SYN_SENT).stdout.strip() == "60"
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def test_pod_to_pod_across_nodes_goes_through_flannel(core, ns):
    nodes = _nodes(core)
    a = _echo_pod(core, ns, "pa", nodes[0].metadata.name)
    b = _echo_pod(core, ns, "pb", nodes[1].metadata.name)
    assert a.status.pod_ip.startswith(nodes[0].spec.pod_cidr.rsplit(".", 2)[0])
    node_ns = NODE_NS + nodes[1].metadata.name
    capture = subprocess.Popen(["ip", "netns", "exec", node_ns, "tcpdump", "-c", "1", "-nli",
                                "ens192", "udp port 8472"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    # the capture is armed once tcpdump says it is listening
    assert any("listening on" in capture.stderr.readline() for _i in range(3))
    out = http_from(POD_NS + a.metadata.uid[:12], "http://%s:8080/hello" % b.status.pod_ip)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["pod"] == "pb" and body["node"] == nodes[1].metadata.name
    assert body["cloud"] == "vsphere" and body["client"] == a.status.pod_ip
    captured = capture.communicate(timeout=10)[0]
    assert "8472" in captured  # the request crossed the underlay as VXLAN
    # the node has a /32 route to its local pod on a cali* veth
    routes = netns_run(NODE_NS + nodes[0].metadata.name, "ip", "route").stdout
    assert any(line.startswith(a.status.pod_ip + " dev cali") for line in routes.splitlines())
    # ... which answers the pod's ARP for 169.254.1.1 by proxy ARP at once, as Felix sets it
    # (the kernel's default proxy_delay holds a new pod's first answers up to 0.8 s)
    cali = cali_name(ns, "pa")
    assert netns_run(NODE_NS + nodes[0].metadata.name, "sysctl", "-n",
                     "net.ipv4.conf.%s.proxy_arp" % cali,
                     "net.ipv4.neigh.%s.proxy_delay" % cali).stdout.split() == ["1", "0"]
    # the pod's eth0 has canal's veth_mtu (1450) as its host end has, so full-size segments
    # fit the VXLAN overlay: a request and an answer of several segments cross the nodes
    link = netns_run(POD_NS + a.metadata.uid[:12], "ip", "-o", "link", "show", "eth0").stdout
    assert " mtu 1450 " in link, link
    big = "/" + "x" * 6000
    out = http_from(POD_NS + a.metadata.uid[:12], "http://%s:8080%s" % (b.status.pod_ip, big))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["path"] == big


def test_cloud_private_networks_are_isolated(core):
    # a vSphere node cannot reach the AWS router's private gateway, but reaches public addresses
    ns = NODE_NS + _nodes(core)[0].metadata.name
    assert netns_run(ns, "ping", "-c1", "-W1", "172.31.0.1").returncode != 0
    assert netns_run(ns, "ping", "-c1", "-W1", "10.156.0.1").returncode != 0
    assert netns_run(ns, "ping", "-c1", "-W1", "198.18.0.3").returncode == 0  # aws router
    # clh-ctl does not forward between its legs
    assert netns_run(ns_name("ctl"), "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"


def test_a_cloud_gateway_keeps_its_mac_as_machines_come_and_go(core):
    """A real network's gateway keeps its MAC address. A Linux bridge takes the lowest MAC of
    its ports unless it has one of its own, so when the machine with the lowest MAC left, the
    lab's gateway changed address and every other machine sent its traffic off the network to
    the old one until its ARP entry expired (7 s of a fleet cluster's load balancer health
    checks failing when two other clusters removed their vSphere machines)."""
    rns = router_ns("vsphere")
    node = NODE_NS + _nodes(core)[0].metadata.name

    def gateway_mac():
        out = subprocess.run(["ip", "-n", rns, "-j", "link", "show", "br-vspher"],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)[0]["address"]

    before = gateway_mac()
    try:
        # a machine joins with a MAC lower than any other port's
        subprocess.run(["ip", "-n", rns, "link", "add", "ztlow", "address", "02:00:00:00:00:01",
                        "type", "veth", "peer", "name", "ztpeer"], check=True)
        subprocess.run(["ip", "-n", rns, "link", "set", "ztlow", "master", "br-vspher", "up"],
                       check=True)
        subprocess.run(["ip", "-n", rns, "link", "set", "ztpeer", "up"], check=True)
        assert gateway_mac() == before
        # a node learns the gateway's address now, then that machine leaves
        subprocess.run(["ip", "-n", node, "neigh", "flush", "all"], check=True)
        assert netns_run(node, "ping", "-c1", "-W2", "198.18.0.3").returncode == 0
        subprocess.run(["ip", "-n", rns, "link", "del", "ztlow"], check=True)
        assert gateway_mac() == before
        # off-network traffic goes on: every ping answered
        out = netns_run(node, "ping", "-c", "20", "-i", "0.2", "-W", "1", "198.18.0.3",
                        timeout=30)
        assert out.returncode == 0 and " 0% packet loss" in out.stdout, out.stdout
    finally:
        subprocess.run(["ip", "-n", rns, "link", "del", "ztlow"], capture_output=True,
                       check=False)


def test_deleted_pod_leaves_no_namespace(core, ns):
    node = _nodes(core)[0].metadata.name
    pod = _echo_pod(core, ns, "gone", node)
    pns = POD_NS + pod.metadata.uid[:12]
    assert os.path.exists("/run/netns/" + pns)
    core.delete_namespaced_pod("gone", ns)
    wait_for(lambda: not os.path.exists("/run/netns/" + pns), what="pod namespace removed")
    routes = netns_run(NODE_NS + node, "ip", "route").stdout
    # (its IP may already belong to a new pod; its own veth and route are gone)
    assert "%s dev %s " % (pod.status.pod_ip, cali_name(ns, "gone")) not in routes
    links = netns_run(NODE_NS + node, "ip", "-br", "link").stdout
    assert cali_name(ns, "gone") not in links


def _seed_nodeports():
    out = subprocess.run(["ip", "netns", "exec", ns_name("seed"), "nft", "list", "table", "ip",
                          "nodeports"], capture_output=True, text=True, check=False).stdout
    return sorted(line.split("dport ")[1].strip() for line in out.splitlines() if "dport" in line)


def test_seed_nodeports_follow_the_seed_services(seed_core):
    """The seed node's NodePorts are its Services' (kube-proxy's role): the fixture's
    openvpn-server port is there, a new NodePort Service adds its port, deleting it removes it."""
    assert "32359 redirect to :1194" in _seed_nodeports()
    body = {"metadata": {"name": "nodeport-test"},
            "spec": {"type": "NodePort", "selector": {"app": "nodeport-test"},
                     "ports": [{"port": 1195, "targetPort": 1195, "nodePort": 31995}]}}
    seed_core.create_namespaced_service("cluster-x8p9sk2tzv", body)
    try:
        wait_for(lambda: "31995 redirect to :1195" in _seed_nodeports(), what="NodePort added")
    finally:
        seed_core.delete_namespaced_service("nodeport-test", "cluster-x8p9sk2tzv")
    wait_for(lambda: "31995 redirect to :1195" not in _seed_nodeports(), what="NodePort removed")
    assert "32359 redirect to :1194" in _seed_nodeports()
