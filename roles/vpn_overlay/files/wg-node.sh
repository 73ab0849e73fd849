#!/bin/sh
# cloudhop.k8s_migration - the WireGuard node agent of the VPN overlay (DaemonSet
# cloudhop-vpn-wg, host network). Installed by the vpn_overlay role as ConfigMap
# kube-system/cloudhop-vpn-wg-agent.
#
#   wg-node.sh --iface kube --vpn-cidr 10.20.0.0/24 --mtu 1420 --pod-cidr 10.244.0.0/16 \
#              --keys DIR --slots DIR --hooks FILE --hubs "KEY@HOST:PORT@ADDR ..." \
#              [--status FILE] [--dead-after TICKS]
#
# NODE_NAME (the downward API's spec.nodeName) names the node. Its slot - "<k> <address/prefix>"
# in ConfigMap kube-system/cloudhop-vpn-wg-nodes, mounted at --slots - gives its VPN address
# and the private key slot-<k> of the nodes' Secret (mounted at --keys). A node whose slot is
# not there yet waits (the migration gives new nodes theirs).
#
# The interface: the kernel's WireGuard where it has the module, else wireguard-go (userspace;
# the same `wg` commands drive both). Every hub is a peer with a keepalive of 1 s. The VPN
# network's prefix is in the AllowedIPs of one hub, the active one; the others have only their
# own address. A ping runs to every hub's address, 10 a second (a tick: 0.1 s), and the agent
# reads each one's lines: `ping -O` prints one per echo sent - the answer, or "no answer yet"
# when the next echo goes first - so the pings are the agent's clock too and it forks nothing
# while nothing changes (a ping without -O: every tick it reads what each hub sent, `wg show
# transfer`, and sleeps - two processes a tick). When the active hub has answered nothing for
# more than --dead-after ticks (4 = 0.4 s) and another has, the prefix moves to that one (one
# `wg set`: WireGuard takes an address away from the peer that had it). Keepalives alone (1 s at
# the least) would take 2 s to tell, and a request's lost SYN is sent again after 1 s: the switch
# must be done by then. The node keeps its
# address, so flannel and the other nodes see nothing change; nodes on different hubs still
# reach each other (each hub has every node). No failback: a hub that returns waits as a
# standby.
#
# The soft switchover of flannel's underlay is the OpenVPN client's: --hooks (node-hooks.sh)
# "up" once the interface is configured, "down" when the agent stops (SIGTERM).
#
# The status file (--status) says which hub is active and which are live; the pod's readiness
# probe reads it: a node with no live hub is not ready.
set -u

log() { echo "cloudhop wg-node: $*"; }
fail() {
    echo "cloudhop wg-node: $*" >&2
    exit 1
}

iface=kube vpn_cidr='' mtu=1420 pod_cidr='' keys='' slots='' hooks='' hubs='' status=/run/wireguard/cloudhop-status
dead_after=4 tick_s=0.1
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || fail "option $1 has no value"
    case $1 in
        --iface) iface=$2 ;;
        --vpn-cidr) vpn_cidr=$2 ;;
        --mtu) mtu=$2 ;;
        --pod-cidr) pod_cidr=$2 ;;
        --keys) keys=$2 ;;
        --slots) slots=$2 ;;
        --hooks) hooks=$2 ;;
        --hubs) hubs=$2 ;;
        --status) status=$2 ;;
        --dead-after) dead_after=$2 ;;
        *) fail "unknown option $1" ;;
    esac
    shift 2
done
if [ -z "$vpn_cidr" ] || [ -z "$keys" ] || [ -z "$slots" ] || [ -z "$hubs" ]; then
    fail "--vpn-cidr, --keys, --slots and --hubs are needed"
fi
[ -n "${NODE_NAME:-}" ] || fail "NODE_NAME is not set (the pod's env from spec.nodeName)"
for tool in wg ip; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not in the image (wireguard-tools, iproute2)"
done

pingers=''
stop() {
    # shellcheck disable=SC2086 # a list of PIDs
    [ -n "$pingers" ] && kill $pingers 2>/dev/null
    [ -n "${kind:-}" ] && [ -n "$hooks" ] && [ -n "$pod_cidr" ] && /bin/sh "$hooks" down "$pod_cidr"
    [ -n "${kind:-}" ] && ip link del dev "$iface" 2>/dev/null
    rm -f "$status" "$status.events"
    log "stopped: $iface removed"
    exit 0
}
trap stop TERM INT

