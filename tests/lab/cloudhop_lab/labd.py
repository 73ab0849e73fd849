"""The lab daemon: both API servers, their controllers and the fixture, in one process.

Started by ``python -m cloudhop_lab up`` inside network namespace ``clh-ctl``.
"""

import argparse
import itertools
import json
import logging
import os
import signal
import socketserver
import sys
import threading
import time

import yaml

from . import fixture, rbac, server
from .api import Api
from .controllers.core import standard_controllers
from .controllers.kkp import KKPSeedController
from .controllers.machines import CloudRegistry, FakeMachineBackend, MachineController
from .dataplane.flannel import FlannelAgent
from .dataplane.ingress import IngressAgent, LoadBalancerController
from .dataplane.kubeproxy import KubeProxy
from .dataplane.nodes import NetnsMachineBackend
from .dataplane.cloudapi import AwsApi
from .dataplane.gcpapi import GcpApi
from .dataplane.dns import ZONE, DnsServer
from .dataplane.openvpn import SeedNetwork, SeedNodePorts
from .dataplane.runtime import NetnsPodRuntime, SeedRuntime
from .dataplane.topology import Topology

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MIGRATOR = "cloudhop-migrator"

LOG = logging.getLogger("cloudhop_lab")
CLOUDDNS_ZONE = "example-test"  # the managed zone's name (Cloud DNS names zones apart from dnsName)


class UserCluster:
    """One KKP user cluster of the lab: its API server, the controllers that run inside it
    (kubelet, scheduler, ...), machine-controller on the seed's side, its pods' runtime, flannel,
    ingress-nginx, kube-proxy and cloud load balancers. ``spec`` is its fixture options
    (fixture.cluster_specs)."""

    def __init__(self, lab, spec):
        self.spec = spec
        self.name = spec["name"]
        self.id = spec["cluster_id"]
        self.api = Api(self.name, service_cidr=spec["service_cidr"])
        self.flannel = self.ingress = self.runtime = None
        if lab.topology is not None:
            self.flannel = FlannelAgent(self.api, spec["pod_cidr"])
            self.ingress = IngressAgent(self.api, lab.dir)
            self.runtime = NetnsPodRuntime(self.api, lab.dir, self.flannel, self.ingress,
                                           cluster=self.id)
            self.backend = NetnsMachineBackend(spec["networks"], spec["pod_cidr"],
                                               lab.topology, lab.dir, registry=lab.registry)
        else:
            self.backend = FakeMachineBackend(spec["networks"], spec["pod_cidr"],
                                              registry=lab.registry)

    def controllers(self, lab):
        out = standard_controllers(self.api, self.runtime)
        out.append(MachineController(self.api, lab.seed, self.id, self.backend))
        if self.flannel is not None:
            # load balancer k of cluster c of N gets index c + k N: its address, namespace and
            # private leg stay the same from one lab up to the next
            out += [self.flannel, self.ingress, KubeProxy(self.api),
                    LoadBalancerController(self.api, lab.seed, self.id, lab.topology, lab.dir,
                                           lab.aws, lab.gcp, indexes=itertools.count(
                                               self.spec["index"], len(lab.specs)))]
        return out


