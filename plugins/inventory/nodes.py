# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: nodes
short_description: Worker nodes of a Kubernetes cluster, from its Node objects
version_added: 0.1.0
description:
  - Builds an inventory of a (user) cluster's worker nodes from its C(Node) objects, so that
    nobody writes node IPs by hand.
  - C(ansible_host) is the node's C(InternalIP) (or C(ExternalIP) with I(address_type)).
  - Groups - C(workers) (all nodes), one group per cloud provider from C(spec.providerID)
    (C(vsphere), C(aws), C(gce), ...), one per machine-controller MachineDeployment
    (C(md_<name>), C(-) turned into C(_)), and C(old_workers) / C(new_workers) for the
    MachineDeployments named in I(old_machinedeployments) / I(new_machinedeployments).
  - Hostvars - C(node_labels), C(node_addresses), C(node_pod_cidr), C(node_provider_id),
    C(node_cloud), C(node_machinedeployment), C(node_ready), C(node_unschedulable).
  - SSH user, key, extra SSH arguments and a jump host come from options.
  - The file must end in C(nodes.yml), C(nodes.yaml), C(.cloudhop.yml) or C(.cloudhop.yaml).
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    type: str
    required: true
    choices: [cloudhop.k8s_migration.nodes]
  kubeconfig:
    description: Path to the user cluster's kubeconfig.
    type: path
    env:
      - name: K8S_AUTH_KUBECONFIG
  context:
    description: The kubeconfig context.
    type: str
    env:
      - name: K8S_AUTH_CONTEXT
  host:
    description: API server URL (instead of a kubeconfig).
    type: str
  api_key:
    description: Bearer token for I(host).
    type: str
  ca_cert:
    description: CA certificate of I(host).
    type: path
  validate_certs:
    description: Verify the API server's certificate.
    type: bool
  address_type:
    description: The Node address that becomes C(ansible_host).
    type: str
    choices: [InternalIP, ExternalIP]
    default: InternalIP
  ssh_user:
    description: C(ansible_user) of every node (for example C(ubuntu), C(core) on Flatcar).
    type: str
  ssh_private_key_file:
    description: C(ansible_ssh_private_key_file) of every node.
    type: path
  ssh_common_args:
    description: C(ansible_ssh_common_args) of every node (for example a C(UserKnownHostsFile)).
    type: str
  jump_host:
    description: A bastion, C([user@]host[:port]), added as C(-o ProxyJump=...).
    type: str
  python_interpreter:
    description: C(ansible_python_interpreter) of every node; leave unset on nodes without Python.
    type: str
  old_machinedeployments:
    description: MachineDeployments whose nodes form the C(old_workers) group.
    type: list
    elements: str
    default: []
  new_machinedeployments:
    description: MachineDeployments whose nodes form the C(new_workers) group.
    type: list
    elements: str
    default: []
  include_control_plane:
    description: Also list nodes labelled C(node-role.kubernetes.io/control-plane).
    type: bool
    default: false
  group_prefix:
    description:
      - Prefix of every group this plugin makes (C(workers), C(old_workers), C(new_workers),
        the cloud groups and C(md_*)).
      - With several user clusters in one inventory, give each cluster's source its own prefix
        (for example C(x8p9sk2tzv_)) and set that cluster's C(cloudhop_nodes_group) to
        C(<prefix>workers).
    type: str
    default: ""
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
# inventory/nodes.cloudhop.yml
plugin: cloudhop.k8s_migration.nodes
kubeconfig: ~/.kube/user-cluster.kubeconfig
ssh_user: ubuntu
ssh_private_key_file: ~/.ssh/kkp-workers
jump_host: ubuntu@bastion.example.com
old_machinedeployments: [to-migrate-vsphere-node]
new_machinedeployments: [aws-workers]
keyed_groups:
  - key: node_labels['topology.kubernetes.io/zone'] | default('none')
    prefix: zone