# the node's slot (SIGTERM ends the wait: the trap is set first)
slot_file=$slots/$NODE_NAME
waited=0
while [ ! -s "$slot_file" ]; do
    [ $((waited % 30)) -eq 0 ] &&
        log "node $NODE_NAME has no slot in ConfigMap kube-system/cloudhop-vpn-wg-nodes yet; waiting"
    sleep 1
    waited=$((waited + 1))
done
slot='' addr=''
read -r slot addr <"$slot_file" # a ConfigMap value has no newline at its end: read says 1
if [ -z "$slot" ] || [ -z "$addr" ]; then
    fail "$slot_file is not '<slot> <address/prefix>'"
fi
key=$keys/slot-$slot
[ -r "$key" ] || fail "no key for slot $slot ($key): is Secret kube-system/cloudhop-vpn-wg-keys the migration's?"

# the interface
kind=kernel
if ! ip link show dev "$iface" >/dev/null 2>&1; then
    if ! ip link add dev "$iface" type wireguard 2>/dev/null; then
        command -v wireguard-go >/dev/null 2>&1 ||
            fail "the kernel has no WireGuard module and wireguard-go is not in the image"
        kind=userspace
        env -u WG_PROCESS_FOREGROUND wireguard-go "$iface" || fail "wireguard-go could not make $iface"
    fi
fi
mkdir -p "$(dirname "$status")"

wg set "$iface" private-key "$key" || fail "wg set $iface private-key failed"
n=0 want=''
for hub in $hubs; do
    pub=${hub%%@*} rest=${hub#*@}
    ep=${rest%@*} haddr=${rest#*@}
    eval "pub_$n=\$pub ep_$n=\$ep haddr_$n=\$haddr seen_$n=0 rx_$n=0 reset_$n=0"
    want="$want $pub"
    wg set "$iface" peer "$pub" endpoint "$ep" persistent-keepalive 1 allowed-ips "$haddr/32" ||
        fail "wg set $iface peer $pub ($ep) failed"
    n=$((n + 1))
done
start_pingers() {
    for hub in $hubs; do
        rest=${hub#*@}
        (while :; do
            ping -n -q -i "$tick_s" -W 1 "${rest#*@}" >/dev/null 2>&1
            sleep 1
        done) &
        pingers="$pingers $!"
    done
}
# the same pings, each line of hub <i> told to the agent as "<i> 1" (an answer) or "<i> 0"
start_event_pingers() {
    i=0
    for hub in $hubs; do
        rest=${hub#*@}
        (while :; do
            ping -n -O -i "$tick_s" -W 1 "${rest#*@}" 2>&1 | while read -r line; do
                case $line in
                    PING*) ;;
                    *" bytes from "*) echo "$i 1" ;;
                    *) echo "$i 0" ;;
                esac
            done
            sleep 1
        done) >"$events" &
        pingers="$pingers $!"
        i=$((i + 1))
    done
}
# peers of an earlier configuration (the kernel's interface outlives the container)
for peer in $(wg show "$iface" peers); do
    case " $want " in *" $peer "*) ;; *) wg set "$iface" peer "$peer" remove ;; esac
done
active=0
# shellcheck disable=SC2154 # pub_<n>, haddr_<n>, rx_<n>, seen_<n>: set by eval, one per hub
wg set "$iface" peer "$pub_0" allowed-ips "$vpn_cidr" || fail "wg set allowed-ips failed"
ip addr replace "$addr" dev "$iface" || fail "cannot give $iface the address $addr"
ip link set dev "$iface" mtu "$mtu" up || fail "cannot bring $iface up with MTU $mtu"
log "$iface ($kind) up: node $NODE_NAME slot $slot address $addr, $n hub(s), active hub 0"
if [ -n "$hooks" ] && [ -n "$pod_cidr" ]; then
    /bin/sh "$hooks" up "$pod_cidr" || fail "the node hooks failed"
fi

