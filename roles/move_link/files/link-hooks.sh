#!/bin/sh
# cloudhop.k8s_migration - OpenVPN --up / --down hook of the move's link (link mode build): the
# node-level client of DaemonSet cloudhop-move-link, host network, on every node of both
# clusters. Installed by the move_link role in ConfigMap cloudhop-move-link.
#
#   link-hooks.sh up|down <other network> <link network> <other gateway> \
#                 <other nodes, comma-separated> <OpenVPN's own arguments: device, MTUs, ...>
#
# The link is one Ethernet segment (the hub switches between its clients, --client-to-client),
# and it carries only the other environment's node network, with the nodes' own addresses:
#
# 1. Each node of the other side directly: <node>/32 on the link device. That node answers ARP
#    for its own address on the link (Linux answers for any of its addresses on any interface,
#    arp_ignore 0), so node-to-node traffic goes straight to it.
# 2. The rest of the other network (its load balancers: the MongoDB members', the proxies') via
#    the other side's gateway node, the first of its nodes by name. The gateway forwards such
#    traffic onto its network and masquerades it to its own address (the rule below), so the
#    answers come back to it and back over the link; a cloud's source/destination check sees
#    only the gateway's own address.
# 3. Packets leave with the node's own address (src), the one the other side's firewalls know.
#
# Pod CIDRs are never routed: pod traffic that crosses is masqueraded by the node as any traffic
# leaving the pod network is, so two clusters with the same pod CIDR can be linked.
# Idempotent: "up" twice adds nothing; "down" removes what "up" added (routes go with the device).
set -u

action=${1:-}
other=${2:-}
vpn=${3:-}
gateway=${4:-}
nodes=${5:-}
dev=${6:-}
tag=cloudhop-move-link

fail() {
    echo "cloudhop link-hooks: $*" >&2
    exit 1
}

if [ -z "$other" ] || [ -z "$vpn" ] || [ -z "$gateway" ] || [ -z "$dev" ]; then
    fail "usage: link-hooks.sh up|down <other network> <link network> <other gateway> <other nodes> <device> ..."
fi

rule() {  # rule -A|-D table chain spec...: add once, or delete every copy
    op=$1 table=$2 chain=$3
    shift 3
    if [ "$op" = -A ]; then
        iptables -w -t "$table" -C "$chain" "$@" -m comment --comment "$tag" 2>/dev/null ||
            iptables -w -t "$table" -I "$chain" 1 "$@" -m comment --comment "$tag"
    else
        while iptables -w -t "$table" -D "$chain" "$@" -m comment --comment "$tag" 2>/dev/null; do :; done
    fi
}

rules() {
    op=$1
    # what the gateway forwards from the link onto its network leaves with its own address
    rule "$op" nat POSTROUTING -s "$other" ! -o "$dev" -j MASQUERADE
    rule "$op" nat POSTROUTING -s "$vpn" ! -o "$dev" -j MASQUERADE
    # a FORWARD policy of DROP (Docker's) would hold the gateway's forwarding
    rule "$op" filter FORWARD -i "$dev" -j ACCEPT
    rule "$op" filter FORWARD -o "$dev" -j ACCEPT
}

case "$action" in
up)
    # this node's own address: the source of its route towards the other side
    self=$(ip -4 -o route get "$gateway" | sed -n 's/.* src \([0-9.]*\).*/\1/p')
    [ -n "$self" ] || fail "no address of this node routes to $gateway"
    ip link set dev "$dev" up || fail "cannot bring $dev up"
    ip route replace "$other" via "$gateway" dev "$dev" onlink src "$self" ||
        fail "cannot route $other via $gateway on $dev"
    for node in $(echo "$nodes" | tr ',' ' '); do
        ip route replace "$node/32" dev "$dev" src "$self" || fail "cannot route $node on $dev"
    done
    rules -A
    echo "cloudhop link-hooks: $other via $gateway on $dev (nodes $nodes) from $self"
    ;;
down)
    rules -D
    ;;
*)
    fail "unknown action $action (up or down)"
    ;;
esac
