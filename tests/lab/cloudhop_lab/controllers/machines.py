"""machine-controller (cluster.k8s.io/v1alpha1) of a KKP user cluster.

MachineDeployment -> MachineSet -> Machine -> cloud instance + Node, with the behaviours of
kubermatic/machine-controller the migration depends on:
- a paused MachineDeployment is left alone (its MachineSets still keep their Machines);
- rollouts follow RollingUpdate maxSurge/maxUnavailable;
- a Machine can only be provisioned in the *cluster's* current cloud, with its credentials;
  otherwise it reports errorReason/errorMessage in its status;
- deleting a Machine drains its Node through evictions (PDBs respected), then deletes the
  instance and the Node.
"""

import ipaddress
import threading

from .. import errors
from ..podutil import dc, now_iso
from .base import Controller, owned_by, owner_ref, rollout_plan, template_hash
from ..podutil import name_suffix, node_ready
from .kkp import effective_cloud

GROUP, VERSION = "cluster.k8s.io", "v1alpha1"
NS = "kube-system"
FIN_INSTANCE = "machine-delete-finalizer"
FIN_NODE = "machine-node-delete-finalizer"
OWNER_LABEL = "machine-controller/owned-by"

# machine-controller provider names -> KKP cloud spec keys
PROVIDER_TO_CLOUD = {"vsphere": "vsphere", "aws": "aws", "gce": "gcp", "gcp": "gcp"}
CLOUD_INTERFACES = {"vsphere": "ens192", "aws": "ens5", "gcp": "ens4"}


class CloudRegistry:
    """What the clouds know across clusters: every instance by name (a VM's name is unique in
    the lab's clouds) and each network's DHCP cursor. Shared by the machine-controllers of all
    user clusters, so two clusters in one cloud network never get the same address."""

    def __init__(self):
        self.instances = {}  # name -> dict(cloud, ip, podCIDR)
        self.cursor = {}  # cloud -> index of the next address to try
        self.lock = threading.RLock()


class FakeMachineBackend:
    """Instances without processes: an address in the cloud's node network and a podCIDR.

    The data plane replaces it with one that creates a network-namespace machine.
    """

    def __init__(self, networks, cluster_cidr, node_mask=24, registry=None):
        self.networks = {k: ipaddress.ip_network(v) for k, v in networks.items()}
        self.cluster_cidr = ipaddress.ip_network(cluster_cidr)
        self.node_mask = node_mask
        self.registry = registry or CloudRegistry()
        self.instances = {}  # this cluster's: name -> dict(cloud, ip, podCIDR)

    def _free_ip(self, cloud):
        """Next free address after the last one handed out: like a cloud's DHCP, a freed
        address is not given to the next machine at once (neighbours still cache its MAC)."""
        reg = self.registry
        used = {i["ip"] for i in reg.instances.values()}
        hosts = list(self.networks[cloud].hosts())[9:]
        start = reg.cursor.get(cloud, 0)
        for k in range(len(hosts)):
            host = str(hosts[(start + k) % len(hosts)])
            if host not in used:
                reg.cursor[cloud] = (start + k + 1) % len(hosts)
                return host
        raise RuntimeError("cloud %s has no free addresses" % cloud)

    def _free_pod_cidr(self, taken):
        for sub in self.cluster_cidr.subnets(new_prefix=self.node_mask):
            if str(sub) not in taken:
                return str(sub)
        raise RuntimeError("clusterCIDR %s is exhausted" % self.cluster_cidr)

    def create(self, name, cloud, taken_cidrs, ssh_keys=(), hostname=None, os_name=None):
        del ssh_keys, hostname, os_name  # no machine to log in to
        with self.registry.lock:
            inst = self.instances.get(name)
            if inst is None:
                if name in self.registry.instances:
                    raise RuntimeError("an instance named %s exists in another cluster" % name)
                inst = {"cloud": cloud, "ip": self._free_ip(cloud),
                        "podCIDR": self._free_pod_cidr(taken_cidrs | {
                            i["podCIDR"] for i in self.instances.values()})}
                self.instances[name] = inst
                self.registry.instances[name] = inst
            return dict(inst)

    def delete(self, name):
        with self.registry.lock:
            if self.instances.pop(name, None) is not None:
                self.registry.instances.pop(name, None)

    def exists(self, name):
        return name in self.instances


