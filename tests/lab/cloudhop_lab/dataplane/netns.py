"""Network-namespace plumbing for the lab's data plane (pyroute2 for netlink).

Every namespace the lab creates is named ``clh-*`` (``clh<instance>-*`` for a lab instance
``CLH_INSTANCE``: two labs side by side, with their own namespaces and directory); nothing here
touches the host namespace. pyroute2 sockets are not thread-safe, so all netlink work goes
through one lock.
"""

import errno
import hashlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading

from pyroute2 import NetNS
from pyroute2.netns import setns
from pyroute2.netlink.exceptions import NetlinkError

LOG = logging.getLogger("cloudhop_lab")
LOCK = threading.RLock()
PROTO_BOOT = 3  # what `ip route add` uses; not printed by `ip route`
PROTO_DHCP = 16
_HANDLES = {}

INSTANCE = os.environ.get("CLH_INSTANCE", "")
if not re.fullmatch(r"[0-9a-z]{0,3}", INSTANCE):
    raise SystemExit("CLH_INSTANCE=%r: a lab instance is named by up to 3 lower-case letters "
                     "or digits (unset for the default lab)" % INSTANCE)
PREFIX = "clh%s-" % INSTANCE  # every namespace of this lab instance starts with it


def ns_name(rest):
    """The namespace called ``rest`` in this lab instance: clh-ctl, clh2-ctl, ..."""
    return PREFIX + rest


def ns_exists(name):
    return os.path.exists(os.path.join("/run/netns", name))


def create(name):
    """Create a namespace (lo up, forwarding as asked later). Idempotent."""
    assert name.startswith(PREFIX), name
    with LOCK:
        if not ns_exists(name):
            # `ip netns add` makes /run/netns a shared mount, so every process sees it
            subprocess.run(["ip", "netns", "add", name], check=True)
        ipr = handle(name)
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        return ipr


def handle(name):
    with LOCK:
        ipr = _HANDLES.get(name)
        if ipr is None:
            if not ns_exists(name):
                raise RuntimeError("network namespace %s does not exist" % name)
            # flags=0: pyroute2 would otherwise (O_CREAT) create a namespace that is gone,
            # resurrecting a deleted node as an empty namespace
            ipr = NetNS(name, flags=0)
            _HANDLES[name] = ipr
        return ipr


# rtnetlink multicast groups: links, IPv4 addresses, IPv4 routes
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40


class Monitor:
    """A non-blocking rtnetlink socket in a namespace, subscribed to link, address and route
    changes, as a netlink-event-driven agent (flanneld, the kubelet) has one.

    ``changed()`` drains it and says whether anything happened since the last call (a lost
    event, ENOBUFS, counts as a change). It costs one recv when nothing happened, where a dump of
    the namespace's links and routes costs a netlink decode per entry. The socket holds the
    namespace alive: ``close()`` it once the namespace is gone.
    """

    def __init__(self, name):
        self.name = name
        self.inode = os.stat(os.path.join("/run/netns", name)).st_ino
        made = {}

        def in_ns():  # setns changes only this thread's network namespace
            try:
                setns(name, flags=0)
                sock = socket.socket(socket.AF_NETLINK,
                                     socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                     socket.NETLINK_ROUTE)
                sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE))
                made["sock"] = sock
            except OSError as exc:
                made["error"] = exc
        worker = threading.Thread(target=in_ns, name="netns-monitor")
        worker.start()
        worker.join()
        if "error" in made:
            raise made["error"]
        self.sock = made["sock"]

    def same_namespace(self):
        """False once the namespace is gone or was made again under the same name."""
        try:
            return os.stat(os.path.join("/run/netns", self.name)).st_ino == self.inode
        except OSError:
            return False

    def changed(self):
        seen = False
        while True:
            try:
                self.sock.recv(1 << 16)
            except BlockingIOError:
                return seen
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:  # ENOBUFS: events were dropped, a change
                    raise
            seen = True

    def close(self):
        self.sock.close()


def remove(name):
    """Kill every process in the namespace, then delete it."""
    with LOCK:
        ipr = _HANDLES.pop(name, None)
        if ipr is not None:
            try:
                ipr.close()
            except Exception:  # pylint: disable=broad-except
                pass
        kill_all(name)
        if ns_exists(name):
            proc = subprocess.run(["ip", "netns", "delete", name], capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0:
                LOG.warning("netns %s: %s", name, proc.stderr.strip())


def pids(name):
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                         check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def kill_all(name, sig=signal.SIGKILL):
    for pid in pids(name):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def sysctl(name, key, value):
    """Write a sysctl inside a namespace (net.* sysctls are per namespace)."""
    subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", "%s=%s" % (key, value)],
                   check=True)


def sysctls(name, pairs):
    args = ["ip", "netns", "exec", name, "sysctl", "-qw"]
    args += ["%s=%s" % kv for kv in pairs]
    subprocess.run(args, check=True)


