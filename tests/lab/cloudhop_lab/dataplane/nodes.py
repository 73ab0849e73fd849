"""Worker nodes as network namespaces: a cloud NIC, sshd, a hostname, docker0.

A node looks to SSH like a cloud VM: ``ip route`` shows the DHCP-style default route of the seed
document, the primary interface is named like the cloud's (ens192 / ens5 / ens4), ``hostname``
prints the Node name (sshd runs in its own UTS namespace), python3 and iproute2 are there (the
host's). Logins are as root with the MachineDeployment's sshPublicKeys.

Every node's sshd runs in a private mount namespace where ``/root`` is the node's own home
(``<lab>/nodes/<node>/root``, with Debian's default root dotfiles): a login shell on a node must
not source this machine's ``/root/.bashrc`` (here it runs ``pyenv init``, about 0.2 s of CPU per
SSH session, more under contention, which made every lab SSH sweep 2-3 x slower than on a real
node), and each node keeps its own ``~/.ansible``.

A node whose MachineDeployment says ``operatingSystem: flatcar`` has no Python, as Flatcar has
none: in its mount namespace an overlay on /usr/bin also whites out every ``python*`` (so
``command -v python3`` finds nothing and a module run fails like on Flatcar), while ``ip`` and
the shell stay.
"""

import hashlib
import os
import shutil
import stat
import subprocess
import threading
import time

from ..controllers.machines import FakeMachineBackend
from . import netns as nsx

SSHD = "/usr/sbin/sshd"
NO_PYTHON_OS = ("flatcar",)
# the host's own Python installs outside /usr/bin (pyenv under /root is hidden with /root)
HOST_PYTHON_DIRS = ("/usr/local/lib/python3.11", "/opt/python")


def node_ns(name):
    return nsx.ns_name("n-" + name)


def short_id(name):
    return hashlib.sha1(name.encode()).hexdigest()[:8]


