"""``python -m cloudhop_lab up|down|status|run|admin``: the lab's life cycle.

Everything the lab runs lives in network namespaces named ``clh-*`` that it creates itself; the
host's own namespace gets no address, route or rule. ``CLH_INSTANCE=2`` runs a second lab beside
the default one: namespaces ``clh2-*``, directory ``.lab-2`` (or ``CLH_LAB_DIR``); every command
(up, down, run, ...) acts on the instance in its environment only.
"""

import argparse
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

from .dataplane.inventory import (write_migration_inventory, write_move_inventory,
                                  write_plugin_config)
from .dataplane.netns import INSTANCE, PREFIX, ns_name
from . import fixture, pki

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CTL_NS = ns_name("ctl")
CLIENT_NS = ns_name("client")


def lab_dir():
    default = os.path.join(REPO, ".lab" + ("-" + INSTANCE if INSTANCE else ""))
    return os.path.abspath(os.environ.get("CLH_LAB_DIR") or default)


def sh(*cmd, check=True, capture=False):
    return subprocess.run(cmd, check=check, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)


def netns_list():
    out = sh("ip", "netns", "list", capture=True, check=False).stdout or ""
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def lab_namespaces():
    return [n for n in netns_list() if n.startswith(PREFIX)]


def _kill_ns_pids(name, sig):
    out = sh("ip", "netns", "pids", name, capture=True, check=False).stdout or ""
    pids = [int(p) for p in out.split() if p.strip().isdigit()]
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


def down(quiet=False):
    """Stop every lab process and remove every lab namespace. Safe to run twice."""
    d = lab_dir()
    pidfile = os.path.join(d, "labd.pid")
    if os.path.exists(pidfile):
        try:
            with open(pidfile, encoding="utf-8") as fh:
                pid = int(fh.read().strip())
            os.killpg(pid, signal.SIGTERM)
            # labd is the only process that starts lab processes: wait until it is gone, or a
            # node it is still booting could start sshd in a namespace after we swept it
            until = time.monotonic() + 5
            while time.monotonic() < until:
                os.kill(pid, 0)
                time.sleep(0.05)
            os.killpg(pid, signal.SIGKILL)
            time.sleep(0.1)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 10
    names = lab_namespaces()
    while names and time.monotonic() < deadline:
        alive = []
        for name in names:
            if _kill_ns_pids(name, signal.SIGTERM if time.monotonic() < deadline - 5
                             else signal.SIGKILL):
                alive.append(name)
        if not alive:
            break
        time.sleep(0.1)
    for name in names:
        _kill_ns_pids(name, signal.SIGKILL)
    for name in lab_namespaces():
        _kill_ns_pids(name, signal.SIGKILL)
        sh("ip", "netns", "delete", name, check=False)
        etc = os.path.join("/etc/netns", name)
        if os.path.isdir(etc):
            shutil.rmtree(etc, ignore_errors=True)
    probes = [f for f in os.listdir(d) if f.startswith("probe") and f.endswith(".pid")] \
        if os.path.isdir(d) else []
    for f in ["labd.pid", "labd.ready", "labd.sock"] + probes:
        try:
            os.unlink(os.path.join(d, f))
        except FileNotFoundError:
            pass
    left = lab_namespaces()
    if left:
        raise SystemExit("lab-down: namespaces still present: %s" % " ".join(left))
    if not quiet:
        print("lab down")


def _ssh_keypair(directory):
    from cryptography.hazmat.primitives import serialization  # pylint: disable=C0415
    from cryptography.hazmat.primitives.asymmetric import ed25519  # pylint: disable=C0415
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                        serialization.PublicFormat.OpenSSH)
    path = os.path.join(directory, "id_ed25519")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(priv)
    with open(path + ".pub", "wb") as fh:
        fh.write(pub + b" cloudhop-lab\n")