"""

import re

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    HAS_K8S_CORE = True
except ImportError:
    HAS_K8S_CORE = False


def group_name(text):
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def node_machinedeployments(machines, machinesets):
    """{node name: MachineDeployment name} by following the machine-controller owner chain."""
    ms_owner = {}
    for ms in machinesets:
        for ref in ms["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "MachineDeployment":
                ms_owner[ms["metadata"]["name"]] = ref["name"]
    out = {}
    for m in machines:
        node = ((m.get("status") or {}).get("nodeRef") or {}).get("name")
        for ref in m["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "MachineSet" and ref["name"] in ms_owner and node:
                out[node] = ms_owner[ref["name"]]
    return out


def node_hostvars(node, address_type, md):
    meta, spec, status = node["metadata"], node.get("spec") or {}, node.get("status") or {}
    addresses = dict((a["type"], a["address"]) for a in status.get("addresses") or [])
    provider_id = spec.get("providerID") or ""
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    return {"ansible_host": addresses.get(address_type),
            "node_labels": dict(meta.get("labels") or {}),
            "node_addresses": addresses,
            "node_pod_cidr": spec.get("podCIDR"),
            "node_provider_id": provider_id,
            "node_cloud": provider_id.split("://", 1)[0] if "://" in provider_id else None,
            "node_machinedeployment": md,
            "node_ready": ready,
            "node_unschedulable": bool(spec.get("unschedulable"))}


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "cloudhop.k8s_migration.nodes"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(
            ("nodes.yml", "nodes.yaml", ".cloudhop.yml", ".cloudhop.yaml"))

    def _list(self, client, api_version, kind, namespace=None):
        from kubernetes.dynamic.exceptions import ResourceNotFoundError
        try:
            res = client.resource(kind, api_version)
        except ResourceNotFoundError:
            return []
        return res.get(namespace=namespace).to_dict().get("items") or []

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if not HAS_K8S_CORE:
            raise AnsibleError("cloudhop.k8s_migration.nodes needs the kubernetes.core "
                               "collection and the kubernetes Python library")
        auth = dict((k, self.get_option(k)) for k in
                    ("kubeconfig", "context", "host", "api_key", "ca_cert", "validate_certs")
                    if self.get_option(k) is not None)
        try:
            client = get_api_client(**auth)
            nodes = self._list(client, "v1", "Node")
            mds = node_machinedeployments(
                self._list(client, "cluster.k8s.io/v1alpha1", "Machine", "kube-system"),
                self._list(client, "cluster.k8s.io/v1alpha1", "MachineSet", "kube-system"))
        except Exception as exc:  # kubernetes raises many types; all mean "cannot list"
            raise AnsibleError("cloudhop.k8s_migration.nodes: cannot list the Nodes of %s: %s"
                               % (auth.get("kubeconfig") or auth.get("host") or
                                  "the default kubeconfig", exc))
        self._populate(nodes, mds)

    def _populate(self, nodes, mds):
        address_type = self.get_option("address_type")
        old, new = set(self.get_option("old_machinedeployments")), \
            set(self.get_option("new_machinedeployments"))
        pre = group_name(self.get_option("group_prefix") or "")
        self.inventory.add_group(pre + "workers")
        for group in ("old_workers", "new_workers"):
            self.inventory.add_group(pre + group)
        strict = self.get_option("strict")
        for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
            labels = node["metadata"].get("labels") or {}
            if not self.get_option("include_control_plane") and \
                    "node-role.kubernetes.io/control-plane" in labels:
                continue
            name = node["metadata"]["name"]
            md = mds.get(name)
            hostvars = node_hostvars(node, address_type, md)
            if not hostvars["ansible_host"]:
                self.display.warning("node %s has no %s address; skipped" % (name, address_type))
                continue
            self.inventory.add_host(name, group=pre + "workers")
            for key, value in self._connection_vars().items():
                self.inventory.set_variable(name, key, value)
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
            if hostvars["node_cloud"]:
                grp = self.inventory.add_group(pre + group_name(hostvars["node_cloud"]))
                self.inventory.add_child(grp, name)
            if md:
                grp = self.inventory.add_group(pre + "md_" + group_name(md))
                self.inventory.add_child(grp, name)
                if md in old:
                    self.inventory.add_child(pre + "old_workers", name)
                if md in new:
                    self.inventory.add_child(pre + "new_workers", name)
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name,
                                              strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name,
                                           strict=strict)

    def _connection_vars(self):
        out = {}
        if self.get_option("ssh_user"):
            out["ansible_user"] = self.get_option("ssh_user")
        if self.get_option("ssh_private_key_file"):
            out["ansible_ssh_private_key_file"] = self.get_option("ssh_private_key_file")
        args = self.get_option("ssh_common_args") or ""
        if self.get_option("jump_host"):
            args = ("%s -o ProxyJump=%s" % (args, self.get_option("jump_host"))).strip()
        if args:
            out["ansible_ssh_common_args"] = args
        if self.get_option("python_interpreter"):
            out["ansible_python_interpreter"] = self.get_option("python_interpreter")
        return out