class Lab:
    def __init__(self, lab_dir, config):
        self.dir = lab_dir
        self.config = config
        opts = config["options"]
        self.opts = opts
        self.seed = Api("seed", service_cidr=opts["seed_service_cidr"])
        self.servers = []
        self.controllers = []
        self.topology = None
        self.dns = None
        self.aws = None
        self.gcp = None
        self.stopping = threading.Event()
        self.seed_runtime = None
        self.registry = CloudRegistry()
        self.zone_lock = threading.Lock()
        self.mirroring = False  # the Route53 zone's name-server mirror runs
        if opts.get("dataplane", True):
            self.topology = Topology(opts)
        self.specs = fixture.cluster_specs(opts)
        self.clusters = [UserCluster(self, spec) for spec in self.specs]
        first = self.clusters[0]
        # the first user cluster, as every single-cluster test and tool knows it
        self.user, self.flannel, self.ingress = first.api, first.flannel, first.ingress
        self.user_runtime, self.backend = first.runtime, first.backend

    def load_fixture(self):
        with open(os.path.join(self.dir, "pki", "material.json"), encoding="utf-8") as fh:
            material = json.load(fh)
        with open(os.path.join(self.dir, "ssh", "id_ed25519.pub"), encoding="utf-8") as fh:
            ssh_pub = fh.read().strip()
        for api in [self.seed] + [c.api for c in self.clusters]:
            for obj in fixture.base_namespaces():
                self._create(api, obj)
        for i, cluster in enumerate(self.clusters):
            for obj in fixture.seed_objects(cluster.spec, material, shared=i == 0):
                self._create(self.seed, obj)
            for obj in fixture.user_objects(cluster.spec, material, ssh_pub):
                self._create(cluster.api, obj)

    def _authorizer(self, api, enforce):
        """RBAC from the API's own Role/ClusterRole/(Cluster)RoleBinding objects; the admin is in
        system:masters. Refused requests go to rbac-denied.jsonl (not enforcing: allowed all
        the same); every request of another user to rbac-used.jsonl."""
        kinds = {k: api.rt("rbac.authorization.k8s.io", "v1", k.lower() + "s")
                 for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")}
        authz = rbac.Authorizer(lambda kind: api.list(kinds[kind], copy_objs=False)[0],
                                {"cloudhop-admin": ["system:masters"]})
        denied_log = os.path.join(self.dir, "rbac-denied.jsonl")
        lock = threading.Lock()

        used_log = os.path.join(self.dir, "rbac-used.jsonl")

        def decide(user, verb, rt, ns, sub, name):
            allowed = authz.allowed(user, verb, rt.group, rt.plural, sub, ns, name)
            entry = json.dumps({"cluster": api.name, "user": user, "verb": verb,
                                "group": rt.group, "resource": rt.plural, "subresource": sub,
                                "namespace": ns, "name": name, "enforced": enforce}) + "\n"
            with lock:
                if user != "cloudhop-admin":  # audit: every request of the collection's user
                    with open(used_log, "a", encoding="utf-8") as fh:
                        fh.write(entry)
                if not allowed:
                    with open(denied_log, "a", encoding="utf-8") as fh:
                        fh.write(entry)
            return allowed or not enforce
        if enforce:
            api.escalation = lambda user, obj, creating=False: rbac.escalation(
                authz, user, obj, creating)
        return decide

    def load_rbac(self):
        """docs/rbac's roles, bound to user cloudhop-migrator (lab up --rbac): the seed's
        rendered for every cluster of the lab (whatever their ids) as playbooks/rbac.yml renders
        them, with the collection's own filter code; in the move world also the move's roles,
        in its old and its new cluster."""
        sys.path.insert(0, os.path.join(REPO, ".collections"))
        from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import (  # pylint: disable=import-outside-toplevel
            rbac_render)
        docs = [(self.seed, "seed.yaml")] + [(c.api, "user-cluster.yaml") for c in self.clusters]
        if self.opts.get("world") == "move":
            docs += [(self.clusters[0].api, "move.yaml"), (self.clusters[-1].api, "move.yaml")]
        for api, doc in docs:
            path = os.path.join(REPO, "docs", "rbac", doc)
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as fh:
                objects = list(yaml.safe_load_all(fh))
            if doc == "seed.yaml":
                objects = rbac_render.for_clusters(objects, [c.id for c in self.clusters])
            for obj in objects:
                # a v1 List (as kubectl apply -f takes it) or single objects
                for item in (obj or {}).get("items", [obj]) if obj else []:
                    self._create(api, item)

    @staticmethod
    def _create(api, obj):
        rt = api.rt_for(obj["apiVersion"], obj["kind"])
        ns = obj["metadata"].get("namespace")
        status = obj.get("status")
        created = api.create(rt, ns, obj)
        if status and rt.kind == "Node":
            return created
        return created

    def start(self):
        cfg = self.config
        tokens = {cfg["admin_token"]: "cloudhop-admin"}
        if cfg.get("migrator_token"):
            tokens[cfg["migrator_token"]] = MIGRATOR
        if self.opts.get("rbac"):
            for api in [self.seed] + [c.api for c in self.clusters]:
                api.rbac = self._authorizer(api, self.opts["rbac"] == "enforce")
        pki = os.path.join(self.dir, "pki")
        ports = [(self.seed, cfg["seed_port"])] + [(c.api, c.spec["port"]) for c in self.clusters]
        for api, port in ports:
            self.servers.append(server.serve(
                api, cfg["bind"], port, os.path.join(pki, "apiserver.crt"),
                os.path.join(pki, "apiserver.key"), tokens,
                os.path.join(self.dir, "audit-%s.jsonl" % api.name)))
        seed_runtime = None
        seed_net = None
        if self.topology is not None:
            self.topology.build()
            seed_net = SeedNetwork(self.topology, self.opts,
                                   [c.spec for c in self.clusters[1:]])
            seed_net.build()
            self.dns = DnsServer(self.topology, self.dir)
            self.dns.build()
            for cluster in self.clusters:
                if cluster.spec.get("app_host"):
                    threading.Thread(target=self._bootstrap_dns, args=(cluster,),
                                     name="dns-bootstrap-" + cluster.name, daemon=True).start()
            seed_runtime = SeedRuntime(self.seed, self.dir,
                                       {ns: n[0] for ns, n in seed_net.netns.items()})
        self.seed_runtime = seed_runtime
        self.controllers += standard_controllers(self.seed, seed_runtime)
        if self.topology is not None:
            self.controllers.append(SeedNodePorts(self.seed, seed_net.pod_ips,
                                                  seed_runtime.endpoints))
        self.controllers.append(KKPSeedController(self.seed, self.opts["vpn_cidr"]))
        if self.topology is not None:
            # published only once ready: the DNS bootstrap threads wait for them to be set
            aws = AwsApi(self.dir)
            aws.start()
            self.aws = aws
            gcp = GcpApi(self.dir, on_dns_change=self._clouddns_served)
            gcp.register_key_file(os.path.join(self.dir, "gcp-sa.json"))
            gcp.create_zone(CLOUDDNS_ZONE, ZONE + ".")
            gcp.start()
            self.gcp = gcp
        for cluster in self.clusters:
            self.controllers += cluster.controllers(self)
        for c in self.controllers:
            c.start()
        if self.topology is not None and any(c.spec.get("mongo") for c in self.clusters):
            threading.Thread(target=self._bootstrap_mongo, name="mongo-bootstrap",
                             daemon=True).start()

    def _bootstrap_dns(self, cluster):
        """A cluster's DNS records: its app host (app.example.test for the first) and, in the
        move world, the shop app's hosts -> its vSphere load balancer, TTL dns_ttl."""
        api = cluster.api
        svc_rt = api.rt("", "v1", "services")
        deadline = time.monotonic() + 120
        seen = 0
        hosts = [cluster.spec["app_host"]] + (list(fixture.SHOP_HOSTS)
                                              if cluster.spec.get("shop_app") else [])
        while time.monotonic() < deadline:
            seen = api.wait_change(seen, deadline - time.monotonic())
            svc = api.try_get(svc_rt, "ingress-nginx", "ingress-nginx-controller")
            ingress = (((svc or {}).get("status") or {}).get("loadBalancer") or {}).get(
                "ingress") or []
            if ingress:
                for host in hosts:
                    self._record(host, ingress[0]["ip"])
                return
        LOG.error("dns: the vSphere load balancer of %s got no address; %s has no record",
                  cluster.name, ", ".join(hosts))

    def _mongo_file(self, info):
        path = os.path.join(self.dir, "mongo.json")
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=2)
        os.replace(path + ".tmp", path)

    def _bootstrap_mongo(self):
        """The move world's replica set, as its Helm chart's set-up job leaves it: once the old
        cluster's three members answer (through their load balancers, from clh-ctl where the
        daemon runs), replSetInitiate with the three and the manual's default settings, then
        wait for a primary. The new cluster's members stay empty, without a config."""
        import pymongo  # pylint: disable=import-outside-toplevel
        old = fixture.mongo_hosts(self.specs[0], "vsphere")
        info = {"set": fixture.MONGO_SET, "old": old,
                "new": fixture.mongo_hosts(self.specs[-1], "aws") if len(self.specs) > 1 else [],
                "uri": fixture.mongo_uri(self.specs[0]), "ready": False}
        self._mongo_file(info)
        deadline = time.monotonic() + 180
        error = "members not reachable yet"
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                for host in old:
                    with pymongo.MongoClient(host, directConnection=True,
                                             serverSelectionTimeoutMS=1000) as c:
                        c.admin.command("ping")
                with pymongo.MongoClient(old[0], directConnection=True,
                                         serverSelectionTimeoutMS=2000) as c:
                    try:
                        c.admin.command("replSetInitiate", {
                            "_id": fixture.MONGO_SET,
                            "members": [{"_id": i, "host": h} for i, h in enumerate(old)]})
                        LOG.info("mongo: replica set %s initiated with %s", fixture.MONGO_SET,
                                 ", ".join(old))
                    except pymongo.errors.OperationFailure as exc:
                        if exc.code != 23:  # AlreadyInitialized: a restarted daemon
                            raise
                with pymongo.MongoClient(old, replicaSet=fixture.MONGO_SET,
                                         serverSelectionTimeoutMS=30000) as c:
                    c.admin.command("ping")  # selects the primary
                    info.update(ready=True, primary="%s:%d" % c.primary)
                self._mongo_file(info)
                LOG.info("mongo: %s has a primary: %s", fixture.MONGO_SET, info["primary"])
                return
            except pymongo.errors.PyMongoError as exc:
                error = "%s: %s" % (type(exc).__name__, exc)
                self.stopping.wait(1.0)
        info["error"] = error
        self._mongo_file(info)
        LOG.error("mongo: replica set %s not started: %s", fixture.MONGO_SET, error)

    def _record(self, host, address):
        """One record of the fixture, where --dns-provider keeps it."""
        name = host + "."
        if self.opts.get("dns_provider") == "route53":
            self._route53(name, address)
        elif self.opts.get("dns_provider") == "clouddns":
            while self.gcp is None:
                time.sleep(0.1)
            self.gcp.set_rrset(CLOUDDNS_ZONE, name, "A", self.opts["dns_ttl"], [address])
        else:
            self.dns.update(name, address, self.opts["dns_ttl"])
        LOG.info("dns (%s): %s -> %s (TTL %d)", self.opts.get("dns_provider", "rfc2136"),
                 host, address, self.opts["dns_ttl"])

    def _route53(self, name, address):
        """The record lives in a Route53 hosted zone (the lab's moto); the lab's name server
        answers what the zone holds, as Route53's own name servers do: a change made through the
        API shows in DNS within the mirror's 0.5 s (Route53: INSYNC within about a minute)."""
        while self.aws is None:
            time.sleep(0.1)
        with self.zone_lock:  # one hosted zone and one mirror, whichever record comes first
            zone_id = self.aws.hosted_zone(ZONE + ".")
            if not self.mirroring:
                self.mirroring = True
                threading.Thread(target=self._route53_mirror, args=(zone_id,),
                                 name="route53-nameserver", daemon=True).start()
        self.aws.set_a(zone_id, name, [address], self.opts["dns_ttl"])

    def _route53_mirror(self, zone_id):
        served = {}
        while not self.stopping.is_set():
            try:
                for name, want in self.aws.a_records(zone_id).items():
                    if want and want != served.get(name):
                        self.dns.update(name, want[0], want[1])
                        served[name] = want
            except Exception as exc:  # pylint: disable=broad-except
                LOG.warning("route53 mirror: %s", exc)
            self.stopping.wait(0.5)

    def _clouddns_served(self, name, rtype, ttl, rrdatas):
        """With the record in Cloud DNS, the lab's name server is the managed zone's: it serves
        what a done change left (Cloud DNS: a change is done once its name servers serve it)."""
        if self.opts.get("dns_provider") != "clouddns" or rtype != "A":
            return
        if rrdatas:
            self.dns.update(name, rrdatas, ttl)
        else:
            self.dns.delete(name)

    def stop(self):
        self.stopping.set()
        for c in self.controllers:
            c.stop()
        if self.aws is not None:
            self.aws.stop()
        if self.gcp is not None:
            self.gcp.stop()
        for s in self.servers:
            s.shutdown()

    def admin(self, request):
        """Commands on the admin socket (fault injection, stats)."""
        cmd = request.get("cmd")
        apis = dict({"seed": self.seed}, **{c.name: c.api for c in self.clusters})
        if cmd == "ping":
            return {"ok": True}
        if cmd == "stats":
            return {"ok": True, "rv": {k: a.rv for k, a in apis.items()},
                    "controller_errors": {c.name + "@" + c.api.name: c.errors
                                          for c in self.controllers},
                    "instances": self.backend.instances,
                    "clusters": {c.name: {"id": c.id, "port": c.spec["port"],
                                          "cloud": c.spec["cloud"],
                                          "instances": c.backend.instances}
                                 for c in self.clusters}}
        if cmd == "compact":
            return {"ok": True, "rv": apis[request.get("cluster", "user")].compact()}
        if cmd == "fault":
            srv = self.servers[list(apis).index(request.get("cluster") or "user")]
            if request.get("clear"):
                with srv.faults.lock:
                    matched = [dict(r) for r in srv.faults.rules]
                    srv.faults.rules.clear()
                return {"ok": True, "rules": matched}
            srv.faults.add(request["rule"])
            return {"ok": True}
        if cmd == "vpn-hub":
            # the seed's VPN server processes (openvpn-server, or the migration's hubs; "app":
            # only the pods with that app label, one hub): kill = SIGKILL, the kubelet restarts
            # them (crash-loop back-off); hold: true keeps them crashing until release
            if self.seed_runtime is None:
                return {"ok": False, "error": "the lab has no data plane"}
            action = request.get("action", "status")
            if action == "kill":
                killed = self.seed_runtime.kill_hub(bool(request.get("hold")),
                                                    request.get("app"))
                return {"ok": True, "killed": killed}
            if action == "release":
                self.seed_runtime.release_hub()
            return {"ok": True, "hub": self.seed_runtime.hub_status()}
        if cmd == "gcp":
            # the Google API's request log from index ``since`` (writes = POST/PATCH answered
            # 2xx), and record sets of the managed zone
            since = int(request.get("since", 0))
            with self.gcp.lock:
                reqs = self.gcp.requests[since:]
                count = len(self.gcp.requests)
            zone = request.get("zone", CLOUDDNS_ZONE)
            return {"ok": True, "mark": count, "requests": len(reqs),
                    "writes": [r for r in reqs if r[0] != "GET" and r[1] != "/token"
                               and 200 <= r[2] < 300],
                    "log": reqs,
                    "rrset": self.gcp.rrset(zone, request["name"], request.get("type", "A"))
                    if request.get("name") else None}
        if cmd == "link":
            # the cloud's peering between two cloud networks: up | down | status
            if self.topology is None:
                return {"ok": False, "error": "the lab has no data plane"}
            action = request.get("action", "status")
            between = request.get("between") or []
            if action in ("up", "down") and len(between) != 2:
                return {"ok": False, "error": "link %s needs two clouds (between)" % action}
            if action == "up":
                return {"ok": True, "link": self.topology.link(*between),
                        "links": self.topology.links()}
            if action == "down":
                self.topology.unlink(*between)
            return {"ok": True, "links": self.topology.links()}
        if cmd == "gcp_concurrent_writer":
            # another writer sets this record set just before the next change lands
            self.gcp.before_change.append(request["rrset"])
            return {"ok": True}
        return {"ok": False, "error": "unknown command %r" % cmd}


def _admin_server(lab, path):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                try:
                    reply = lab.admin(json.loads(line))
                except Exception as exc:  # pylint: disable=broad-except
                    reply = {"ok": False, "error": str(exc)}
                self.wfile.write(json.dumps(reply).encode() + b"\n")
                self.wfile.flush()

    if os.path.exists(path):
        os.unlink(path)
    srv = socketserver.ThreadingUnixStreamServer(path, Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    with open(os.path.join(args.dir, "config.json"), encoding="utf-8") as fh:
        config = json.load(fh)
    lab = Lab(args.dir, config)
    lab.load_fixture()
    if lab.opts.get("rbac"):
        lab.load_rbac()
    lab.start()
    _admin_server(lab, os.path.join(args.dir, "labd.sock"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open(os.path.join(args.dir, "labd.ready"), "w", encoding="utf-8") as fh:
        fh.write(str(time.time()))
    LOG.info("lab up: seed on %s:%d, user on %s:%d", config["bind"], config["seed_port"],
             config["bind"], config["user_port"])
    stop.wait()
    lab.stop()


if __name__ == "__main__":
    main()
