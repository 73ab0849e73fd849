"""The KKP seed controllers that matter for a worker migration.

For every Cluster that is not paused:
- check ``spec.cloud``: exactly one provider block, whose credentials (a ``credentialsReference``
  to a Secret with the provider's keys, or inline fields) exist; report it in status conditions;
- add the provider's clean-up finalizer, as KKP's cloud controller does;
- put the ``openvpn-server`` Deployment of ``cluster-<id>`` back to its canonical spec. This is
  what undoes a manual patch of the VPN server on every unpause.

- keep the ``machine-controller`` Deployment of ``cluster-<id>`` on the cluster's cloud: KKP puts
  the provider's credentials into its environment (``AWS_ACCESS_KEY_ID``, ``VSPHERE_USERNAME``,
  ``GOOGLE_SERVICE_ACCOUNT``...). That Deployment, not ``spec.cloud``, is what the user cluster's
  machine-controller and cloud controller act on (``effective_cloud``), so a cloud switch takes
  effect only when the seed reconciles it after the unpause, as in KKP.

A paused Cluster is not touched at all. ``kubermatic.k8c.io/v1`` keeps conditions as a map keyed
by type; the legacy ``kubermatic.k8s.io/v1`` keeps them as a list, as the two real APIs do.
"""

import base64
import ipaddress
import json

from ..podutil import dc, now_iso
from .base import Controller

KKP_VERSION = "v2.26.2"
PROVIDER_KEYS = {
    "vsphere": ("username", "password"),
    "aws": ("accessKeyId", "secretAccessKey"),
    "gcp": ("serviceAccount",),
}
PROVIDER_FINALIZERS = {
    "vsphere": ["kubermatic.k8c.io/cleanup-vsphere-folder"],
    "aws": ["kubermatic.k8c.io/cleanup-aws-security-group",
            "kubermatic.k8c.io/cleanup-aws-instance-profile"],
    "gcp": ["kubermatic.k8c.io/cleanup-gcp-firewall-self",
            "kubermatic.k8c.io/cleanup-gcp-firewall-nodeport"],
}
BASE_FINALIZERS = ["kubermatic.k8c.io/cleanup-credentials-secrets",
                   "kubermatic.k8c.io/cleanup-namespace", "kubermatic.k8c.io/delete-nodes"]


KKP_GROUPS = ("kubermatic.k8c.io", "kubermatic.k8s.io")


def cloud_providers(cluster):
    """Provider blocks set in spec.cloud (everything but ``dc``)."""
    cloud = ((cluster or {}).get("spec") or {}).get("cloud") or {}
    return [k for k, v in cloud.items() if k != "dc" and isinstance(v, dict)]


def credentials_problem(seed_api, provider, block):
    """None when the provider block has usable credentials, else a message."""
    keys = PROVIDER_KEYS.get(provider)
    if keys is None:
        return 'unsupported cloud provider "%s"' % provider
    ref = block.get("credentialsReference")
    if not ref:
        if all(block.get(k) for k in keys if k != "serviceAccount") and provider != "gcp":
            return None
        return "no credentials for provider %s: spec.cloud.%s has no credentialsReference" % (
            provider, provider)
    secret_rt = seed_api.rt("", "v1", "secrets")
    secret = seed_api.try_get(secret_rt, ref.get("namespace") or "kubermatic", ref.get("name"))
    if secret is None:
        return "credential Secret %s/%s does not exist" % (
            ref.get("namespace") or "kubermatic", ref.get("name"))
    data = secret.get("data") or {}
    missing = [k for k in keys if not data.get(k)]
    if missing:
        return "credential Secret %s/%s lacks key(s) %s" % (
            ref.get("namespace") or "kubermatic", ref.get("name"), ", ".join(missing))
    if provider == "gcp":
        try:
            sa = json.loads(base64.b64decode(base64.b64decode(data["serviceAccount"])))
            if sa.get("type") != "service_account":
                return "serviceAccount is not a service account key"
        except (ValueError, TypeError):
            return "serviceAccount of Secret %s is not base64 of a service-account JSON" % (
                ref.get("name"))
    return None


