"""ingress-nginx pods and cloud load balancers of the lab.

Ingress: every running ingress-nginx pod is a real HAProxy, in its pod's network namespace on
the pod IP (or, for a hostNetwork pod, in its node's namespace on the node IP), ports 80 and
443, routing by Host header and path to the *pod IPs* of the backend Service's ready Endpoints,
as ingress-nginx does (it bypasses the Service's cluster IP): the longest path first, Prefix
paths matched by path elements, Exact paths exactly. On 443 it terminates TLS with the
certificates of the Ingresses' ``tls`` Secrets, chosen by SNI, and its fake certificate
("Kubernetes Ingress Controller Fake Certificate") for any other name; a host listed under
``tls`` is redirected from HTTP to HTTPS with 308 (ingress-nginx's default), path by path: not
the paths of an Ingress that says ``nginx.ingress.kubernetes.io/ssl-redirect: "false"``. A
controller serves what ingress-nginx 1.x serves (``serves``): an Ingress whose
``spec.ingressClassName`` names an IngressClass whose ``spec.controller`` is the controller's
``--controller-class`` (default ``k8s.io/ingress-nginx``), one whose deprecated
``kubernetes.io/ingress.class`` annotation is its ``--ingress-class`` (default ``nginx``), and
one with no class only with ``--watch-ingress-without-class``; with ``--watch-namespace`` only
that namespace's. So a second controller of its own class and IngressClass (the move's proxy)
serves only its Ingresses, and an Ingress naming a class that does not exist is served by none.
Configuration follows Endpoints, Ingress and Secret changes; failed upstream connections are
retried on another pod, like nginx's ``proxy_next_upstream error timeout``.

Load balancers: a ``type: LoadBalancer`` Service gets one from a cloud:
- vSphere: MetalLB's role, for Services while the cluster is on vSphere or annotated with a
  MetalLB address pool;
- AWS / GCP: the cloud controller manager's role, for the other Services once the cluster's cloud
  is switched and nodes of that cloud exist.
A load balancer is an HAProxy namespace ``clh-lb-*`` with a public address on the internet
segment and a leg in its cloud's network, balancing TCP to the Service's NodePort on that cloud's
nodes, with health checks; kube-proxy on the node (kubeproxy.py) forwards to a ready endpoint
anywhere in the cluster. So an old cloud's load balancer keeps serving through its cordoned,
drained nodes while the ingress pods run in the new cloud, over the pod overlay, as in a real
cluster. ``status.loadBalancer.ingress`` gets the address.

Internal load balancers listen on an address of the cloud's (node) network instead, and have no
public leg: MetalLB with ``metallb.universe.tf/loadBalancerIPs`` asking for an address of the
vSphere network (a layer-2 pool on the node network), AWS with
``service.beta.kubernetes.io/aws-load-balancer-scheme: internal`` (or the legacy
``service.beta.kubernetes.io/aws-load-balancer-internal: "true"``) and optionally
``service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses``. They are reached from
the same network, from the operator's management legs and over a peering (``link``); their
replies leave through the cloud's gateway. An address asked for that is not in the cloud's
network, or is taken, gets no load balancer (the Service stays pending, as MetalLB's
AllocationFailed and the AWS controller's failed reconcile leave it) and a warning in the log.
"""

import base64
import hashlib
import ipaddress
import itertools
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from ..controllers.base import Controller
from .. import pki
from ..controllers.kkp import effective_cloud
from . import netns as nsx
from .haproxy import GLOBAL, HAProxy
from .kubeproxy import ready_endpoints
from .nodes import node_ns
from .topology import INET_NS, router_ns