def index(ipr, ifname):
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def veth(ns_a, name_a, ns_b, name_b, mtu=1500):
    """A veth pair from ns_a/name_a to ns_b/name_b, both up, both ends with ``mtu`` (a CNI sets
    the pod's eth0 and the host's end alike: canal's veth_mtu). Idempotent on name_a."""
    with LOCK:
        a = handle(ns_a)
        if index(a, name_a) is None:
            tmp = "t%x" % (abs(hash((ns_b, name_b))) % 0xFFFFFFF)
            a.link("add", ifname=name_a, kind="veth", peer={"ifname": tmp, "net_ns_fd": ns_b},
                   mtu=mtu)
            b = handle(ns_b)
            idx = index(b, tmp)
            b.link("set", index=idx, ifname=name_b, mtu=mtu)
        a.link("set", index=index(a, name_a), state="up")
        b = handle(ns_b)
        b.link("set", index=index(b, name_b), state="up")


def bridge(ns, name, addr=None, prefix=None):
    """A bridge with a MAC address of its own, fixed at creation. Linux otherwise gives a
    bridge the lowest MAC of its ports and changes it as ports come and go: a cloud network's
    gateway (its router's bridge) would change its MAC whenever a machine joins or leaves, and
    every other machine would send to the old one until its ARP entry expires (37 s for a node
    that had just learned it, measured; 7 s of a fleet cluster's traffic off its network in CI),
    which a real gateway never does."""
    with LOCK:
        ipr = handle(ns)
        if index(ipr, name) is None:
            digest = hashlib.sha256(("%s/%s" % (ns, name)).encode()).digest()
            mac = "02:" + ":".join("%02x" % b for b in digest[:5])  # locally administered
            ipr.link("add", ifname=name, kind="bridge", address=mac)
        idx = index(ipr, name)
        if addr:
            add_addr(ns, name, addr, prefix)
        ipr.link("set", index=idx, state="up")
        return idx


def enslave(ns, ifname, bridge_name):
    with LOCK:
        ipr = handle(ns)
        ipr.link("set", index=index(ipr, ifname), master=index(ipr, bridge_name))


def add_addr(ns, ifname, addr, prefix, **kw):
    with LOCK:
        ipr = handle(ns)
        try:
            ipr.addr("add", index=index(ipr, ifname), address=addr, prefixlen=prefix, **kw)
        except NetlinkError as exc:
            if exc.code != 17:  # EEXIST
                raise


def route(ns, op, **kw):
    kw.setdefault("proto", PROTO_BOOT)
    with LOCK:
        try:
            handle(ns).route(op, **kw)
        except NetlinkError as exc:
            if not (op == "add" and exc.code == 17) and not (op == "del" and exc.code in (3,)):
                raise


def run(ns, *cmd, check=True):
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                          check=check)


def nft(ns, ruleset):
    """Load an nftables ruleset inside a namespace."""
    proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=ruleset,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("nft in %s: %s" % (ns, proc.stderr.strip()))


def iptables_chain(ns, table, chain, rules, jump, first):
    """An agent's own iptables chain, kept as kube-proxy and flanneld keep theirs.

    ``chain`` in ``table`` is rewritten with ``rules`` (``iptables-restore --noflush`` flushes
    only the chains it names). ``jump`` is the rule that leads there, e.g. ``["POSTROUTING",
    "-j", chain]``: when ``-C`` does not find it, it is inserted first (``first``: kube-proxy's
    EnsureRule(Prepend)) or appended (flanneld). A rule another agent put ahead of it stays ahead.
    """
    text = "*%s\n:%s - [0:0]\n%s\nCOMMIT\n" % (
        table, chain, "\n".join("-A %s %s" % (chain, r) for r in rules))
    proc = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "-w", "--noflush"],
                          input=text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("iptables-restore of %s in %s: %s" % (chain, ns, proc.stderr.strip()))
    ipt = ("iptables", "-w", "-t", table)
    if run(ns, *ipt, "-C", *jump, check=False).returncode != 0:
        run(ns, *ipt, *(("-I", jump[0], "1") if first else ("-A", jump[0])), *jump[1:])


def terminate(proc, timeout=3):
    """SIGTERM a spawned process, SIGKILL it if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


# what a container runtime does to a container's output (CRI's log format begins every line
# with its RFC 3339 time): a process of its own that stamps each line as it comes and ends at EOF,
# when the container's last process has gone - labd may restart meanwhile
STAMP = ("import sys, time\n"
         "out = sys.stdout.buffer\n"
         "for line in sys.stdin.buffer:\n"
         "    t = time.time()\n"
         "    out.write(b'%s.%03dZ ' % (time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t)).encode(),"
         " int(t * 1000) % 1000) + line)\n"
         "    out.flush()\n")


def spawn(ns, cmd, log_path, env=None, uts_hostname=None, timestamps=False):
    """Start a long-running process inside a namespace (its own session, logs to a file; with
    ``timestamps`` every line of its output begins with the time it was written, UTC to the
    millisecond, as a container runtime keeps a container's log)."""
    argv = ["ip", "netns", "exec", ns]
    if uts_hostname:
        argv += ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', uts_hostname]
    argv += list(cmd)
    log = open(log_path, "ab")  # pylint: disable=consider-using-with
    out = log
    try:
        if timestamps:
            rd, out = os.pipe()
            try:
                subprocess.Popen([sys.executable, "-u", "-c", STAMP], stdin=rd, stdout=log,  # pylint: disable=R1732
                                 stderr=log, start_new_session=True)
            finally:
                os.close(rd)
        return subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    finally:
        log.close()
        if out is not log:
            os.close(out)