# machine-controller's environment per provider: (variable, credential key)
MC_ENV = {
    "vsphere": (("VSPHERE_USERNAME", "username"), ("VSPHERE_PASSWORD", "password")),
    "aws": (("AWS_ACCESS_KEY_ID", "accessKeyId"), ("AWS_SECRET_ACCESS_KEY", "secretAccessKey")),
    "gcp": (("GOOGLE_SERVICE_ACCOUNT", "serviceAccount"),),
}
MC_IMAGE = "quay.io/kubermatic/machine-controller:v1.61.0"


def credential_values(seed_api, provider, block):
    """{credential key: value} from the referenced Secret (or inline fields)."""
    ref = block.get("credentialsReference")
    if not ref:
        return {k: block.get(k) or "" for dummy, k in MC_ENV.get(provider, ())}
    secret = seed_api.try_get(seed_api.rt("", "v1", "secrets"),
                              ref.get("namespace") or "kubermatic", ref.get("name")) or {}
    data = secret.get("data") or {}
    return {k: base64.b64decode(data.get(k) or "").decode() for dummy, k in MC_ENV[provider]}


def machine_controller_deployment(cluster, provider, values):
    cid = cluster["metadata"]["name"]
    labels = {"app": "machine-controller"}
    env = [{"name": var, "value": values.get(key, "")} for var, key in MC_ENV[provider]]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "machine-controller", "namespace": "cluster-" + cid,
                     "labels": dict(labels)},
        "spec": {"replicas": 1, "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels, cluster=cid)},
                              "spec": {"containers": [{
                                  "name": "machine-controller", "image": MC_IMAGE,
                                  "command": ["/usr/local/bin/machine-controller"],
                                  "args": ["-kubeconfig", "/etc/kubernetes/kubeconfig/kubeconfig",
                                           "-cluster-dns", "10.240.16.10",
                                           "-node-csr-approver", "-worker-count", "5"],
                                  "env": env}]}}}}


def effective_cloud(seed_api, cluster_name):
    """(provider, problem) machine-controller and the CCM run with, as the seed last reconciled
    them; (None, reason) before the first reconcile."""
    dep = seed_api.try_get(seed_api.rt("apps", "v1", "deployments"), "cluster-" + cluster_name,
                           "machine-controller")
    if dep is None:
        return None, "machine-controller of cluster %s is not deployed yet" % cluster_name
    env = {e["name"]: e.get("value", "") for c in dep["spec"]["template"]["spec"]["containers"]
           for e in c.get("env") or []}
    for provider, pairs in MC_ENV.items():
        if pairs[0][0] in env:
            missing = [var for var, dummy in pairs if not env.get(var)]
            return provider, ("machine-controller has no %s" % ", ".join(missing)
                              if missing else None)
    return None, "machine-controller has no cloud credentials"


def _route(cidr):
    net = ipaddress.ip_network(cidr)
    return "%s %s" % (net.network_address, net.netmask)


def openvpn_args(cluster, vpn_cidr="10.20.0.0/24", node_net="10.254.0.0/16"):
    """Canonical args of the openvpn-server container of a cluster (KKP's reconciled state)."""
    net = (cluster.get("spec") or {}).get("clusterNetwork") or {}
    routes = list((net.get("pods") or {}).get("cidrBlocks") or []) + \
        list((net.get("services") or {}).get("cidrBlocks") or []) + [node_net]
    vpn = ipaddress.ip_network(vpn_cidr)
    args = ["--proto", "tcp", "--dev", "tun", "--mode", "server", "--lport", "1194",
            "--server", str(vpn.network_address), str(vpn.netmask),
            "--ca", "/etc/kubernetes/pki/ca/ca.crt",
            "--cert", "/etc/openvpn/pki/server/server.crt",
            "--key", "/etc/openvpn/pki/server/server.key",
            "--dh", "none", "--duplicate-cn", "--client-config-dir", "/etc/openvpn/clients",
            "--status", "/run/openvpn/openvpn-status", "--status-version", "3",
            "--cipher", "AES-256-GCM", "--auth", "SHA1",
            "--script-security", "2", "--ping", "5", "--verb", "3", "--log", "/dev/stdout"]
    for cidr in routes:
        args += ["--route", *_route(cidr).split(), "--push", "route " + _route(cidr)]
    return args


