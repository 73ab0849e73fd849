#!/bin/sh
# cloudhop.k8s_migration - OpenVPN --up / --down hook of the node-level VPN client (DaemonSet
# openvpn-client, host network). Installed by the vpn_overlay role as ConfigMap
# kube-system/cloudhop-vpn-node-hooks.
#
#   node-hooks.sh up|down <cluster pod CIDR> [OpenVPN's own arguments ...]
#
# What it keeps on the node while the VPN overlay exists - the soft switchover between flannel's
# underlays:
#
# 1. A VXLAN bridge between the host network and the tunnel. canal rolls flannel from one
#    underlay to the other node by node, so for a while some nodes send VXLAN from their host
#    address and others from their tunnel address. A host address inside the tunnel is not one
#    the VPN server assigned to that client, and a tunnel address on the host network fails the
#    cloud's source/destination check (AWS, GCP). VXLAN (UDP 8472) that leaves an interface
#    with a source address that is not that interface's is therefore masqueraded to it. The
#    outer UDP checksum is filled in first: NAT of a VXLAN packet whose inner checksum is still
#    left to the NIC corrupts the outer one (flannel-io/flannel#1279).
# 2. A blackhole route for the cluster's pod CIDR (the most specific routes, flannel's per-node
#    /24 and the local pods' /32, still win). flannel re-creates flannel.1 when its underlay
#    changes; without the blackhole, pod traffic of that moment follows the default route, and
#    kube-proxy's masquerade pins the connection to the wrong source address for good.
# 3. SNAT instead of MASQUERADE for what this node forwards into flannel.1. A load balancer's
#    connection to a NodePort that kube-proxy sends on to a pod on another node is masqueraded
#    out of flannel.1 (kube-proxy's KUBE-POSTROUTING or flanneld's --ip-masq). The kernel forgets
#    every connection masqueraded out of a device that goes down (nf_nat_masquerade), so each
#    re-creation of flannel.1 resets every such connection in flight, keep-alive ones included:
#    its next packet is NATed afresh to another random port, and the pod answers with a reset.
#    So traffic from outside the pod CIDR that leaves by flannel.1 is SNATed to flannel.1's own
#    address (the one MASQUERADE picks, and the podCIDR address flannel gives the new device
#    again), with kube-proxy's masquerade mark (0x4000) cleared as KUBE-POSTROUTING clears it.
#    SNAT is not tied to the device, so those connections outlive it. The two rules go first in
#    nat POSTROUTING, ahead of kube-proxy's jump (iptables and IPVS modes) and flanneld's. When
#    flannel.1 is not there yet (a new node whose tunnel came up first), a background wait adds
#    them once it is, for as long as the blackhole route of "up" stays.
# 4. Half-open connections forgotten sooner: nf_conntrack_tcp_timeout_syn_sent from the kernel's
#    120 s to 21 s while the overlay exists. A SYN that got no answer (lost while a VPN server
#    failed over, or while flannel.1 was re-created) keeps its connection-tracking entry, and
#    with it kube-proxy's DNAT to the endpoint chosen then, until that timeout. A load balancer
#    reuses its source ports within it, and a new connection from such a port follows the old
#    entry - to a pod the migration has moved away since: its SYNs go nowhere until the entry
#    expires (kubernetes/kubernetes#101607; kube-proxy clears stale entries for UDP only).
#    21 s still covers a SYN's retransmissions 1, 3, 7 and 15 s after it. Only the kernel's
#    default is changed (a value set on purpose on this node is left alone), and "down" puts
#    120 back only over 21, a value of its own, so "up" after a container restart or twice
#    keeps it right.
#
# Idempotent: "up" twice adds nothing; "down" removes what "up" added.
set -u

action=${1:-}
cidr=${2:-}
port=8472
metric=4242
flannel=flannel.1
snat_tag=cloudhop-flannel-snat
bridge="-p udp --dport $port -m addrtype ! --src-type LOCAL --limit-iface-out"

fail() {
    echo "cloudhop node-hooks: $*" >&2
    exit 1
}

case $action in
    up | down) ;;
    *) fail "usage: node-hooks.sh up|down <cluster pod CIDR>" ;;