def node_info(uid, kubelet, os_name):
    """A complete NodeSystemInfo: clients reject nodes that lack any of these fields."""
    ident = uid.replace("-", "")
    images = {"ubuntu": "Ubuntu 22.04.5 LTS", "flatcar": "Flatcar Container Linux 4081.2.0"}
    return {"machineID": ident, "systemUUID": uid, "bootID": ident[::-1],
            "kernelVersion": "5.15.0-126-generic", "osImage": images.get(os_name, os_name),
            "containerRuntimeVersion": "containerd://1.7.22",
            "kubeletVersion": "v" + kubelet.lstrip("v"),
            "kubeProxyVersion": "v" + kubelet.lstrip("v"),
            "operatingSystem": "linux", "architecture": "amd64"}


class MachineController(Controller):
    name = "machine-controller"
    resync = 0.5

    def __init__(self, api, seed_api, cluster_name, backend):
        super().__init__(api)
        self.seed = seed_api
        self.cluster_name = cluster_name
        self.backend = backend

    # -------------------------------------------------------------- cluster facts

    def cluster_cloud(self):
        """(provider, credentials_ok, message) machine-controller runs with: the cloud the seed
        last reconciled, not spec.cloud as edited (a paused cluster's switch is not live)."""
        provider, problem = effective_cloud(self.seed, self.cluster_name)
        return provider, provider is not None and problem is None, problem

    # -------------------------------------------------------------- reconcile

    def reconcile(self):
        if self.rt(GROUP, VERSION, "machinedeployments") is None:
            return
        self._deployments()
        self._machinesets()
        self._machines()

    def _deployments(self):
        md_rt = self.rt(GROUP, VERSION, "machinedeployments")
        ms_rt = self.rt(GROUP, VERSION, "machinesets")
        sets = self.ls(GROUP, VERSION, "machinesets", NS)
        for md in self.ls(GROUP, VERSION, "machinedeployments", NS):
            with self.isolated(md):
                owned = [ms for ms in sets if owned_by(ms, md)]
                spec = md.get("spec") or {}
                if md["metadata"].get("deletionTimestamp") or spec.get("paused"):
                    self._md_status(md_rt, md, owned, None)
                    continue
                tmpl = dc(spec.get("template") or {})
                h = template_hash(tmpl)
                new = next((ms for ms in owned
                            if ms["metadata"].get("labels", {}).get("machine-template-hash") == h),
                           None)
                if new is None:
                    tmpl.setdefault("metadata", {}).setdefault("labels", {})[
                        "machine-template-hash"] = h
                    sel = dc(spec.get("selector") or {})
                    sel.setdefault("matchLabels", {})["machine-template-hash"] = h
                    ms = {"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "MachineSet",
                          "metadata": {"name": "%s-%s" % (md["metadata"]["name"], h[:9]),
                                       "namespace": NS,
                                       "labels": dict(tmpl["metadata"]["labels"]),
                                       "ownerReferences": [owner_ref(md)]},
                          "spec": {"replicas": 0, "selector": sel, "template": tmpl,
                                   "deletePolicy": "Oldest"}}
                    new = self.api.create(ms_rt, NS, ms)
                    owned.append(new)
                desired = spec.get("replicas", 1)
                olds = [(ms, ms["spec"].get("replicas", 0),
                         (ms.get("status") or {}).get("readyReplicas", 0))
                        for ms in owned if ms["metadata"]["uid"] != new["metadata"]["uid"]]
                want_new, plan = rollout_plan(desired, spec.get("strategy"),
                                              new["spec"].get("replicas", 0),
                                              (new.get("status") or {}).get("readyReplicas", 0), olds)
                if want_new != new["spec"].get("replicas"):
                    self.api.patch(ms_rt, NS, new["metadata"]["name"], "merge",
                                   {"spec": {"replicas": want_new}})
                for ms, replicas, _ready in olds:
                    target = plan.get(ms["metadata"]["name"], replicas)
                    if target != replicas:
                        self.api.patch(ms_rt, NS, ms["metadata"]["name"], "merge",
                                       {"spec": {"replicas": target}})
                    elif replicas == 0 and not (ms.get("status") or {}).get("replicas"):
                        self.api.delete(ms_rt, NS, ms["metadata"]["name"])
                self._md_status(md_rt, md, owned, new)

    def _md_status(self, md_rt, md, owned, new):
        def st(obj, field):
            return (obj.get("status") or {}).get(field, 0)
        desired = (md.get("spec") or {}).get("replicas", 1)
        status = {"observedGeneration": md["metadata"].get("generation", 1),
                  "replicas": sum(st(ms, "replicas") for ms in owned),
                  "updatedReplicas": st(new, "replicas") if new else
                  (md.get("status") or {}).get("updatedReplicas", 0),
                  "readyReplicas": sum(st(ms, "readyReplicas") for ms in owned),
                  "availableReplicas": sum(st(ms, "availableReplicas") for ms in owned)}
        status["unavailableReplicas"] = max(0, desired - status["availableReplicas"])
        status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        self.set_status(md_rt, md, status)

    def _machinesets(self):
        ms_rt = self.rt(GROUP, VERSION, "machinesets")
        m_rt = self.rt(GROUP, VERSION, "machines")
        machines = self.ls(GROUP, VERSION, "machines", NS)
        nodes = {n["metadata"]["name"]: n for n in self.ls("", "v1", "nodes")}
        for ms in self.ls(GROUP, VERSION, "machinesets", NS):
            with self.isolated(ms):
                if ms["metadata"].get("deletionTimestamp"):
                    continue
                mine = [m for m in machines if owned_by(m, ms)]
                active = [m for m in mine if not m["metadata"].get("deletionTimestamp")]
                want = ms["spec"].get("replicas", 1)
                if len(active) < want:
                    for _i in range(want - len(active)):
                        tmpl = dc(ms["spec"].get("template") or {})
                        meta = tmpl.get("metadata") or {}
                        name = "%s-%s" % (ms["metadata"]["name"], name_suffix())
                        self.api.create(m_rt, NS, {
                            "apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "Machine",
                            "metadata": {"name": name, "namespace": NS,
                                         "labels": dict(meta.get("labels") or {}),
                                         "annotations": dict(meta.get("annotations") or {}),
                                         "ownerReferences": [owner_ref(ms)],
                                         "finalizers": [FIN_INSTANCE, FIN_NODE]},
                            "spec": tmpl.get("spec") or {}})
                elif len(active) > want:
                    # deletePolicy Oldest: unready first, then oldest
                    ordered = sorted(active, key=lambda m: (self._machine_ready(m, nodes),
                                                            m["metadata"]["creationTimestamp"]))
                    for m in ordered[:len(active) - want]:
                        self.api.delete(m_rt, NS, m["metadata"]["name"])
                ready = sum(1 for m in active if self._machine_ready(m, nodes))
                status = {"replicas": len(active), "fullyLabeledReplicas": len(active),
                          "readyReplicas": ready, "availableReplicas": ready,
                          "observedGeneration": ms["metadata"].get("generation", 1)}
                status = {k: v for k, v in status.items() if v or k == "replicas"}
                self.set_status(ms_rt, ms, status)

    @staticmethod
    def _machine_ready(machine, nodes):
        ref = ((machine.get("status") or {}).get("nodeRef") or {}).get("name")
        return bool(ref and ref in nodes and node_ready(nodes[ref]))

    def _machines(self):
        m_rt = self.rt(GROUP, VERSION, "machines")
        node_rt = self.rt("", "v1", "nodes")
        nodes = {n["metadata"]["name"]: n for n in self.ls("", "v1", "nodes")}
        provider, creds_ok, problem = None, False, None
        checked = False
        for m in self.ls(GROUP, VERSION, "machines", NS):
            with self.isolated(m):
                name = m["metadata"]["name"]
                if m["metadata"].get("deletionTimestamp"):
                    self._delete_machine(m_rt, node_rt, m, nodes)
                    continue
                if (m.get("status") or {}).get("nodeRef"):
                    continue
                if not checked:
                    provider, creds_ok, problem = self.cluster_cloud()
                    checked = True
                if provider is None:
                    continue  # no machine-controller runs before the seed's first reconcile
                value = ((m.get("spec") or {}).get("providerSpec") or {}).get("value") or {}
                want = PROVIDER_TO_CLOUD.get(value.get("cloudProvider"))
                if want is None:
                    self._error(m_rt, m, "InvalidConfiguration",
                                'failed to get cloud provider "%s": unknown cloud provider'
                                % value.get("cloudProvider"))
                    continue
                if want != provider:
                    self._error(m_rt, m, "InvalidConfiguration",
                                'failed to create machine at cloudprovider: the machine\'s cloud '
                                'provider "%s" does not match the cluster\'s cloud "%s"; '
                                'machine-controller provisions with the cluster\'s cloud '
                                'configuration' % (value.get("cloudProvider"), provider))
                    continue
                if not creds_ok:
                    self._error(m_rt, m, "InvalidConfiguration",
                                "failed to get cloud provider credentials: %s" % problem)
                    continue
                taken = {(n.get("spec") or {}).get("podCIDR") for n in nodes.values()}
                inst = self.backend.create(name, want, taken,
                                           ssh_keys=value.get("sshPublicKeys") or [], hostname=name,
                                           os_name=value.get("operatingSystem"))
                node = self._node(name, m, inst, want, value)
                try:
                    created = self.api.create(node_rt, None, node)
                except errors.ApiError as exc:
                    if exc.code != 409:
                        raise
                    created = self.api.get(node_rt, None, name)
                nodes[name] = created
                cur = dc(m)
                cur["status"] = {"nodeRef": {"kind": "Node", "name": name,
                                             "uid": created["metadata"]["uid"],
                                             "apiVersion": "v1"},
                                 "addresses": created["status"]["addresses"],
                                 "versions": {"kubelet": (m["spec"].get("versions") or {})
                                              .get("kubelet", "")},
                                 "lastUpdated": now_iso()}
                self.api.update(m_rt, NS, name, cur, sub="status")

    def _node(self, name, machine, inst, cloud, value):
        labels = dict(((machine["spec"].get("metadata") or {}).get("labels")) or {})
        labels.update({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", OWNER_LABEL: machine["metadata"]["uid"],
                       "x-kubernetes.io/distribution": value.get("operatingSystem", "ubuntu")})
        provider_ids = {"vsphere": "vsphere://%s" % machine["metadata"]["uid"],
                        "aws": "aws:///%s/i-%s" % (
                            (value.get("cloudProviderSpec") or {}).get("availabilityZone",
                                                                       "eu-central-1a"),
                            machine["metadata"]["uid"].replace("-", "")[:17]),
                        "gcp": "gce://lab/%s/%s" % (
                            (value.get("cloudProviderSpec") or {}).get("zone", "europe-west3-a"),
                            name)}
        kubelet = (machine["spec"].get("versions") or {}).get("kubelet", "1.31.4")
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": labels,
                             "annotations": {"cluster.k8s.io/machine": "%s/%s" % (NS, name),
                                             "lab.cloudhop.io/cloud": cloud,
                                             "lab.cloudhop.io/interface":
                                             CLOUD_INTERFACES.get(cloud, "eth0")}},
                "spec": {"podCIDR": inst["podCIDR"], "podCIDRs": [inst["podCIDR"]],
                         "providerID": provider_ids[cloud]},
                "status": {"addresses": [{"type": "InternalIP", "address": inst["ip"]},
                                         {"type": "Hostname", "address": name}],
                           "conditions": [{"type": "Ready", "status": "True",
                                           "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status",
                                           "lastHeartbeatTime": now_iso(),
                                           "lastTransitionTime": now_iso()}],
                           "nodeInfo": node_info(machine["metadata"]["uid"], kubelet,
                                                 value.get("operatingSystem", "ubuntu"))}}

    def _error(self, m_rt, m, reason, message):
        st = m.get("status") or {}
        if st.get("errorReason") == reason and st.get("errorMessage") == message:
            return
        cur = dc(m)
        cur["status"] = dict(st, errorReason=reason, errorMessage=message,
                             lastUpdated=now_iso())
        self.api.update(m_rt, NS, m["metadata"]["name"], cur, sub="status")

    def _delete_machine(self, m_rt, node_rt, m, nodes):
        ref = ((m.get("status") or {}).get("nodeRef") or {}).get("name")
        fins = list(m["metadata"].get("finalizers") or [])
        if ref and ref in nodes and FIN_NODE in fins:
            if not self._drain(node_rt, nodes[ref]):
                return
            self.api.delete(node_rt, None, ref)
            nodes.pop(ref, None)
        if FIN_INSTANCE in fins:
            self.backend.delete(m["metadata"]["name"])
        if ref and ref in nodes:
            return
        rest = [f for f in fins if f not in (FIN_INSTANCE, FIN_NODE)]
        if rest != fins:
            self.api.patch(m_rt, NS, m["metadata"]["name"], "merge",
                           {"metadata": {"finalizers": rest or None}})

    def _drain(self, node_rt, node):
        """Cordon, then evict every non-DaemonSet pod; True when the node is empty."""
        name = node["metadata"]["name"]
        if not (node.get("spec") or {}).get("unschedulable"):
            self.api.patch(node_rt, None, name, "merge", {"spec": {"unschedulable": True}})
        pod_rt = self.rt("", "v1", "pods")
        remaining = 0
        for p in self.api.list(pod_rt, field_selector="spec.nodeName=" + name)[0]:
            owners = p["metadata"].get("ownerReferences") or []
            if any(o.get("kind") == "DaemonSet" for o in owners):
                continue
            remaining += 1
            if p["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.api.evict(p["metadata"]["namespace"], p["metadata"]["name"],
                               {"metadata": {"name": p["metadata"]["name"]}})
            except errors.ApiError as exc:
                if exc.code not in (404, 429):
                    raise
        return remaining == 0