# a hub quiet for a while (--dead-after ticks, then every 2 s while it stays so): a hub that
# restarted has lost this node's session and waits for a handshake WireGuard would start only
# after 15 s; a peer made anew handshakes at its next keepalive
renew_peer() {
    eval "pub=\$pub_$1 ep=\$ep_$1 haddr=\$haddr_$1"
    allowed=$haddr/32
    [ "$1" = "$active" ] && allowed=$vpn_cidr
    wg set "$iface" peer "$pub" remove
    wg set "$iface" peer "$pub" endpoint "$ep" persistent-keepalive 1 allowed-ips "$allowed"
}
# $live (the live hubs' numbers): the prefix moves off a hub that is not live, and the status
# file says what changed
judge() {
    case " $live " in
        *" $active "*) ;;
        *)
            next=${live# }
            next=${next%% *}
            if [ -n "$next" ]; then
                eval "old=\$pub_$active oldaddr=\$haddr_$active new=\$pub_$next"
                # shellcheck disable=SC2154 # set by the eval above
                if wg set "$iface" peer "$new" allowed-ips "$vpn_cidr" &&
                    wg set "$iface" peer "$old" allowed-ips "$oldaddr/32"; then
                    log "hub $active answered nothing for $dead_after ticks of $tick_s s: the VPN network moved to hub $next"
                    active=$next
                fi
            fi
            ;;
    esac
    now="active=$active live=${live# }"
    if [ "$now" != "${said:-}" ]; then # written (atomically: a fork) only when it changes
        printf 'active=%s\nlive=%s\n' "$active" "${live# }" >"$status.new" && mv "$status.new" "$status" &&
            said=$now
    fi
}

events=''
if command -v ping >/dev/null 2>&1 && command -v mkfifo >/dev/null 2>&1 &&
    ping -n -O -c 1 -W 1 127.0.0.1 >/dev/null 2>&1; then
    events=$status.events
    rm -f "$events"
    mkfifo -m 600 "$events" || fail "cannot make the FIFO $events"
    start_event_pingers
    i=0
    while [ "$i" -lt "$n" ]; do
        eval "miss_$i=0 renewed_$i=0"
        i=$((i + 1))
    done
    # one line per hub and tick: the misses in a row of that hub
    while read -r h up; do
        case $h in '' | *[!0-9]*) continue ;; esac
        [ "$h" -lt "$n" ] || continue
        miss=0 renewed=0
        eval "miss=\$miss_$h renewed=\$renewed_$h"
        if [ "$up" = 1 ]; then
            miss=0 renewed=0
        else
            miss=$((miss + 1))
        fi
        eval "miss_$h=\$miss"
        live=''
        i=0
        while [ "$i" -lt "$n" ]; do
            m=0
            eval "m=\$miss_$i"
            [ "$m" -le "$dead_after" ] && live="$live $i"
            i=$((i + 1))
        done
        judge
        # after the prefix moved off it: the quiet hub's peer made anew, then every 2 s
        if [ "$miss" -gt "$dead_after" ] && { [ "$renewed" -eq 0 ] || [ $((miss - renewed)) -ge 20 ]; }; then
            renew_peer "$h"
            renewed=$miss
        fi
        eval "renewed_$h=\$renewed"
    done <"$events"
    fail "the hubs' pings ended"
fi

if command -v ping >/dev/null 2>&1; then
    start_pingers
else
    dead_after=24 # keepalives only: 1 s apart
    log "no ping in the image: a lost hub is seen by its keepalives alone (2.4 s)"
fi
tick=0
while :; do
    tick=$((tick + 1))
    # one fork a tick besides sleep: what each hub sent, read in this shell (no subshells)
    wg show "$iface" transfer >"$status.transfer" 2>/dev/null
    while read -r p r _; do
        i=0
        while [ "$i" -lt "$n" ]; do
            prev=""
            eval "pub=\$pub_$i prev=\$rx_$i"
            if [ "$p" = "$pub" ] && [ "$r" != "$prev" ]; then
                eval "rx_$i=\$r seen_$i=\$tick"
            fi
            i=$((i + 1))
        done
    done <"$status.transfer"
    live=''
    i=0
    while [ "$i" -lt "$n" ]; do
        seen=0 reset=0
        eval "seen=\$seen_$i reset=\$reset_$i"
        if [ $((tick - seen)) -le "$dead_after" ]; then
            live="$live $i"
        elif [ $((tick - reset)) -ge 20 ]; then
            renew_peer "$i"
            eval "reset_$i=\$tick"
        fi
        i=$((i + 1))
    done
    judge
    sleep "$tick_s" &
    wait $!
done