LOG = logging.getLogger("cloudhop_lab")
# ingress-nginx's upstream defaults, in HAProxy's words: proxy-connect-timeout 5 s; a failed
# connection (error or timeout, proxy-next-upstream) goes to the *next* endpoint at once, three
# tries in all (proxy-next-upstream-tries 3) - so redispatch on every retry: HAProxy's default
# retries the same server after a one-second turn-around and redispatches only on the last, which
# turns a pod that stopped listening before its Endpoints change reached the proxy into
# multi-second requests nginx does not make. nginx sends without delay (tcp_nodelay on, its
# default); HAProxy's http-no-delay likewise sends each HTTP message's parts at once.
# A cloud load balancer (TCP to the nodes' NodePorts): connect timeout 2 s, three retries,
# another node on the last.
LB_DEFAULTS = """  timeout connect 2s
  retries 3
  option redispatch
"""
INGRESS_DEFAULTS = """  timeout connect 5s
  retries 2
  option redispatch 1
  option http-no-delay
"""
METALLB_POOL = "metallb.universe.tf/address-pool"
SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"
METALLB_IPS = "metallb.universe.tf/loadBalancerIPs"
AWS_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
AWS_INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"
AWS_PRIVATE_IPS = "service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses"
LB_PUBLIC_FIRST = 100


LEGACY_CLASS = "kubernetes.io/ingress.class"


def _flags(pod):
    """The controller's command-line flags (--name=value or --name value)."""
    flags = {}
    for c in pod["spec"].get("containers") or []:
        args = (c.get("command") or []) + (c.get("args") or [])
        for i, arg in enumerate(args):
            if not arg.startswith("--"):
                continue
            if "=" in arg:
                name, value = arg[2:].split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                name, value = arg[2:], args[i + 1]
            else:
                name, value = arg[2:], "true"
            flags[name] = value
    return flags


def ingress_class(pod):
    """What an ingress-nginx pod serves, from its flags as ingress-nginx 1.x reads them:
    (--ingress-class, default nginx; --controller-class, default k8s.io/ingress-nginx;
    --watch-ingress-without-class, default false; --ingress-class-by-name, default false;
    --watch-namespace, default every namespace)."""
    flags = _flags(pod)
    return (flags.get("ingress-class", "nginx"),
            flags.get("controller-class", "k8s.io/ingress-nginx"),
            flags.get("watch-ingress-without-class", "false") == "true",
            flags.get("ingress-class-by-name", "false") == "true",
            flags.get("watch-namespace", ""))


DEFAULT_CLASS = ("nginx", "k8s.io/ingress-nginx", False, False, "")


def serves(klass, ing, classes):
    """Whether a controller of ``klass`` (ingress_class) serves the Ingress, as ingress-nginx
    1.x decides: ``spec.ingressClassName`` names an IngressClass (``classes``: name ->
    spec.controller) whose controller is the controller's --controller-class (or, with
    --ingress-class-by-name, the name is its --ingress-class); else the deprecated
    ``kubernetes.io/ingress.class`` annotation equals its --ingress-class; an Ingress with
    neither only with --watch-ingress-without-class; with --watch-namespace, only Ingresses
    of that namespace."""
    name, controller, without_class, by_name, namespace = klass
    if namespace and ing["metadata"].get("namespace") != namespace:
        return False
    cls = (ing.get("spec") or {}).get("ingressClassName")
    if cls:
        return classes.get(cls) == controller or (by_name and cls == name)
    legacy = (ing["metadata"].get("annotations") or {}).get(LEGACY_CLASS)
    if legacy:
        return legacy == name
    return without_class


