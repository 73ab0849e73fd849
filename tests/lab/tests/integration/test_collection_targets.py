"""The collection's integration targets (tests/integration/targets/*), run against the lab.

Each target is a role that runs its module in check mode, for real, in check mode again and for
real again, asserts ``changed``/not changed, proves from the lab's audit log that check mode and
bad input wrote nothing, and asserts the error messages. This file only runs them.
"""

import json
import os
import subprocess
import sys

import pytest

from cloudhop_lab.fixture import DEFAULTS

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
TARGETS_DIR = os.path.join(REPO, "tests", "integration", "targets")
TARGETS = sorted(t for t in os.listdir(TARGETS_DIR)
                 if not t.startswith("setup_")
                 and os.path.exists(os.path.join(TARGETS_DIR, t, "tasks", "main.yml")))
# the targets that handle credentials run once, at -vvv, in test_zy_no_secret_leaks.py, which
# asserts that they pass and that their output holds no secret
VERBOSE_TARGETS = ["cloud_credentials", "cluster_cloud", "gcp_dns_record"]


def target_vars(tmp_path):
    lab = os.environ["CLH_LAB_DIR"]
    return {"lab_python": sys.executable, "lab_dir": lab,
            "seed_kubeconfig": os.environ["CLH_SEED_KUBECONFIG"],
            "user_kubeconfig": os.environ["CLH_USER_KUBECONFIG"],
            "cluster_id": DEFAULTS["cluster_id"], "project_id": DEFAULTS["project_id"],
            "lab_inventory": os.path.join(lab, "nodes.cloudhop.yml"),
            "output_dir": str(tmp_path)}


def run_target(target, tmp_path, extra_args=()):
    hosts, nodes_inventory = "localhost", False
    aliases = os.path.join(TARGETS_DIR, target, "aliases")
    if os.path.exists(aliases):
        with open(aliases, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("hosts/"):
                    hosts = line.strip().split("/", 1)[1]
                # a target on localhost that delegates to the nodes needs their inventory too
                nodes_inventory = nodes_inventory or line.strip() == "inventory/nodes"
    varfile = tmp_path / "vars.json"
    varfile.write_text(json.dumps(dict(target_vars(tmp_path), cloudhop_target=target,
                                       cloudhop_target_hosts=hosts)))
    local = tmp_path / "local.ini"
    local.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                     % sys.executable)
    inventory = ["-i", str(local)]
    if hosts != "localhost" or nodes_inventory:
        inventory += ["-i", os.environ["CLH_LAB_DIR"] + "/nodes.cloudhop.yml"]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_ROLES_PATH=TARGETS_DIR, ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    return subprocess.run(
        [os.path.join(REPO, ".venv", "bin", "ansible-playbook"), *inventory,
         os.path.join(REPO, "tests", "integration", "target.yml"), "-e", "@%s" % varfile,
         *extra_args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
        check=False)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("target", [t for t in TARGETS if t not in VERBOSE_TARGETS])
def test_target(target, tmp_path):
    proc = run_target(target, tmp_path)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    assert "failed=0" in proc.stdout
