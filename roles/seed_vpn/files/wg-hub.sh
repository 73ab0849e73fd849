#!/bin/sh
# cloudhop.k8s_migration - a WireGuard hub of the VPN overlay (Deployment cloudhop-vpn-hub[-N]
# in the seed's cluster-<id>). Installed by the seed_vpn role in the hub's Secret.
#
#   wg-hub.sh --iface wg0 --conf FILE --address 10.20.0.1/24 --mtu 1420
#
# --conf is a `wg setconf` file: the hub's key and port, and every node slot as a peer
# (AllowedIPs its /32, keepalive 1 s: a node sees a live hub by what it sends). The hub forwards
# between its peers, so nodes reach each other through it, and gives what it forwards its own
# address: a node takes from a peer only sources in that peer's AllowedIPs, and has the VPN
# network on one hub (its active one), so without it a node would drop what a node on another
# hub sends it. The interface is the kernel's WireGuard where the node has the module, else
# wireguard-go (userspace). SIGTERM removes it.
set -u

fail() {
    echo "cloudhop wg-hub: $*" >&2
    exit 1
}

iface=wg0 conf='' address='' mtu=1420
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || fail "option $1 has no value"
    case $1 in
        --iface) iface=$2 ;;
        --conf) conf=$2 ;;
        --address) address=$2 ;;
        --mtu) mtu=$2 ;;
        *) fail "unknown option $1" ;;
    esac
    shift 2
done
if [ ! -r "$conf" ] || [ -z "$address" ]; then
    fail "--conf (readable) and --address are needed"
fi

kind=kernel
if ! ip link add dev "$iface" type wireguard 2>/dev/null; then
    ip link show dev "$iface" >/dev/null 2>&1 || {
        command -v wireguard-go >/dev/null 2>&1 ||
            fail "the kernel has no WireGuard module and wireguard-go is not in the image"
        kind=userspace
        env -u WG_PROCESS_FOREGROUND wireguard-go "$iface" || fail "wireguard-go could not make $iface"
    }
fi
stop() {
    ip link del dev "$iface" 2>/dev/null
    echo "cloudhop wg-hub: stopped, $iface removed"
    exit 0
}
trap stop TERM INT
wg setconf "$iface" "$conf" || fail "wg setconf $iface $conf failed"
ip addr replace "$address" dev "$iface" || fail "cannot give $iface the address $address"
ip link set dev "$iface" mtu "$mtu" up || fail "cannot bring $iface up"
echo 1 >/proc/sys/net/ipv4/ip_forward || fail "cannot enable forwarding (the container must be privileged)"
# what goes out of the tunnel has the hub's address (a restarted container keeps the pod's
# network namespace, and with it the rule)
iptables -t nat -C POSTROUTING -o "$iface" -j MASQUERADE 2>/dev/null ||
    iptables -t nat -A POSTROUTING -o "$iface" -j MASQUERADE ||
    fail "cannot add the masquerade rule (the image needs iptables)"
echo "cloudhop wg-hub: $iface ($kind) up at $address, $(wg show "$iface" peers | wc -l) peers"
while :; do
    sleep 3600 &
    wait $!
done