def _pki(directory, opts):
    os.makedirs(directory, mode=0o700, exist_ok=True)
    ca = pki.CA.create()
    ca.save(os.path.join(directory, "ca.crt"), os.path.join(directory, "ca.key"))
    api_cert, api_key = ca.issue("kube-apiserver", server=True,
                                 sans=["127.0.0.1", "localhost", "kubernetes",
                                       opts["seed_public_ip"]])
    pki.write_pair(directory, "apiserver", api_cert, api_key)
    srv_cert, srv_key = ca.issue("openvpn-server", server=True)
    cli_cert, cli_key = ca.issue("user-cluster-client", client=True)
    # the move world's app: one certificate for its hosts (Secret shop-tls)
    shop_cert, shop_key = ca.issue("shop.example.test", server=True,
                                   sans=list(fixture.SHOP_HOSTS))
    material = {"ca_crt": ca.cert_pem.decode(), "server_crt": srv_cert.decode(),
                "server_key": srv_key.decode(), "client_crt": cli_cert.decode(),
                "client_key": cli_key.decode(), "shop_crt": shop_cert.decode(),
                "shop_key": shop_key.decode()}
    fd = os.open(os.path.join(directory, "material.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(material, fh)


def _kubeconfig(path, name, server, ca_path, token):
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": name,
           "clusters": [{"name": name, "cluster": {"server": server,
                                                   "certificate-authority": ca_path}}],
           "users": [{"name": "cloudhop-admin", "user": {"token": token}}],
           "contexts": [{"name": name, "context": {"cluster": name,
                                                   "user": "cloudhop-admin"}}]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(cfg, fh, indent=2)


def _wait_ready(d, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(os.path.join(d, "labd.ready")):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def up(options):
    started = time.monotonic()
    down(quiet=True)
    d = lab_dir()
    os.makedirs(d, mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    for f in os.listdir(d):
        p = os.path.join(d, f)
        if os.path.isdir(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    opts = dict(fixture.DEFAULTS)
    opts.update({k: v for k, v in options.items() if v is not None})
    if opts["world"] == "move" and int(opts["clusters"]) != 1:
        raise SystemExit("lab up: --world move has two clusters of its own (old and new); "
                         "--clusters applies to the migrate world only")
    if not 1 <= int(opts["clusters"]) <= 20:
        raise SystemExit("lab up: --clusters must be between 1 and 20")
    specs = fixture.cluster_specs(opts)
    _pki(os.path.join(d, "pki"), opts)
    _ssh_keypair(os.path.join(d, "ssh"))
    config = {"bind": "127.0.0.1", "seed_port": 6443, "user_port": specs[0]["port"],
              "admin_token": secrets.token_urlsafe(24),
              "migrator_token": secrets.token_urlsafe(24), "options": opts}
    with open(os.path.join(d, "config.json"), "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        json.dump(config, fh, indent=2)
    ca = os.path.join(d, "pki", "ca.crt")
    _kubeconfig(os.path.join(d, "seed.kubeconfig"), "lab-seed",
                "https://127.0.0.1:%d" % config["seed_port"], ca, config["admin_token"])
    for spec in specs:
        _kubeconfig(os.path.join(d, spec["name"] + ".kubeconfig"), "lab-" + spec["name"],
                    "https://127.0.0.1:%d" % spec["port"], ca, config["admin_token"])
    if opts.get("rbac"):
        for name, port in [("seed", config["seed_port"])] + [(c["name"], c["port"])
                                                             for c in specs]:
            _kubeconfig(os.path.join(d, name + "-migrator.kubeconfig"), "lab-" + name,
                        "https://127.0.0.1:%d" % port, ca, config["migrator_token"])
    for spec in specs:
        write_plugin_config(d, spec["md_name"], opts, spec)
    write_migration_inventory(d, opts, specs)
    if opts["world"] == "move":
        write_move_inventory(d, specs, opts)
    sh("ip", "netns", "add", CTL_NS)
    sh("ip", "-n", CTL_NS, "link", "set", "lo", "up")
    log = open(os.path.join(d, "labd.log"), "ab")  # pylint: disable=consider-using-with
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "tests", "lab"),
               PYTHONUNBUFFERED="1")
    # nsenter --net switches only the network namespace: `ip netns exec` would also give the
    # daemon a private mount namespace, and the namespaces it creates would be invisible outside
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        ["nsenter", "--net=/run/netns/" + CTL_NS, sys.executable, "-m", "cloudhop_lab.labd",
         "--dir", d],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        cwd=REPO)
    with open(os.path.join(d, "labd.pid"), "w", encoding="utf-8") as fh:
        fh.write(str(proc.pid))
    if not _wait_ready(d, proc, 60):
        sys.stderr.write(open(os.path.join(d, "labd.log"), encoding="utf-8").read()[-4000:])
        down(quiet=True)
        raise SystemExit("lab-up: the lab daemon did not become ready; see .lab/labd.log")
    elapsed = time.monotonic() - started
    with open(os.path.join(d, "lab-up.json"), "w", encoding="utf-8") as fh:
        json.dump({"seconds": round(elapsed, 3), "options": opts}, fh)
    print("lab up in %.1fs: seed %s, %s (run commands with tests/lab/run)"
          % (elapsed, os.path.join(d, "seed.kubeconfig"), ", ".join(
              "%s %s (%s)" % (c["name"], os.path.join(d, c["name"] + ".kubeconfig"),
                              c["cluster_id"]) for c in specs)))


def admin(request):
    """Send one command to the lab daemon's admin socket."""
    path = os.path.join(lab_dir(), "labd.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(json.dumps(request).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def wait_app(timeout=60, streak=10, urls=None, host=None):
    """Until the app answers through DNS and its load balancer ``streak`` times in a row (every
    ingress pod has its backends), from clh-client: app.example.test, or ``host``, or every
    one of ``urls``."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "tests", "lab"))
    target = ["--cacert", os.path.join(lab_dir(), "pki", "ca.crt")] + (
        ["--host", host] if host else [])
    for url in urls or []:
        target += ["--url", url]
    deadline, good, failures = time.monotonic() + timeout, 0, {}
    while good < streak:
        proc = subprocess.run(
            ["nsenter", "--net=/run/netns/" + CLIENT_NS, sys.executable, "-m", "cloudhop_lab.probe",
             "--dns", "198.18.0.53", "--log", os.devnull, "--summary", os.devnull, "--check"]
            + target,
            env=env, cwd=REPO, check=False, capture_output=True, text=True)
        ok = proc.returncode == 0
        good = good + 1 if ok else 0
        if not ok:
            why = proc.stderr.strip().splitlines()[-1:] or ["exit %d" % proc.returncode]
            failures[why[0]] = failures.get(why[0], 0) + 1
        if time.monotonic() > deadline:
            raise SystemExit("the app does not answer steadily through DNS and its load balancer "
                             "after %d s (failures: %s); see .lab/labd.log" % (
                                 timeout, "; ".join("%d x %s" % (n, w) for w, n in
                                                    sorted(failures.items(),
                                                           key=lambda i: -i[1])) or "none"))
        if not ok:
            time.sleep(0.2)


def shop_urls():
    """Every host and path of the move world's shop app, over HTTP and HTTPS."""
    return ["%s://%s%s" % (scheme, host, path) for scheme in ("http", "https")
            for host in fixture.SHOP_HOSTS for path, _app in fixture.SHOP_ROUTES[host]]


def probe_files(name=None):
    """(log, summary, pid file) of the probe called ``name`` (None: the default probe)."""
    d = lab_dir()
    stem = "probe" + ("-" + name if name else "")
    return (os.path.join(d, stem + ".jsonl"), os.path.join(d, stem + "-summary.json"),
            os.path.join(d, stem + ".pid"))


HAPROXY_SESSION = re.compile(r"^<\d+>(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}) ")


def proxy_sessions_near(times, window=4.0, limit=40):
    """The abnormal sessions (HAProxy's session log: timers, server, retries) that every load
    balancer and ingress proxy of the lab logged within ``window`` seconds before or after
    any of ``times`` (epoch seconds, e.g. failed probe requests): why a request failed, for a
    test's failure message. Each line is prefixed with its proxy's directory."""
    found = []
    for kind in ("lb", "ingress"):
        for path in sorted(glob.glob(os.path.join(lab_dir(), kind, "*", "haproxy.log"))):
            where = "%s/%s" % (kind, os.path.basename(os.path.dirname(path)))
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    match = HAPROXY_SESSION.match(line)
                    if not match:
                        continue
                    when = time.mktime(time.strptime(match.group(1)[:-4], "%d/%b/%Y:%H:%M:%S")) \
                        + float(match.group(1)[-4:])
                    if any(abs(when - t) <= window for t in times):
                        found.append((when, "%s %s" % (where, line.strip())))
    return [line for _when, line in sorted(found)][:limit]


WRITE_URL = "https://api.example.test/orders"


def probe(action, rate=None, wait_ready=False, name=None, urls=None, stale=False, host=None,
          writes=False):
    """Start/stop a traffic probe (in clh-client, on the internet segment). Probes run side by
    side under different names, each with its own log, summary and pid file. A write probe
    (``writes``) POSTs new ids to the shop's api; its stop reads them back from MongoDB."""
    d = lab_dir()
    log, summary, pidfile = probe_files(name)
    if writes and not urls:
        urls = [WRITE_URL]
    if action == "start":
        if os.path.exists(pidfile):
            raise SystemExit("the probe is already running (pid file %s)" % pidfile)
        # one run, one log: the summary describes the same requests the log holds
        for stale_file in (log, summary):
            if os.path.exists(stale_file):
                os.unlink(stale_file)
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "tests", "lab"))
        if wait_ready:
            # measure the migration, not the lab's boot: start once the app answers
            wait_app(urls=urls, host=host)
        extra = ["--cacert", os.path.join(d, "pki", "ca.crt")]
        for url in urls or []:
            extra += ["--url", url]
        if host:
            extra += ["--host", host]
        if stale:
            extra.append("--stale")
        if writes:  # a write may wait out a failover (pymongo's server selection, 8 s)
            extra += ["--writes", "--timeout", "10"]
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            ["nsenter", "--net=/run/netns/" + CLIENT_NS, sys.executable, "-m",
             "cloudhop_lab.probe", "--dns", "198.18.0.53", "--rate", str(rate or 20),
             "--log", log, "--summary", summary] + extra,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(d, "probe.log"), "ab"),  # pylint: disable=R1732
            start_new_session=True, env=env, cwd=REPO)
        with open(pidfile, "w", encoding="utf-8") as fh:
            fh.write(str(proc.pid))
        print("probe %sstarted (pid %d): %s" % ((name + " ") if name else "", proc.pid, log))
        return
    if action == "stop" and os.path.exists(pidfile):
        with open(pidfile, encoding="utf-8") as fh:
            pid = int(fh.read())
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.05)
        except ProcessLookupError:
            pass
        os.unlink(pidfile)
        if os.path.exists(summary):
            with open(summary, encoding="utf-8") as fh:
                mode = json.load(fh).get("mode")
            if mode == "writes":
                verify_writes(log, summary)
    if os.path.exists(summary):
        with open(summary, encoding="utf-8") as fh:
            print(fh.read())


