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
#
# Idempotent: "up" twice adds nothing; "down" removes what "up" added.
set -u

action=${1:-}
cidr=${2:-}
port=8472
metric=4242
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

rule mangle -j CHECKSUM --checksum-fill
rule nat -j MASQUERADE
if [ "$action" = up ]; then
    ip route replace blackhole "$cidr" metric "$metric" ||
        fail "cannot add the blackhole route for $cidr"
else
    ip route del blackhole "$cidr" metric "$metric" 2>/dev/null || true
fi
echo "cloudhop node-hooks: $action done (VXLAN bridge on UDP $port, blackhole $cidr metric $metric)"