esac
case $cidr in
    */*) ;;
    *) fail "the cluster pod CIDR argument is missing or not a CIDR: '$cidr'" ;;
esac
for tool in iptables ip; do
    command -v "$tool" >/dev/null 2>&1 ||
        fail "'$tool' is not in the VPN client's image; the soft switchover needs iptables and iproute2"
done

rule() {
    table=$1
    shift
    # shellcheck disable=SC2086 # $bridge is a list of words
    if [ "$action" = up ]; then
        iptables -w -t "$table" -C POSTROUTING $bridge "$@" 2>/dev/null ||
            iptables -w -t "$table" -A POSTROUTING $bridge "$@" ||
            fail "cannot add the $table rule: $*"
    else
        while iptables -w -t "$table" -C POSTROUTING $bridge "$@" 2>/dev/null; do
            iptables -w -t "$table" -D POSTROUTING $bridge "$@" || break
        done
    fi
}

snat_down() {
    iptables -w -t nat -S POSTROUTING | grep -e "--comment $snat_tag" | sed 's/^-A /-D /' |
        while read -r spec; do
            # shellcheck disable=SC2086 # a rule as iptables -S prints it, split into its words
            iptables -w -t nat $spec
        done
}

# "up": the two rules for flannel.1's current address; 1 when flannel.1 has no IPv4 address yet
snat_up() {
    addr=$(ip -4 -o addr show dev "$flannel" 2>/dev/null | sed -n 's|.* inet \([0-9.]*\)/.*|\1|p')
    addr=${addr%%[!0-9.]*}
    [ -n "$addr" ] || return 1
    snat_down
    match="-o $flannel ! -s $cidr -m comment --comment $snat_tag"
    # shellcheck disable=SC2086 # $match is a list of words
    if ! iptables -w -t nat -I POSTROUTING 1 $match -j SNAT --to-source "$addr" --random-fully ||
        ! iptables -w -t nat -I POSTROUTING 1 $match -j MARK --and-mark 0xffffbfff; then
        fail "cannot add the SNAT rules for $flannel ($addr)"
    fi
    echo "cloudhop node-hooks: traffic from outside $cidr leaving by $flannel is SNATed to $addr"
}

syn_sent=/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_syn_sent
syn_ours=21 syn_kernel=120
syn_sent_timeout() {
    if [ ! -w "$syn_sent" ]; then
        echo "cloudhop node-hooks: $syn_sent cannot be written here (no conntrack module, or not privileged): half-open entries keep their timeout"
        return 0
    fi
    now=$(cat "$syn_sent")
    if [ "$action" = up ] && [ "$now" = "$syn_kernel" ]; then
        # a mitigation: never the reason the overlay or its removal stops
        if echo "$syn_ours" >"$syn_sent"; then
            echo "cloudhop node-hooks: half-open connections are forgotten after $syn_ours s, not $syn_kernel s"
        else
            echo "cloudhop node-hooks: cannot write $syn_sent: half-open entries keep their $syn_kernel s" >&2
        fi
    elif [ "$action" = up ] && [ "$now" != "$syn_ours" ]; then
        echo "cloudhop node-hooks: $syn_sent is $now on this node (not the kernel's $syn_kernel): left alone"
    elif [ "$action" = down ] && [ "$now" = "$syn_ours" ]; then
        echo "$syn_kernel" >"$syn_sent" ||
            echo "cloudhop node-hooks: cannot put $syn_kernel back in $syn_sent (it stays $syn_ours)" >&2
    fi
}

blackhole_there() {
    ip route show type blackhole | grep -q "^blackhole $cidr .*metric $metric"
}

rule mangle -j CHECKSUM --checksum-fill
rule nat -j MASQUERADE
syn_sent_timeout
if [ "$action" = up ]; then
    ip route replace blackhole "$cidr" metric "$metric" ||
        fail "cannot add the blackhole route for $cidr"
    if ! snat_up; then
        echo "cloudhop node-hooks: $flannel is not there yet; its SNAT rules follow when it is"
        (
            waited=0
            while blackhole_there && [ "$waited" -lt 900 ]; do # 15 min at most
                if snat_up; then
                    exit 0
                fi
                sleep 1
                waited=$((waited + 1))
            done
        ) </dev/null >/dev/null 2>&1 & # detached: whoever ran "up" does not wait for it
    fi
else
    ip route del blackhole "$cidr" metric "$metric" 2>/dev/null || true
    snat_down
fi
echo "cloudhop node-hooks: $action done (VXLAN bridge on UDP $port, blackhole $cidr metric $metric, SNAT into $flannel, half-open timeout)"
