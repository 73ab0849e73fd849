"""kubernetes.core's k8s, k8s_info, k8s_json_patch and k8s_drain work unmodified on the lab."""

import os
import subprocess
import uuid

from .conftest import AuditLog

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
PLAYBOOK = os.path.join(os.path.dirname(__file__), "playbooks", "kubernetes_core.yml")


def test_kubernetes_core_modules():
    audit = AuditLog("user")
    audit.mark()
    ns = "kcore-" + uuid.uuid4().hex[:6]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    proc = subprocess.run(
        [os.path.join(REPO, ".venv", "bin", "ansible-playbook"), PLAYBOOK,
         "-e", "kcore_namespace=" + ns], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "failed=0" in proc.stdout
    records = audit.since()
    # check mode went to the server as a dry run and never as a real write
    check = [r for r in records if r.get("name") == "kcore-checkmode"
             and r["method"] in ("POST", "PUT", "PATCH")]
    assert check and all(r["dryRun"] for r in check)
    # the drain used the eviction subresource and got 429 from the budget
    evictions = [r for r in records if r.get("subresource") == "eviction"]
    assert evictions and any(r["code"] == 429 for r in evictions)
    # the failed JSON patch test was rejected by the server with 422
    assert any(r["method"] == "PATCH" and r.get("resource") == "machinedeployments"
               and r["code"] == 422 for r in records)
