"""Writes .lab/inventory.yml: the lab's nodes, grouped per cloud and per MachineDeployment.

SSH host keys are verified against .lab/ssh/known_hosts (written as nodes boot).
"""

import os
import re

import yaml

from ..controllers.base import Controller


def group_name(text):
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


class InventoryWriter(Controller):
    name = "inventory-writer"
    resync = 1.0

    def __init__(self, api, lab_dir):
        super().__init__(api)
        self.dir = lab_dir
        self.path = os.path.join(lab_dir, "inventory.yml")
        self.last = None

    def reconcile(self):
        machines = {m["metadata"]["uid"]: m
                    for m in self.ls("cluster.k8s.io", "v1alpha1", "machines")}
        sets = {s["metadata"]["uid"]: s
                for s in self.ls("cluster.k8s.io", "v1alpha1", "machinesets")}
        groups = {}
        hosts = {}
        for node in self.ls("", "v1", "nodes"):
            meta = node["metadata"]
            ip = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                       if a["type"] == "InternalIP"), None)
            cloud = (meta.get("annotations") or {}).get("lab.cloudhop.io/cloud")
            if not ip or not cloud:
                continue
            hosts[meta["name"]] = {"ansible_host": ip}
            groups.setdefault(cloud, set()).add(meta["name"])
            machine = machines.get((meta.get("labels") or {}).get("machine-controller/owned-by"))
            for ref in (machine or {}).get("metadata", {}).get("ownerReferences") or []:
                ms = sets.get(ref.get("uid"))
                for mref in (ms or {}).get("metadata", {}).get("ownerReferences") or []:
                    if mref.get("kind") == "MachineDeployment":
                        groups.setdefault("md_" + group_name(mref["name"]), set()).add(
                            meta["name"])
        ssh = os.path.join(self.dir, "ssh")
        inventory = {"all": {
            "vars": {"ansible_user": "root",
                     "ansible_ssh_private_key_file": os.path.join(ssh, "id_ed25519"),
                     "ansible_ssh_common_args": "-o UserKnownHostsFile=%s "
                                                "-o StrictHostKeyChecking=yes"
                                                % os.path.join(ssh, "known_hosts"),
                     "ansible_python_interpreter": "/usr/bin/python3"},
            "children": {"workers": {"hosts": hosts,
                                     "children": {g: {"hosts": {h: {} for h in sorted(m)}}
                                                  for g, m in sorted(groups.items())}}}}}
        if inventory != self.last:
            tmp = self.path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                yaml.safe_dump(inventory, fh, sort_keys=False)
            os.replace(tmp, self.path)
            self.last = inventory
