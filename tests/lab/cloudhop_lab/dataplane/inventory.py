"""The lab's inventory is the collection's own inventory plugin, cloudhop.k8s_migration.nodes,
reading the user cluster's Node objects: this writes its configuration, .lab/nodes.cloudhop.yml.

SSH host keys are verified against .lab/ssh/known_hosts (written as nodes boot).
"""

import os

import yaml

CONFIG = "nodes.cloudhop.yml"


def write_plugin_config(lab_dir, md_name):
    ssh = os.path.join(lab_dir, "ssh")
    config = {
        "plugin": "cloudhop.k8s_migration.nodes",
        "kubeconfig": os.path.join(lab_dir, "user.kubeconfig"),
        "ssh_user": "root",
        "ssh_private_key_file": os.path.join(ssh, "id_ed25519"),
        "ssh_common_args": "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes"
                           % os.path.join(ssh, "known_hosts"),
        "python_interpreter": "/usr/bin/python3",
        "old_machinedeployments": [md_name],
    }
    path = os.path.join(lab_dir, CONFIG)
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    return path