def openvpn_deployment(cluster, vpn_cidr="10.20.0.0/24"):
    cid = cluster["metadata"]["name"]
    labels = {"app": "openvpn-server"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "openvpn-server", "namespace": "cluster-" + cid,
                     "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": dict(labels, cluster=cid)},
                "spec": {
                    "containers": [{
                        "name": "openvpn-server",
                        "image": "quay.io/kubermatic/openvpn:v2.6.8",
                        "command": ["/usr/sbin/openvpn"],
                        "args": openvpn_args(cluster, vpn_cidr),
                        "ports": [{"containerPort": 1194, "name": "secure",
                                   "protocol": "TCP"}],
                        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
                        "volumeMounts": [
                            {"name": "openvpn-server-certificates",
                             "mountPath": "/etc/openvpn/pki/server", "readOnly": True},
                            {"name": "ca", "mountPath": "/etc/kubernetes/pki/ca",
                             "readOnly": True},
                            {"name": "openvpn-ccd", "mountPath": "/etc/openvpn/clients",
                             "readOnly": True}],
                    }],
                    "volumes": [
                        {"name": "openvpn-server-certificates",
                         "secret": {"secretName": "openvpn-server-certificates"}},
                        {"name": "ca", "secret": {"secretName": "ca",
                                                  "items": [{"key": "ca.crt",
                                                             "path": "ca.crt"}]}},
                        {"name": "openvpn-ccd",
                         "configMap": {"name": "openvpn-client-configs"}}],
                },
            },
        },
    }