class IngressAgent(Controller):
    name = "ingress-nginx"
    resync = 0.5

    def __init__(self, api, lab_dir):
        super().__init__(api)
        self.dir = os.path.join(lab_dir, "ingress")
        self.pods = {}  # uid -> (node, HAProxy, pod IP or None)
        self.fake = None  # ingress-nginx's fake certificate (PEM)
        self.pool = None  # applies the pods' configurations side by side

    # runtime hooks
    def pod_started(self, uid, node, netns=None, ip=None, klass=None):
        """netns/ip: the pod's own namespace and IP; None for a hostNetwork pod. klass: the
        ingress class it serves (ingress_class)."""
        self.pods[uid] = (node, HAProxy(netns or node_ns(node), os.path.join(self.dir, uid)),
                          ip, klass or DEFAULT_CLASS)

    def pod_ready(self, uid):
        """Ready once its proxy has loaded a configuration (and so listens), as ingress-nginx's
        readiness probe (/healthz on 10254) passes only once nginx runs its configuration: a
        process just spawned does not listen yet, and connections sent to it would be refused."""
        entry = self.pods.get(uid)
        return bool(entry and entry[1].alive() and entry[1].loaded is not None)

    def pod_stopped(self, uid):
        entry = self.pods.pop(uid, None)
        if entry is not None:
            entry[1].stop()

    def _tls(self, ingresses, cert_dir):
        """The TLS Secrets of the Ingresses, written as HAProxy PEMs into ``cert_dir`` (the
        fake certificate first: HAProxy serves the first one loaded when no SNI matches, as
        ingress-nginx serves its fake certificate); returns (the hosts with TLS, a digest of the
        files, so that a changed certificate reloads the proxy)."""
        if self.fake is None:
            self.fake = pki.fake_ingress_certificate()
        files = {"00-default.pem": self.fake}
        tls_hosts = set()
        for ing in ingresses:
            ns = ing["metadata"]["namespace"]
            for entry in ing["spec"].get("tls") or []:
                tls_hosts.update(entry.get("hosts") or [])
                secret = self.api.try_get(self.rt("", "v1", "secrets"), ns,
                                          entry.get("secretName") or "")
                data = (secret or {}).get("data") or {}
                if data.get("tls.crt") and data.get("tls.key"):
                    files["%s_%s.pem" % (ns, entry["secretName"])] = (
                        base64.b64decode(data["tls.crt"]).rstrip(b"\n") + b"\n" +
                        base64.b64decode(data["tls.key"]))
        os.makedirs(cert_dir, mode=0o700, exist_ok=True)
        for stale in set(os.listdir(cert_dir)) - set(files):
            os.unlink(os.path.join(cert_dir, stale))
        digest = hashlib.sha256()
        for name, pem in sorted(files.items()):
            path = os.path.join(cert_dir, name)
            digest.update(name.encode() + pem)
            try:
                with open(path, "rb") as fh:
                    same = fh.read() == pem
            except OSError:
                same = False
            if not same:
                fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(pem)
                os.replace(path + ".tmp", path)
        return tls_hosts, digest.hexdigest()[:16]

    @staticmethod
    def _condition(host_acl, path, path_type):
        """When a rule applies, as ingress-nginx matches: the host, then Exact is the path
        itself; Prefix matches by path elements (/cart matches /cart and /cart/x, not /carts);
        / matches everything."""
        if path_type == "Exact":
            return "%s { path %s }" % (host_acl, path)
        path = path.rstrip("/")
        if not path:
            return host_acl
        if path_type == "ImplementationSpecific":
            return "%s { path_beg %s }" % (host_acl, path)
        return "%s { path %s } || %s { path_beg %s/ }" % (host_acl, path, host_acl, path)

    def snapshot(self):
        """What every pod's configuration is built from, listed once per pass: (Endpoints,
        Services, IngressClasses, Ingresses)."""
        return ({(e["metadata"]["namespace"], e["metadata"]["name"]): e
                 for e in self.ls("", "v1", "endpoints")},
                {(s["metadata"]["namespace"], s["metadata"]["name"]): s
                 for s in self.ls("", "v1", "services")},
                {c["metadata"]["name"]: (c.get("spec") or {}).get("controller")
                 for c in self.ls("networking.k8s.io", "v1", "ingressclasses")},
                self.ls("networking.k8s.io", "v1", "ingresses"))

    def config(self, node_ip, cert_dir, klass=None, snapshot=None):
        eps, svcs, classes, all_ingresses = snapshot or self.snapshot()
        ingresses = [ing for ing in all_ingresses if serves(klass or DEFAULT_CLASS, ing, classes)]
        tls_hosts, digest = self._tls(ingresses, cert_dir)
        routes, backends = [], []
        for ing in ingresses:
            ns = ing["metadata"]["namespace"]
            # ingress-nginx's ssl-redirect is per location: this Ingress's paths on a TLS host
            annotations = ing["metadata"].get("annotations") or {}
            redirect = annotations.get(SSL_REDIRECT, "true") != "false"
            for r_i, rule in enumerate(ing["spec"].get("rules") or []):
                for p_i, path in enumerate((rule.get("http") or {}).get("paths") or []):
                    svc_ref = path["backend"]["service"]
                    svc = svcs.get((ns, svc_ref["name"]))
                    port_ref = svc_ref.get("port") or {}
                    sport = next((p for p in (svc or {}).get("spec", {}).get("ports") or []
                                  if p.get("port") == port_ref.get("number") or
                                  (port_ref.get("name") and p.get("name") == port_ref["name"])),
                                 None)
                    name = "be_%s_%s_%d_%d" % (ns, ing["metadata"]["name"], r_i, p_i)
                    servers = []
                    for addr, ports in ready_endpoints(eps.get((ns, svc_ref["name"]))):
                        port = ports.get((sport or {}).get("name", ""), None) or \
                            next(iter(ports.values()), None)
                        if port:
                            servers.append("  server %s %s:%d" % (
                                addr["targetRef"]["name"] if addr.get("targetRef") else
                                addr["ip"], addr["ip"], port))
                    routes.append((rule.get("host", ""), path.get("path", "/"),
                                   path.get("pathType", "Prefix"), name, redirect))
                    backends.append("backend %s\n  mode http\n  balance roundrobin\n%s\n"
                                    % (name, "\n".join(sorted(servers)) or
                                       "  http-request return status 503"))
        # the longest path first, as ingress-nginx orders its locations
        routes.sort(key=lambda r: (r[0], -len(r[1].rstrip("/")), r[2] != "Exact"))
        http_rules, https_rules = [], []
        for i, (host, path, path_type, backend, redirect) in enumerate(routes):
            acl = "  acl h%d hdr(host),field(1,:) -i %s\n" % (i, host)
            cond = self._condition("h%d" % i, path, path_type)
            https_rules.append("%s  use_backend %s if %s" % (acl, backend, cond))
            # the first matching rule wins on HTTP too: a redirecting location redirects
            http_rules.append("%s  use_backend %s if %s" % (
                acl, "be_https_redirect" if redirect and host in tls_hosts else backend, cond))
        return GLOBAL + INGRESS_DEFAULTS + (
            "# certificates %s\n"
            "frontend http\n  mode http\n  bind %s:80\n"
            "  http-request set-header X-Forwarded-Proto http\n%s\n"
            "  default_backend default_404\n"
            "frontend https\n  mode http\n  bind %s:443 ssl crt %s/\n"
            "  http-request set-header X-Forwarded-Proto https\n%s\n"
            "  default_backend default_404\n" % (
                digest, node_ip, "\n".join(http_rules), node_ip, cert_dir,
                "\n".join(https_rules)) +
            "backend be_https_redirect\n  mode http\n"
            "  http-request redirect scheme https code 308\n" +
            "".join(backends) +
            "backend default_404\n  mode http\n  http-request return status 404\n")

    def reconcile(self):
        """Every ingress pod's proxy gets its configuration, all of them at once: each
        ingress-nginx pod follows the Endpoints by itself, within about a second. One after the
        other, a pass waited for every proxy's reload in turn (8.13 s for one pass in a loaded
        make test), and a pod that had left the Endpoints stayed in the others' backends past
        its preStop, so requests were sent to a pod already gone."""
        nodes = {n["metadata"]["name"]: n for n in self.ls("", "v1", "nodes")}
        snapshot = self.snapshot()
        jobs = []
        for node, proxy, pod_ip, klass in list(self.pods.values()):
            with self.isolated(node):
                n = nodes.get(node)
                if n is None or not nsx.ns_exists(proxy.netns):
                    continue
                ip = pod_ip or next(a["address"] for a in n["status"]["addresses"]
                                    if a["type"] == "InternalIP")
                jobs.append((node, proxy, self.config(ip, os.path.join(proxy.dir, "certs"),
                                                      klass, snapshot)))
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ingress-apply")
        done = [(node, self.pool.submit(proxy.apply, text)) for node, proxy, text in jobs]
        for node, future in done:
            with self.isolated(node):
                future.result()


