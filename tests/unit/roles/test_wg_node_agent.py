"""The WireGuard node agent (roles/vpn_overlay/files/wg-node.sh) run by sh against fake `ip`,
`wg` and `ping`: it moves the VPN network to the hub that still answers, keeps it there when the
first returns, forks nothing per tick with `ping -O`, and keeps its old loop without it."""

import os
import signal
import subprocess
import time

import pytest

AGENT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "vpn_overlay", "files",
                     "wg-node.sh")
HUBS = "PUB0@192.0.2.1:51820@10.20.0.1 PUB1@192.0.2.2:51820@10.20.0.2"

FAKE_IP = """#!/bin/sh
echo "ip $*" >> "$FAKES/calls"
exit 0
"""
FAKE_WG = """#!/bin/sh
echo "wg $*" >> "$FAKES/calls"
exit 0
"""
# a ping per hub address: "64 bytes from" while $FAKES/<addr> says up, else "no answer yet",
# one line each 0.02 s; with -O unsupported (FAKE_NO_O) it refuses -O like busybox
FAKE_PING = """#!/bin/sh
for a in "$@"; do last=$a; done
case " $* " in *" -O "*) [ -n "${FAKE_NO_O:-}" ] && exit 2 ;; esac
case " $* " in *" -c 1 "*) exit 0 ;; esac
echo "ping $*" >> "$FAKES/calls"
echo "PING $last ($last) 56(84) bytes of data."
n=0
while :; do
    n=$((n + 1))
    if [ "$(cat "$FAKES/$last" 2>/dev/null)" = up ]; then
        echo "64 bytes from $last: icmp_seq=$n ttl=64 time=0.5 ms"
    else
        [ -n "${FAKE_NO_O:-}" ] || echo "no answer yet for icmp_seq=$n"
    fi
    sleep 0.02
done
"""


@pytest.fixture
def agent_env(tmp_path):
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    for name, text in (("ip", FAKE_IP), ("wg", FAKE_WG), ("ping", FAKE_PING)):
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    (tmp_path / "slots").mkdir()
    (tmp_path / "slots" / "node-a").write_text("3 10.20.0.19/24")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "slot-3").write_text("private\n")
    for addr in ("10.20.0.1", "10.20.0.2"):
        (fakes / addr).write_text("up")
    env = dict(os.environ, FAKES=str(fakes), NODE_NAME="node-a",
               PATH="%s:%s" % (fakes, os.environ["PATH"]))
    return tmp_path, fakes, env


def _start(tmp_path, env):
    return subprocess.Popen(
        ["sh", AGENT, "--iface", "kube", "--vpn-cidr", "10.20.0.0/24", "--keys",
         str(tmp_path / "keys"), "--slots", str(tmp_path / "slots"), "--hubs", HUBS,
         "--status", str(tmp_path / "status")], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True)


def _wait_status(tmp_path, want, timeout=10):
    """Until the status file says ``want`` (or, given a callable, until it holds)."""
    end = time.time() + timeout
    got = None
    while time.time() < end:
        try:
            got = (tmp_path / "status").read_text()
        except FileNotFoundError:
            got = None
        if got == want or (callable(want) and got is not None and want(got)):
            return
        time.sleep(0.02)
    raise AssertionError("status %r, wanted %r" % (got, want))


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        out = proc.communicate(timeout=10)[0].decode()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return out


@pytest.mark.timeout(60)
def test_the_network_moves_to_the_live_hub_and_stays_there_without_a_fork_per_tick(agent_env):
    tmp_path, fakes, env = agent_env
    proc = _start(tmp_path, env)
    try:
        _wait_status(tmp_path, "active=0\nlive=0 1\n")
        end = time.time() + 10
        while (fakes / "calls").read_text().count("ping -n -O") < 2 and time.time() < end:
            time.sleep(0.02)  # both hubs' pingers started
        calls = (fakes / "calls").read_text()
        assert "wg set kube peer PUB0 allowed-ips 10.20.0.0/24" in calls
        assert "ping -n -O -i 0.1 -W 1 10.20.0.1" in calls
        # quiet: only the pings' lines, no wg (nor anything else) run per tick
        before = (fakes / "calls").read_text().count("\n")
        time.sleep(0.5)
        assert (fakes / "calls").read_text().count("\n") == before
        # hub 0 stops answering: after 5 lines without an answer the prefix moves to hub 1
        (fakes / "10.20.0.1").write_text("down")
        _wait_status(tmp_path, "active=1\nlive=1\n")
        calls = (fakes / "calls").read_text()
        moved = calls.index("wg set kube peer PUB1 allowed-ips 10.20.0.0/24")
        assert "wg set kube peer PUB0 allowed-ips 10.20.0.1/32" in calls[moved:]
        # then its peer is made anew (a hub that restarted has lost the session), with its own
        # address only: the network stays on hub 1
        readd = ("wg set kube peer PUB0 endpoint 192.0.2.1:51820 persistent-keepalive 1 "
                 "allowed-ips 10.20.0.1/32")
        end = time.time() + 10
        while readd not in calls[moved:] and time.time() < end:
            time.sleep(0.02)
            calls = (fakes / "calls").read_text()
        assert calls.index(readd, calls.index("wg set kube peer PUB0 remove", moved))
        # hub 0 answers again: live, but no failback
        (fakes / "10.20.0.1").write_text("up")
        _wait_status(tmp_path, "active=1\nlive=0 1\n")
        # no hub answers: not live at all (the readiness probe reads that); which one is active
        # then depends on which fell silent first
        for addr in ("10.20.0.1", "10.20.0.2"):
            (fakes / addr).write_text("down")
        _wait_status(tmp_path, lambda got: got.endswith("\nlive=\n"))
    finally:
        out = _stop(proc)
    assert "the VPN network moved to hub 1" in out
    assert not (tmp_path / "status").exists() and not (tmp_path / "status.events").exists()


@pytest.mark.timeout(60)
def test_without_ping_o_the_agent_reads_what_each_hub_sent_every_tick(agent_env):
    tmp_path, fakes, env = agent_env
    env["FAKE_NO_O"] = "1"
    proc = _start(tmp_path, env)
    try:
        _wait_status(tmp_path, "active=0\nlive=0 1\n")
        time.sleep(0.5)
        calls = (fakes / "calls").read_text()
        assert calls.count("wg show kube transfer") >= 3
        assert "ping -n -q -i 0.1 -W 1 10.20.0.1" in calls
    finally:
        _stop(proc)