class KKPSeedController(Controller):
    name = "kkp-seed-controller"
    resync = 1.0

    def __init__(self, api, vpn_cidr="10.20.0.0/24"):
        super().__init__(api)
        self.vpn_cidr = vpn_cidr

    def reconcile(self):
        for group in KKP_GROUPS:
            rt = self.rt(group, "v1", "clusters")
            if rt is None:
                continue
            for cluster in self.api.list(rt)[0]:
                with self.isolated(cluster):
                    if (cluster.get("spec") or {}).get("pause"):
                        continue
                    if cluster["metadata"].get("deletionTimestamp"):
                        self._delete(rt, cluster)
                        continue
                    self._reconcile(rt, cluster, legacy=group == "kubermatic.k8s.io")

    def _delete(self, rt, cluster):
        ns_rt = self.rt("", "v1", "namespaces")
        ns = "cluster-" + cluster["metadata"]["name"]
        if self.api.try_get(ns_rt, None, ns) is not None:
            if not self.api.get(ns_rt, None, ns)["metadata"].get("deletionTimestamp"):
                self.api.delete(ns_rt, None, ns)
            return
        fins = [f for f in cluster["metadata"].get("finalizers") or []
                if not f.startswith("kubermatic.k8c.io/")]
        self.api.patch(rt, None, cluster["metadata"]["name"], "merge",
                       {"metadata": {"finalizers": fins or None}})

    def _reconcile(self, rt, cluster, legacy):
        name = cluster["metadata"]["name"]
        cloud = (cluster.get("spec") or {}).get("cloud") or {}
        providers = cloud_providers(cluster)
        if len(providers) != 1:
            cloud_ok, cloud_msg = False, "spec.cloud must have exactly one provider block, " \
                "found %d (%s)" % (len(providers), ", ".join(providers) or "none")
        else:
            problem = credentials_problem(self.api, providers[0], cloud[providers[0]])
            cloud_ok, cloud_msg = problem is None, problem or ""
        # finalizers of the provider's clean-up, as KKP's cloud controller adds them
        fins = list(cluster["metadata"].get("finalizers") or [])
        want = list(BASE_FINALIZERS)
        if cloud_ok:
            want += PROVIDER_FINALIZERS.get(providers[0], [])
        added = [f for f in want if f not in fins]
        if added:
            cluster = self.api.patch(rt, None, name, "merge",
                                     {"metadata": {"finalizers": fins + added}})
        if cloud_ok:
            self._machine_controller(cluster, providers[0])
        vpn_ok = self._openvpn(cluster)
        conds = {
            "SeedResourcesUpToDate": (vpn_ok, "" if vpn_ok else "openvpn-server is not ready"),
            "ClusterControllerReconciledSuccessfully": (True, ""),
            "CloudControllerReconcilledSuccessfully": (cloud_ok, cloud_msg),
        }
        self._status(rt, cluster, conds, cloud_ok, vpn_ok, legacy)

    def _machine_controller(self, cluster, provider):
        ns = "cluster-" + cluster["metadata"]["name"]
        if self.api.try_get(self.rt("", "v1", "namespaces"), None, ns) is None:
            return
        dep_rt = self.rt("apps", "v1", "deployments")
        want = machine_controller_deployment(
            cluster, provider, credential_values(self.api, provider, cluster["spec"]["cloud"][
                provider]))
        live = self.api.try_get(dep_rt, ns, "machine-controller")
        if live is None:
            self.api.create(dep_rt, ns, want)
        elif live["spec"]["template"] != want["spec"]["template"]:
            new = dc(live)
            new["spec"]["template"] = want["spec"]["template"]
            self.api.update(dep_rt, ns, "machine-controller", new,
                            manager="kubermatic-seed-controller")

    def _openvpn(self, cluster):
        """Reset openvpn-server to its canonical spec; True when it is available."""
        ns = "cluster-" + cluster["metadata"]["name"]
        dep_rt = self.rt("apps", "v1", "deployments")
        if (cluster.get("spec") or {}).get("clusterNetwork", {}).get("konnectivityEnabled"):
            return True
        if self.api.try_get(self.rt("", "v1", "namespaces"), None, ns) is None:
            return False
        canonical = openvpn_deployment(cluster, self.vpn_cidr)
        live = self.api.try_get(dep_rt, ns, "openvpn-server")
        if live is None:
            self.api.create(dep_rt, ns, canonical)
            return False
        want = dc(live)
        want["spec"]["template"]["spec"]["containers"] = \
            canonical["spec"]["template"]["spec"]["containers"]
        want["spec"]["template"]["spec"]["volumes"] = canonical["spec"]["template"]["spec"][
            "volumes"]
        want["spec"]["replicas"] = 1
        if want["spec"] != live["spec"]:
            live = self.api.update(dep_rt, ns, "openvpn-server", want,
                                   manager="kubermatic-seed-controller")
        st = live.get("status") or {}
        return st.get("availableReplicas", 0) >= 1 and \
            st.get("observedGeneration") == live["metadata"].get("generation")

    def _status(self, rt, cluster, conds, cloud_ok, vpn_ok, legacy):
        old = dc(cluster.get("status") or {})
        now = now_iso()
        if legacy:
            prev = {c["type"]: c for c in old.get("conditions") or []}
        else:
            prev = dict(old.get("conditions") or {})
        new_conds = {}
        for ctype, (ok, msg) in conds.items():
            flag = "True" if ok else "False"
            p = prev.get(ctype) or {}
            c = {"kubermaticVersion": KKP_VERSION, "status": flag,
                 "lastHeartbeatTime": now if p.get("status") != flag or p.get("message", "") != msg
                 else p.get("lastHeartbeatTime", now),
                 "lastTransitionTime": now if p.get("status") != flag
                 else p.get("lastTransitionTime", now)}
            if msg:
                c["message"] = msg
                c["reason"] = "ReconcilingError"
            new_conds[ctype] = c
        status = dict(old)
        status["namespaceName"] = "cluster-" + cluster["metadata"]["name"]
        status["kubermaticVersion"] = KKP_VERSION
        status["phase"] = "Running"
        status["extendedHealth"] = {
            "apiserver": "HealthStatusUp", "controller": "HealthStatusUp",
            "scheduler": "HealthStatusUp", "etcd": "HealthStatusUp",
            "machineController": "HealthStatusUp",
            "openvpn": "HealthStatusUp" if vpn_ok else "HealthStatusDown",
            "cloudProviderInfrastructure": "HealthStatusUp" if cloud_ok else "HealthStatusDown",
            "userClusterControllerManager": "HealthStatusUp"}
        if legacy:
            status["conditions"] = [dict(v, type=k) for k, v in sorted(new_conds.items())]
        else:
            status["conditions"] = new_conds
        if cloud_ok:
            status.pop("errorReason", None)
            status.pop("errorMessage", None)
        else:
            status["errorReason"] = "InvalidConfiguration"
            status["errorMessage"] = conds["CloudControllerReconcilledSuccessfully"][1]
        if status != old:
            status["lastUpdated"] = now
            cur = dc(cluster)
            cur["status"] = status
            self.api.update(rt, None, cluster["metadata"]["name"], cur, sub="status")