class LoadBalancerController(Controller):
    name = "load-balancers"
    resync = 0.5

    def __init__(self, api, seed_api, cluster_name, topology, lab_dir, aws=None, gcp=None,
                 indexes=None):
        super().__init__(api)
        self.aws = aws
        self.gcp = gcp
        self.seed = seed_api
        self.cluster_name = cluster_name
        self.topology = topology
        self.dir = os.path.join(lab_dir, "lb")
        self.lbs = {}  # (ns, name, cloud) -> dict(ip, netns, proxy, index)
        self.refused = set()  # Services whose asked-for address was refused (warned once)
        # the clouds' address pools are shared by every cluster's controller
        self.indexes = indexes if indexes is not None else itertools.count()

    def reconcile(self):
        # the cloud the seed last reconciled (the CCM it runs), not spec.cloud as edited
        cloud_now = effective_cloud(self.seed, self.cluster_name)[0]
        nodes = {n["metadata"]["name"]: n for n in self.ls("", "v1", "nodes")}
        eps = {(e["metadata"]["namespace"], e["metadata"]["name"]): e
               for e in self.ls("", "v1", "endpoints")}
        wanted = set()
        for svc in self.ls("", "v1", "services"):
            if (svc.get("spec") or {}).get("type") != "LoadBalancer":
                continue
            with self.isolated(svc):
                key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
                cloud = self._cloud_for(svc, cloud_now)
                if cloud is None:
                    continue
                targets = self._targets(svc, eps.get(key), nodes, cloud)
                lb = self.lbs.get(key + (cloud,))
                if lb is None and not targets:
                    continue  # a cloud LB appears once the cloud has nodes
                wanted.add(key + (cloud,))
                if lb is None:
                    lb = self._create(key, cloud, svc)
                    if lb is None:
                        continue
                lb["proxy"].apply(self._config(svc, lb, targets))
                self._status(svc, lb["ip"])
        for key in set(self.lbs) - wanted:
            self._delete(key)

    @staticmethod
    def _cloud_for(svc, cloud_now):
        ann = svc["metadata"].get("annotations") or {}
        if METALLB_POOL in ann or METALLB_IPS in ann or cloud_now == "vsphere":
            return "vsphere"
        return cloud_now if cloud_now in ("aws", "gcp") else None

    @staticmethod
    def _targets(svc, ep, nodes, cloud):
        """The cloud's nodes, at the Service's NodePorts (externalTrafficPolicy Cluster: every
        node forwards; Local: only nodes running a ready endpoint, as the health check
        node port reports). Nodes labelled node.kubernetes.io/exclude-from-external-load-
        balancers are left out, as by the service controller. Cordoned nodes stay targets."""
        local = (svc.get("spec") or {}).get("externalTrafficPolicy") == "Local"
        with_endpoint = {addr.get("nodeName") for addr, _ports in ready_endpoints(ep)}
        out = []
        for name, node in sorted(nodes.items()):
            meta = node["metadata"]
            if (meta.get("annotations") or {}).get("lab.cloudhop.io/cloud") != cloud:
                continue
            if "node.kubernetes.io/exclude-from-external-load-balancers" in (
                    meta.get("labels") or {}) or meta.get("deletionTimestamp"):
                continue
            if local and name not in with_endpoint:
                continue
            ip = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                       if a["type"] == "InternalIP"), None)
            if ip and nsx.ns_exists(node_ns(name)):
                out.append((name, ip))
        return out

    def internal_address(self, svc, cloud):
        """(internal?, the node-network address asked for or None); raises ValueError for an
        address the cloud cannot give."""
        ann = svc["metadata"].get("annotations") or {}
        if cloud == "vsphere":
            wanted = [a.strip() for a in ann.get(METALLB_IPS, "").split(",") if a.strip()]
            if not wanted or ipaddress.ip_address(wanted[0]) in self.topology.public:
                return False, None
        elif cloud == "aws":
            if ann.get(AWS_SCHEME) != "internal" and ann.get(AWS_INTERNAL) != "true":
                return False, None
            wanted = [a.strip() for a in ann.get(AWS_PRIVATE_IPS, "").split(",") if a.strip()]
        else:
            return False, None
        if not wanted:
            return True, None
        net = self.topology.networks[cloud]
        addr = ipaddress.ip_address(wanted[0])
        if addr not in net or addr in (net.network_address, net.broadcast_address):
            raise ValueError("address %s is not in the %s network %s" % (addr, cloud, net))
        if any(lb["private"] == str(addr) for lb in self.lbs.values()):
            raise ValueError("address %s is taken by another load balancer" % addr)
        return True, str(addr)

    def _create(self, key, cloud, svc):
        try:
            internal, asked = self.internal_address(svc, cloud)
        except ValueError as exc:
            if key not in self.refused:
                self.refused.add(key)
                LOG.warning("load balancer for %s/%s: %s; the Service stays pending",
                            key[0], key[1], exc)
            return None
        self.refused.discard(key)
        index = next(self.indexes)  # this cluster's own sequence (labd)
        ns = nsx.ns_name("lb-%s-%d" % (cloud[:6], index))
        net = self.topology.networks[cloud]
        private = asked or str(list(net.hosts())[-(index + 2)])
        public = None if internal else self.topology.public_ip(LB_PUBLIC_FIRST + index)
        nsx.create(ns)
        if public:
            nsx.veth(INET_NS, "lb%d" % index, ns, "pub0")
            nsx.enslave(INET_NS, "lb%d" % index, "br-inet")
            nsx.add_addr(ns, "pub0", public, self.topology.public.prefixlen)
        rns = router_ns(cloud)
        nsx.veth(rns, "lb%d" % index, ns, "priv0")
        nsx.enslave(rns, "lb%d" % index, "br-" + cloud[:6])
        nsx.add_addr(ns, "priv0", private, net.prefixlen)
        if internal:
            nsx.route(ns, "add", dst="0.0.0.0", dst_len=0, gateway=self.topology.gateway(cloud))
        lb = {"ip": private if internal else public, "netns": ns, "cloud": cloud,
              "private": private, "internal": internal,
              "proxy": HAProxy(ns, os.path.join(self.dir, ns))}
        if cloud == "aws" and self.aws is not None:
            # the CCM role: the cloud's own record of the LB, with the cluster's tags
            lb["arn"] = self.aws.create_lb("a%s-%d" % (self.cluster_name, index),
                                           self.cluster_name, "%s/%s" % key)
        if cloud == "gcp" and self.gcp is not None:
            # the GCP CCM names its forwarding rule after the Service's UID
            lb["rule"] = ("a" + svc["metadata"]["uid"].replace("-", ""))[:32]
            self.gcp.create_forwarding_rule(lb["rule"], public, "%s/%s" % key,
                                            [p["port"] for p in svc["spec"].get("ports") or []])
        self.lbs[key + (cloud,)] = lb
        LOG.info("load balancer %s for %s/%s in %s at %s", ns, key[0], key[1], cloud, public)
        return lb

    def _delete(self, key):
        lb = self.lbs.pop(key)
        lb["proxy"].stop()
        if lb.get("arn") and self.aws is not None:
            self.aws.delete_lb(lb["arn"])
        if lb.get("rule") and self.gcp is not None:
            self.gcp.delete_forwarding_rule(lb["rule"])
        nsx.remove(lb["netns"])

    @staticmethod
    def _config(svc, lb, targets):
        out = [GLOBAL + LB_DEFAULTS]
        for port in svc["spec"].get("ports") or []:
            name = port.get("name") or str(port["port"])
            servers = ["  server %s %s:%d check inter 1s fall 2 rise 1"
                       % (node, ip, port["nodePort"])
                       for node, ip in targets if port.get("nodePort")]
            out.append("frontend fe_%s\n  mode tcp\n  bind %s:%d\n  default_backend be_%s\n"
                       "backend be_%s\n  mode tcp\n  balance roundrobin\n%s\n"
                       % (name, lb["ip"], port["port"], name, name,
                          "\n".join(servers) or "  # no targets"))
        return "".join(out)

    def _status(self, svc, ip):
        self.set_status(self.rt("", "v1", "services"), svc,
                        {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}})