class NetnsMachineBackend(FakeMachineBackend):
    """machine-controller's cloud: every instance is a namespace on its cloud's network."""

    def __init__(self, networks, cluster_cidr, topology, lab_dir, node_mask=24, registry=None):
        super().__init__(networks, cluster_cidr, node_mask, registry)
        self.topology = topology
        self.dir = os.path.join(lab_dir, "nodes")
        self.known_hosts = os.path.join(lab_dir, "ssh", "known_hosts")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.procs = {}
        self.lock = threading.RLock()

    def create(self, name, cloud, taken_cidrs, ssh_keys=(), hostname=None, os_name=None):
        with self.lock:
            fresh = name not in self.instances
            inst = super().create(name, cloud, taken_cidrs)
            if fresh or not nsx.ns_exists(node_ns(name)):
                try:
                    self._boot(name, cloud, inst, ssh_keys, hostname or name, os_name)
                except Exception:
                    self.delete(name)
                    raise
            inst["netns"] = node_ns(name)
            inst["iface"] = self.topology_iface(cloud)
            self.instances[name].update(netns=inst["netns"], iface=inst["iface"])
            return inst

    @staticmethod
    def topology_iface(cloud):
        from .topology import CLOUD_IFACES  # pylint: disable=import-outside-toplevel
        return CLOUD_IFACES[cloud]

    def _boot(self, name, cloud, inst, ssh_keys, hostname, os_name=None):
        ns = node_ns(name)
        nsx.create(ns)
        self.topology.attach_node(ns, cloud, inst["ip"], "vn" + short_id(name))
        nsx.sysctls(ns, [("net.ipv4.ip_forward", 1), ("net.ipv4.conf.all.rp_filter", 0),
                         ("net.ipv4.conf.default.rp_filter", 0)])
        # the seed document's nodes have a docker0 bridge without ports ("linkdown")
        nsx.bridge(ns, "docker0", "172.17.0.1", 16)
        # a bridge whose last port went away has no carrier: `linkdown`, as on a real node
        nsx.veth(ns, "dk0", ns, "dk1")
        nsx.enslave(ns, "dk0", "docker0")
        with nsx.LOCK:
            ipr = nsx.handle(ns)
            ipr.link("del", index=nsx.index(ipr, "dk0"))
        ndir = os.path.join(self.dir, name)
        os.makedirs(ndir, mode=0o700, exist_ok=True)
        key = os.path.join(ndir, "ssh_host_ed25519_key")
        if not os.path.exists(key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key],
                           check=True)
        with open(os.path.join(ndir, "authorized_keys"), "w", encoding="utf-8") as fh:
            fh.write("".join(k.strip() + "\n" for k in ssh_keys))
        cfg = os.path.join(ndir, "sshd_config")
        with open(cfg, "w", encoding="utf-8") as fh:
            fh.write("\n".join([
                "ListenAddress %s" % inst["ip"], "Port 22", "HostKey %s" % key,
                "PidFile %s" % os.path.join(ndir, "sshd.pid"),
                "AuthorizedKeysFile %s" % os.path.join(ndir, "authorized_keys"),
                "PermitRootLogin prohibit-password", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                "PrintMotd no", "AcceptEnv LANG LC_*", "MaxStartups 200:30:400",
                "MaxSessions 50", "LogLevel ERROR",
                "Subsystem sftp internal-sftp", ""]))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        cmd = self._node_mounts(ndir, os_name in NO_PYTHON_OS) + [SSHD, "-D", "-e", "-f", cfg]
        self.procs[name] = nsx.spawn(ns, cmd, os.path.join(ndir, "sshd.log"),
                                     uts_hostname=hostname)
        with open(key + ".pub", encoding="utf-8") as fh:
            host_key = " ".join(fh.read().split()[:2])
        self._known_host(inst["ip"], host_key)
        self._wait_port(ns, inst["ip"], 22)

    @staticmethod
    def _root_home(ndir):
        """The node's own /root: Debian's default root dotfiles (base-files), nothing else."""
        home = os.path.join(ndir, "root")
        os.makedirs(home, mode=0o700, exist_ok=True)
        for dot in ("bashrc", "profile"):
            src, dst = "/usr/share/base-files/dot." + dot, os.path.join(home, "." + dot)
            if os.path.exists(src) and not os.path.exists(dst):
                shutil.copyfile(src, dst)
        return home

    @classmethod
    def _node_mounts(cls, ndir, without_python):
        """A command prefix: a private mount namespace with the node's own /root and, for an OS
        without Python, a /usr/bin without python*."""
        mounts = ['mount --bind "$0" /root']
        args = [cls._root_home(ndir)]
        if without_python:
            upper, work = os.path.join(ndir, "usr-bin-upper"), os.path.join(ndir, "usr-bin-work")
            shutil.rmtree(upper, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(upper)
            os.makedirs(work)
            for entry in os.listdir("/usr/bin"):
                if entry.startswith("python"):
                    os.mknod(os.path.join(upper, entry), 0o600 | stat.S_IFCHR, os.makedev(0, 0))
            mounts.append('mount -t overlay cloudhop-no-python -o "lowerdir=/usr/bin,upperdir=$1,'
                          'workdir=$2" /usr/bin')
            args += [upper, work]
            mounts += ["mount -t tmpfs -o size=64k,mode=0755 cloudhop-no-python %s" % d
                       for d in HOST_PYTHON_DIRS if os.path.isdir(d)]
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                " && ".join(mounts) + ' && shift %d && exec "$@"' % (len(args) - 1)] + args

    @staticmethod
    def _wait_port(ns, ip, port, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = nsx.run(ns, "ss", "-Hltn", "sport = :%d" % port, check=False).stdout
            if ip in out:
                return
            time.sleep(0.05)
        raise RuntimeError("sshd did not listen on %s:%d in %s" % (ip, port, ns))

    def _known_host(self, ip, host_key, remove=False):
        with self.registry.lock:  # one known_hosts file for every cluster's nodes
            lines = []
            if os.path.exists(self.known_hosts):
                with open(self.known_hosts, encoding="utf-8") as fh:
                    lines = [ln for ln in fh if ln.split(" ", 1)[0] != ip]
            if not remove:
                lines.append("%s %s\n" % (ip, host_key))
            tmp = self.known_hosts + ".tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.writelines(lines)
            os.replace(tmp, self.known_hosts)

    def delete(self, name):
        with self.lock:
            inst = self.instances.get(name)
            proc = self.procs.pop(name, None)
            if proc is not None:
                proc.kill()
                proc.wait(timeout=5)
            nsx.remove(node_ns(name))
            if inst:
                self._known_host(inst["ip"], None, remove=True)
            shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)
            super().delete(name)
