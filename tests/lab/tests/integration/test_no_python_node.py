"""A Flatcar node has no Python: Ansible modules fail there, route_verify (raw) works.

A MachineDeployment with ``operatingSystem: flatcar`` boots nodes whose sshd sees a /usr/bin
without python* (an overlay whiteout), as on Flatcar Container Linux.
"""

import copy
import json
import os
import subprocess

import pytest

from .conftest import wait_for
from .test_dataplane import ssh

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
LAB = os.environ.get("CLH_LAB_DIR", "")
MD = ("cluster.k8s.io", "v1alpha1", "kube-system", "machinedeployments")
NAME = "flatcar-workers"


def _ansible(*args):
    return subprocess.run([os.path.join(REPO, ".venv", "bin", "ansible"), "-i",
                           os.path.join(LAB, "nodes.cloudhop.yml"), "md_flatcar_workers", *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                                   ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"))


@pytest.mark.timeout(300)
def test_route_verify_works_on_a_node_without_python(core, custom):
    src = custom.get_namespaced_custom_object(*MD, "to-migrate-vsphere-node")
    md = {"apiVersion": "cluster.k8s.io/v1alpha1", "kind": "MachineDeployment",
          "metadata": {"name": NAME, "namespace": "kube-system"},
          "spec": copy.deepcopy(src["spec"])}
    md["spec"].update(replicas=1, paused=False, selector={"matchLabels": {"name": NAME}})
    md["spec"]["template"]["metadata"] = {"labels": {"name": NAME}}
    md["spec"]["template"]["spec"]["providerSpec"]["value"]["operatingSystem"] = "flatcar"
    custom.create_namespaced_custom_object(*MD[:3], MD[3], md)
    try:
        def ready_node():
            for n in core.list_node().items:
                # Ready, and flannel runs there (it publishes its underlay address)
                if n.metadata.name.startswith(NAME) and any(
                        c.type == "Ready" and c.status == "True" for c in n.status.conditions) \
                        and "flannel.alpha.coreos.com/public-ip" in (n.metadata.annotations or {}):
                    return n
            return None
        node = wait_for(ready_node, timeout=120, what="flatcar node Ready with flannel")
        ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        out = ssh(ip, "command -v python3 python3.11 python; echo rc=$?; ls /usr/bin/python3; "
                      "command -v ip")
        assert "rc=1" in out.stdout and "No such file" in out.stderr
        assert out.stdout.strip().endswith("/ip")
        # a module needs Python on the node: it fails there
        ping = _ansible("-m", "ansible.builtin.ping")
        assert ping.returncode != 0
        assert "python" in ping.stdout.lower()
        # route_verify is one raw command judged on the controller: it works
        rv = _ansible("-m", "cloudhop.k8s_migration.route_verify", "-a",
                      "flannel_underlay=default")
        assert rv.returncode == 0, rv.stdout[-3000:] + rv.stderr[-2000:]
        res = json.loads(rv.stdout)["plays"][0]["tasks"][0]["hosts"][node.metadata.name]
        assert res["ok"] and res["network"]["vxlan"]["flannel.1"]["local"] == ip
    finally:
        custom.delete_namespaced_custom_object(*MD[:3], MD[3], NAME)
        wait_for(lambda: not any(n.metadata.name.startswith(NAME)
                                 for n in core.list_node().items),
                 timeout=120, what="flatcar node gone")