def mongo_info():
    """.lab/mongo.json: the move world's replica set (its name, members, the app's URI)."""
    path = os.path.join(lab_dir(), "mongo.json")
    if not os.path.exists(path):
        raise SystemExit("no MongoDB in this lab (lab up --world move has one)")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def verify_writes(log, summary):
    """A write probe's read-back, from clh-ctl (it reaches the members' load balancers)."""
    info = mongo_info()
    uri = "mongodb://%s/shop?replicaSet=%s" % (",".join(info["old"] + info["new"]), info["set"])
    proc = subprocess.run(
        ["nsenter", "--net=/run/netns/" + CTL_NS, sys.executable, "-m", "cloudhop_lab.probe",
         "--dns", "198.18.0.53", "--log", log, "--summary", summary, "--verify", uri],
        env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "tests", "lab")), cwd=REPO,
        check=False, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit("probe stop: reading the acknowledged writes back failed: %s"
                         % (proc.stderr.strip().splitlines()[-1:] or ["?"])[0])


def mongo(action, timeout=120):
    """``wait``: until the old replica set has a primary (lab up started it); ``status``: the
    members as the primary's replSetGetStatus shows them."""
    deadline = time.monotonic() + timeout
    while True:
        info = None
        try:
            info = mongo_info()
        except SystemExit:
            if action != "wait" or time.monotonic() > deadline:
                raise
        if info and (info.get("ready") or action != "wait"):
            break
        if time.monotonic() > deadline:
            raise SystemExit("the replica set has no primary after %d s: %s; see "
                             ".lab/labd.log" % (timeout, (info or {}).get("error", "?")))
        time.sleep(0.5)
    if action == "status":
        code = ("import json,sys,pymongo;c=pymongo.MongoClient(sys.argv[1],"
                "serverSelectionTimeoutMS=10000);s=c.admin.command('replSetGetStatus');"
                "print(json.dumps({m['name']:m['stateStr'] for m in s['members']}))")
        uri = "mongodb://%s/?replicaSet=%s" % (",".join(info["old"]), info["set"])
        proc = subprocess.run(["nsenter", "--net=/run/netns/" + CTL_NS, sys.executable, "-c",
                               code, uri], check=False, capture_output=True, text=True,
                              timeout=60)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr.strip()[-500:])
        info = dict(info, members=json.loads(proc.stdout))
    print(json.dumps(info, indent=2))


WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def audit(action, since=None):
    """Audit-log marks for tests: ``mark`` -> sizes; ``writes`` -> what was written since."""
    d = lab_dir()
    # the seed's and every user cluster's (audit-user.jsonl, audit-user2.jsonl, audit-new.jsonl)
    names = sorted(f[len("audit-"):-len(".jsonl")] for f in os.listdir(d)
                   if f.startswith("audit-") and f.endswith(".jsonl")) if os.path.isdir(d) else []
    paths = {c: os.path.join(d, "audit-%s.jsonl" % c) for c in set(names) | {"seed", "user"}}
    if action == "mark":
        return {c: os.path.getsize(p) if os.path.exists(p) else 0 for c, p in paths.items()}
    out = {"writes": [], "dry_run_writes": [], "requests": 0}
    for cluster, path in paths.items():
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as fh:
            fh.seek((since or {}).get(cluster, 0))
            for line in fh:
                if not line.endswith("\n"):
                    break  # a record still being written
                rec = json.loads(line)
                out["requests"] += 1
                if rec["method"] in WRITE_METHODS:
                    brief = {k: rec.get(k) for k in ("cluster", "method", "path", "code", "user")}
                    out["dry_run_writes" if rec["dryRun"] else "writes"].append(brief)
    return out


def run_env():
    d = lab_dir()
    # the kubernetes client caches API discovery per server URL in the temp directory, and every
    # lab serves its seed at https://127.0.0.1:6443: each lab keeps its own temp directory, so no
    # run trusts the resource list of another lab (or of an earlier lab with other CRDs)
    tmp = os.path.join(d, "tmp")
    os.makedirs(tmp, mode=0o700, exist_ok=True)
    # ssh's ControlPath names a master connection by host, port and user: a second lab has the
    # same node addresses, so each lab keeps its masters in its own directory
    out = {"CLH_LAB_DIR": d, "CLH_INSTANCE": INSTANCE, "TMPDIR": tmp,
           "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(d, "cp"),
           "CLH_SEED_KUBECONFIG": os.path.join(d, "seed.kubeconfig"),
           "CLH_USER_KUBECONFIG": os.path.join(d, "user.kubeconfig")}
    # every further cluster's: CLH_NEW_KUBECONFIG (move world), CLH_USER2_KUBECONFIG, ...
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.endswith(".kubeconfig") and "-migrator" not in name and \
                name not in ("seed.kubeconfig", "user.kubeconfig"):
            out["CLH_%s_KUBECONFIG" % name[:-len(".kubeconfig")].upper()] = os.path.join(d, name)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cloudhop_lab")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="(re)start the lab with the fixture")
    p_up.add_argument("--legacy-api", action="store_true", default=None,
                      help="serve the legacy kubermatic.k8s.io/v1 Cluster API")
    p_up.add_argument("--workers", type=int)
    p_up.add_argument("--app-replicas", type=int)
    p_up.add_argument("--cluster-id")
    p_up.add_argument("--dns-ttl", type=int,
                      help="TTL of the app's DNS record (default 300)")
    p_up.add_argument("--dns-provider", choices=["rfc2136", "route53", "clouddns"],
                      help="where the app's record lives: the lab's name server, changed by "
                           "RFC 2136 (default), a Route53 hosted zone in the lab's AWS API or a "
                           "Cloud DNS managed zone in the lab's Google API; the name server "
                           "serves what the zone holds")
    p_up.add_argument("--konnectivity", action="store_true", default=None,
                      help="a Konnectivity cluster: no openvpn-server in the seed, no "
                           "openvpn-client in the user cluster (the migration brings a VPN hub)")
    p_up.add_argument("--wireguard-hubs", type=int, default=None,
                      help="the inventory asks for the WireGuard backend with this many hubs "
                           "(cloudhop_vpn_backend, cloudhop_vpn_hub.count; the tunnel's MTU "
                           "1500, as the lab's pods have 1450)")
    p_up.add_argument("--rbac", choices=["audit", "enforce"],
                      help="the collection's inventories use user cloudhop-migrator, bound to "
                           "the roles of docs/rbac; enforce: its requests are authorized by RBAC "
                           "as kube-apiserver does; audit: allowed. Each request RBAC refuses "
                           "goes to .lab/rbac-denied.jsonl, every request of that user to "
                           ".lab/rbac-used.jsonl")
    p_up.add_argument("--no-dataplane", dest="dataplane", action="store_false", default=None,
                      help="API servers and controllers only: no namespaces for nodes or pods")
    p_up.add_argument("--clusters", type=int,
                      help="N user clusters on the one seed (default 1): user, user2, ... each "
                           "with its own id, API server, nodes, echo app, load balancer and "
                           "record app<k>.example.test, and a host in .lab/user_clusters.yml")
    p_up.add_argument("--world", choices=["migrate", "move"],
                      help="move: the old cluster (vSphere, with the shop app over HTTP and "
                           "HTTPS) and a new cluster on AWS (new.kubeconfig), for the "
                           "cluster-to-cluster move")
    p_up.add_argument("--same-pod-cidr", action="store_true", default=None,
                      help="move world: the new cluster uses the old one's pod CIDR, as two "
                           "KKP clusters do by default")
    sub.add_parser("down", help="stop the lab and remove its namespaces")
    p_wait = sub.add_parser("wait-app", help="wait until the app answers 10 times in a row")
    p_wait.add_argument("--host", help="the app's host (default app.example.test)")
    p_wait.add_argument("--shop", action="store_true",
                        help="every host and path of the move world's shop app, HTTP and HTTPS")
    sub.add_parser("status")
    p_probe = sub.add_parser("probe", help="traffic probe: start | stop | summary")
    p_probe.add_argument("action", choices=["start", "stop", "summary"])
    p_probe.add_argument("--rate", type=float, default=20.0)
    p_probe.add_argument("--wait-ready", action="store_true",
                         help="start once the app answers (after lab up)")
    p_probe.add_argument("--name", help="a probe of its own: .lab/probe-NAME.jsonl, "
                                        "probe-NAME-summary.json")
    p_probe.add_argument("--host", help="probe http://HOST/ (default app.example.test)")
    p_probe.add_argument("--url", action="append", help="a URL to probe (repeatable)")
    p_probe.add_argument("--shop", action="store_true",
                         help="every host and path of the move world's shop app, HTTP and "
                              "HTTPS")
    p_probe.add_argument("--stale", action="store_true",
                         help="resolve once and keep that address, like a client that "
                              "ignores the TTL (the stale-DNS probe)")
    p_probe.add_argument("--writes", action="store_true",
                         help="a write probe: POST new ids (default %s); stop reads them "
                              "back from MongoDB's primary and counts lost writes" % WRITE_URL)
    p_mongo = sub.add_parser("mongo", help="the move world's replica set: wait | status")
    p_mongo.add_argument("action", choices=["wait", "status"])
    p_mongo.add_argument("--timeout", type=float, default=120)
    p_admin = sub.add_parser("admin", help="send a JSON command to the lab daemon")
    p_admin.add_argument("json")
    p_audit = sub.add_parser("audit", help="audit log: mark | writes --since MARK (JSON)")
    p_audit.add_argument("action", choices=["mark", "writes"])
    p_audit.add_argument("--since", type=json.loads, default=None)
    p_link = sub.add_parser("link", help="a peering between two cloud networks (what a VPC "
                                         "peering or site-to-site VPN gives): up | down | status")
    p_link.add_argument("action", choices=["up", "down", "status"])
    p_link.add_argument("clouds", nargs="*", help="two of vsphere, aws, gcp")
    p_run = sub.add_parser("run", help="run a command inside clh-ctl (clh<instance>-ctl) with the lab environment")
    p_run.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.cmd == "up":
        up({"legacy_api": args.legacy_api, "workers": args.workers,
            "app_replicas": args.app_replicas, "cluster_id": args.cluster_id,
            "dns_ttl": args.dns_ttl, "dns_provider": args.dns_provider,
            "dataplane": args.dataplane, "konnectivity": args.konnectivity,
            "rbac": args.rbac, "clusters": args.clusters, "world": args.world,
            "same_pod_cidr": args.same_pod_cidr, "wireguard_hubs": args.wireguard_hubs})
    elif args.cmd == "down":
        down()
    elif args.cmd == "wait-app":
        wait_app(urls=shop_urls() if args.shop else None, host=args.host)
    elif args.cmd == "audit":
        print(json.dumps(audit(args.action, args.since)))
    elif args.cmd == "probe":
        probe(args.action, args.rate, args.wait_ready, name=args.name,
              urls=(args.url or []) + (shop_urls() if args.shop else []) or None,
              stale=args.stale, host=args.host, writes=args.writes)
    elif args.cmd == "mongo":
        mongo(args.action, args.timeout)
    elif args.cmd == "status":
        print(json.dumps({"namespaces": lab_namespaces(),
                          "daemon": admin({"cmd": "stats"})
                          if os.path.exists(os.path.join(lab_dir(), "labd.sock")) else None},
                         indent=2))
    elif args.cmd == "link":
        reply = admin({"cmd": "link", "action": args.action, "between": args.clouds})
        print(json.dumps(reply))
        if not reply.get("ok"):
            raise SystemExit(1)
    elif args.cmd == "admin":
        print(json.dumps(admin(json.loads(args.json))))
    elif args.cmd == "run":
        cmd = args.argv[1:] if args.argv and args.argv[0] == "--" else args.argv
        env = dict(os.environ, **run_env())
        os.execvpe("ip", ["ip", "netns", "exec", CTL_NS] + cmd, env)


if __name__ == "__main__":
    main()
