"""Pure logic of the API modules: pause and cloud-switch patches, credential Secrets, the
reconcile judgement, MachineDeployment rendering, ledger transitions and probe statistics."""

import base64
import copy
import json

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import (
    clouds, kkp_cloud, kkp_cluster, kkp_credentials, ledger, machines, probe)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, merge_patch_apply)

CLUSTER = {
    "apiVersion": "kubermatic.k8c.io/v1", "kind": "Cluster",
    "metadata": {"name": "x8p9sk2tzv", "labels": {"project-id": "k7xz5qd2wm"},
                 "finalizers": ["kubermatic.k8c.io/cleanup-credentials-secrets",
                                "kubermatic.k8c.io/cleanup-vsphere-folder"]},
    "spec": {"pause": True, "version": "1.30.5", "cloud": {
        "dc": "vsphere-dc1", "vsphere": {
            "credentialsReference": {"name": "credential-vsphere-x8p9sk2tzv",
                                     "namespace": "kubermatic"},
            "username": "", "password": "", "folder": "/dc1/vm"}}},
}
REF = {"name": "credential-aws-x8p9sk2tzv", "namespace": "kubermatic"}
AWS = {"region": "eu-central-1", "vpc_id": "vpc-1"}


def test_pause_patch_is_none_when_already_there_and_clears_reason_on_unpause():
    assert kkp_cluster.pause_patch(CLUSTER, True) is None
    unpaused = merge_patch_apply(CLUSTER, {"spec": {"pause": False, "pauseReason": "x"}})
    assert kkp_cluster.pause_patch(unpaused, True, "r") == {"spec": {"pause": True, "pauseReason": "r"}}
    paused = merge_patch_apply(CLUSTER, {"spec": {"pauseReason": "old"}})
    assert kkp_cluster.pause_patch(paused, False) == {"spec": {"pause": False, "pauseReason": None}}


def test_switch_patch_moves_cloud_and_drops_only_the_old_provider_finalizers():
    patch = kkp_cloud.switch_patch(CLUSTER, "aws", "aws-eu", AWS, REF, "eu-central-1")
    after = merge_patch_apply(CLUSTER, patch)
    assert list(after["spec"]["cloud"]) == ["dc", "aws"]
    assert after["spec"]["cloud"]["aws"]["vpcID"] == "vpc-1"
    assert after["spec"]["cloud"]["aws"]["securityGroupID"] == ""
    assert after["spec"]["cloud"]["aws"]["credentialsReference"] == REF
    assert after["metadata"]["finalizers"] == ["kubermatic.k8c.io/cleanup-credentials-secrets"]
    assert after["metadata"]["annotations"]["kubermatic.io/aws-region"] == "eu-central-1"
    # idempotent: once there, nothing to do - even after KKP added its aws finalizers
    after["metadata"]["finalizers"].append("kubermatic.k8c.io/cleanup-aws-security-group")
    assert kkp_cloud.switch_patch(after, "aws", "aws-eu", AWS, REF, "eu-central-1") is None
    changed = kkp_cloud.switch_patch(after, "aws", "aws-eu", dict(AWS, vpc_id="vpc-2"), REF)
    assert changed["spec"]["cloud"]["aws"]["vpcID"] == "vpc-2"


def test_restore_patch_undoes_the_switch():
    after = merge_patch_apply(CLUSTER, kkp_cloud.switch_patch(CLUSTER, "aws", "aws-eu", AWS, REF,
                                                              "eu-central-1"))
    after["metadata"]["finalizers"].append("kubermatic.k8c.io/cleanup-aws-security-group")
    restored = merge_patch_apply(after, kkp_cloud.restore_patch(after, CLUSTER))
    assert restored["spec"]["cloud"] == CLUSTER["spec"]["cloud"]
    assert restored["metadata"]["finalizers"] == CLUSTER["metadata"]["finalizers"]
    assert "kubermatic.io/aws-region" not in restored["metadata"].get("annotations", {})
    assert kkp_cloud.restore_patch(restored, CLUSTER) is None
    with pytest.raises(MigrationError, match="not a Cluster x8p9sk2tzv"):
        kkp_cloud.restore_patch(after, {"metadata": {"name": "other"}, "spec": {"cloud": {}}})


def test_remove_credentials_nulls_the_credential_fields_only():
    patch = kkp_cloud.remove_credentials_patch(CLUSTER, "vsphere")
    assert patch == {"spec": {"cloud": {"vsphere": {
        "username": None, "password": None, "credentialsReference": None}}}}
    after = merge_patch_apply(CLUSTER, patch)
    assert after["spec"]["cloud"]["vsphere"] == {"folder": "/dc1/vm"}
    assert kkp_cloud.remove_credentials_patch(after, "vsphere") is None


def test_two_provider_blocks_are_refused():
    broken = merge_patch_apply(CLUSTER, {"spec": {"cloud": {"aws": {}}}})
    with pytest.raises(MigrationError, match="2 provider blocks"):
        kkp_cloud.switch_patch(broken, "aws", "aws-eu", AWS, REF)


def test_masked_cloud_hides_inline_credentials():
    cl = merge_patch_apply(CLUSTER, {"spec": {"cloud": {"vsphere": {"password": "hunter2"}}}})
    view = kkp_cloud.cloud_view(cl)
    assert view["cloud"]["vsphere"]["password"] == "<hidden>"
    assert "hunter2" not in json.dumps(view)


def test_reconcile_problems_map_and_list_conditions():
    ok = {"status": "True"}
    cl = copy.deepcopy(CLUSTER)
    cl["spec"]["pause"] = False
    cl["status"] = {"conditions": dict((c, ok) for c in kkp_cluster.RECONCILED_CONDITIONS),
                    "extendedHealth": {"apiserver": "HealthStatusUp"}}
    assert kkp_cluster.reconcile_problems(cl) == []
    cl["status"]["conditions"] = [dict(ok, type=c) for c in kkp_cluster.RECONCILED_CONDITIONS]
    assert kkp_cluster.reconcile_problems(cl) == []
    assert kkp_cluster.reconcile_problems(cl, "vsphere") == []
    assert any("no kubermatic.k8c.io/cleanup-aws-* finalizer" in p
               for p in kkp_cluster.reconcile_problems(cl, "aws"))
    cl["status"]["extendedHealth"]["openvpn"] = "HealthStatusDown"
    cl["status"]["errorReason"] = "InvalidConfiguration"
    problems = kkp_cluster.reconcile_problems(cl)
    assert "extendedHealth.openvpn is HealthStatusDown" in problems
    assert any(p.startswith("status.errorReason InvalidConfiguration") for p in problems)


def test_credential_secret_gcp_is_base64_of_base64():
    info, text = clouds.parse_service_account({"type": "service_account", "project_id": "p",
                                               "client_email": "a@p.iam", "private_key": "k"})
    data = kkp_credentials.credential_data("gcp", {"_sa_text": text})
    secret = kkp_credentials.credential_secret("credential-gcp-x", "proj", data)
    once = base64.b64decode(secret["data"]["serviceAccount"])
    assert json.loads(base64.b64decode(once)) == info
    assert secret["metadata"]["labels"] == {"name": "credential-gcp-x", "project-id": "proj"}
    assert kkp_credentials.masked_secret(secret)["data"] == {"serviceAccount": "<hidden>"}


def test_secret_patch_only_on_difference():
    want = kkp_credentials.credential_secret("n", "p", {"accessKeyId": "A" * 20, "secretAccessKey": "s" * 40})
    live = dict(copy.deepcopy(want), metadata=dict(want["metadata"], namespace="kubermatic"))
    assert kkp_credentials.secret_patch(live, want) is None
    live["data"]["extra"] = "eA=="
    assert kkp_credentials.secret_patch(live, want)["data"]["extra"] is None


@pytest.mark.parametrize("key,secret,msg", [
    ("", "s" * 40, "aws.access_key_id is empty"),
    ("AKIA SPACE IN KEY", "s" * 40, "not an AWS access key ID"),
    ("A" * 20, "", "aws.secret_access_key is empty"),
    ("A" * 20, "with space inside the secret", "does not look like an AWS secret key"),
])
def test_aws_key_checks(key, secret, msg):
    with pytest.raises(MigrationError, match=msg):
        kkp_credentials.check_aws_keys(key, secret)


@pytest.mark.parametrize("region,ok", [("eu-central-1", True), ("us-gov-west-1", True),
                                       ("Frankfurt", False), ("eu-central", False)])
def test_aws_region_check(region, ok):
    if ok:
        kkp_cloud.check_cloud_settings("aws", "dc", {"region": region})
    else:
        with pytest.raises(MigrationError, match="not an AWS region"):
            kkp_cloud.check_cloud_settings("aws", "dc", {"region": region})


SOURCE = {
    "metadata": {"name": "old", "namespace": "kube-system", "labels": {"team": "a"}},
    "spec": {"paused": True, "replicas": 3, "selector": {"matchLabels": {"name": "old"}},
             "template": {"metadata": {"labels": {"name": "old", "tier": "w"}}, "spec": {
                 "metadata": {"labels": {"system/cluster": "x", "system/project": "p"}},
                 "versions": {"kubelet": "1.30.5"},
                 "providerSpec": {"value": {
                     "cloudProvider": "vsphere", "cloudProviderSpec": {"cpus": 2},
                     "operatingSystem": "flatcar", "operatingSystemSpec": {"a": 1},
                     "sshPublicKeys": ["ssh-ed25519 AAA"]}}}}},
}


def test_render_keeps_os_kubelet_keys_labels_and_tags_the_cluster():
    md = machines.render(SOURCE, "new", "aws", {"region": "r", "availabilityZone": "z",
                                                "instanceType": "t"}, "cid", 2)
    value = md["spec"]["template"]["spec"]["providerSpec"]["value"]
    assert value["operatingSystem"] == "flatcar" and value["sshPublicKeys"] == ["ssh-ed25519 AAA"]
    assert value["cloudProviderSpec"]["tags"] == {"kubernetes.io/cluster/cid": ""}
    assert md["spec"]["template"]["spec"]["versions"]["kubelet"] == "1.30.5"
    assert md["spec"]["selector"] == {"matchLabels": {"name": "new"}}
    assert md["spec"]["template"]["metadata"]["labels"] == {"name": "new", "tier": "w"}
    assert "paused" not in md["spec"] and md["spec"]["replicas"] == 2
    assert md["metadata"]["labels"] == {"team": "a"}
    gce = machines.render(SOURCE, "g", "gce", {"zone": "z", "machineType": "m",
                                               "tags": ["web"]}, "cid", 1)
    assert gce["spec"]["template"]["spec"]["providerSpec"]["value"]["cloudProviderSpec"][
        "tags"] == ["web", "kubernetes-cluster-cid"]
    assert SOURCE["spec"]["paused"] is True  # the source is not modified


def test_update_patch_none_when_equal_and_unpauses():
    md = machines.render(SOURCE, "new", "aws", {"region": "r", "availabilityZone": "z",
                                                "instanceType": "t"}, "cid", 2)
    live = copy.deepcopy(md)
    assert machines.update_patch(live, md) is None
    live["spec"]["paused"] = True
    assert machines.update_patch(live, md)["spec"]["paused"] is None


def test_rollout_counts_ready_nodes_and_reports_machine_errors():
    md = {"metadata": {"uid": "md1"}}
    ms = [{"metadata": {"name": "ms", "uid": "ms1", "ownerReferences": [{"uid": "md1"}]}}]
    mach = [{"metadata": {"name": "m1", "ownerReferences": [{"uid": "ms1"}]},
             "status": {"nodeRef": {"name": "n1"}}},
            {"metadata": {"name": "m2", "ownerReferences": [{"uid": "ms1"}]},
             "status": {"errorReason": "InvalidConfiguration", "errorMessage": "mismatch"}},
            {"metadata": {"name": "other", "ownerReferences": [{"uid": "zzz"}]}}]
    ready = [{"type": "Ready", "status": "True"}]
    nodes = [{"metadata": {"name": "n1"}, "status": {"conditions": ready}}]
    state = machines.rollout(md, ms, mach, nodes)
    assert state["machines"] == ["m1", "m2"] and state["ready"] == ["n1"]
    assert state["errors"] == [{"machine": "m2", "reason": "InvalidConfiguration",
                                "message": "mismatch"}]


EMPTY = {"phases": {}, "meta": {}}


def test_ledger_transitions():
    led, changed = ledger.transition(EMPTY, "seed_vpn", "start", "t1", "0.1.0")
    assert changed and led["phases"]["seed_vpn"]["status"] == "started"
    again, changed = ledger.transition(led, "seed_vpn", "start", "t2", "0.1.0")
    assert not changed and again["phases"]["seed_vpn"]["started"] == "t1"
    done, changed = ledger.transition(led, "seed_vpn", "done", "t3", "0.1.0", {"ttl": 300})
    assert changed and done["phases"]["seed_vpn"]["finished"] == "t3"
    assert ledger.transition(done, "seed_vpn", "done", "t4", "0.1.0", {"ttl": 300})[1] is False
    with pytest.raises(MigrationError, match="already done"):
        ledger.transition(done, "seed_vpn", "start", "t5", "0.1.0")
    reopened, dummy = ledger.transition(done, "seed_vpn", "start", "t5", "0.1.0", reopen=True)
    assert reopened["phases"]["seed_vpn"]["attempts"] == 2
    with pytest.raises(MigrationError, match="never started"):
        ledger.transition(EMPTY, "x", "done", "t", "v")
    with pytest.raises(MigrationError, match="looks like a secret"):
        ledger.transition(EMPTY, "x", "record", "t", "v", {"vpn_private_key": "k"})
    assert ledger.decode(ledger.encode(done)) == done
    # check mode: the start of the same run was a dry run, done may follow it
    simulated, changed = ledger.transition(EMPTY, "x", "done", "t", "v", assume_started=True)
    assert changed and simulated["phases"]["x"]["status"] == "done"
    assert simulated["phases"]["x"]["started"] == "t"
    # preflight writes nothing until it has passed: done records the start it was given
    passed, changed = ledger.transition(EMPTY, "preflight", "done", "t9", "v", started="t1")
    assert changed and passed["phases"]["preflight"]["status"] == "done"
    assert passed["phases"]["preflight"]["started"] == "t1"
    assert passed["phases"]["preflight"]["finished"] == "t9"
    assert passed["phases"]["preflight"]["attempts"] == 1
    assert ledger.summary(done)["done"] == ["seed_vpn"]


def test_probe_statistics_and_plan_validation():
    samples = [{"ok": True, "ms": float(i)} for i in range(1, 100)] + \
        [{"ok": False, "ms": 5000.0, "error": "timeout"}]
    res = probe.evaluate(samples, 0.99)
    assert res["passed"] and res["failures"] == 1 and res["latency_ms"]["p50"] == 50.0
    assert res["latency_ms"]["p99"] == 99.0 and res["failed_samples"][0]["attempt"] == 100
    assert not probe.evaluate(samples, 1.0)["passed"]
    base = {"url": "https://app.example.test/x?y=1", "attempts": 1, "interval": 0,
            "timeout": 1, "min_success_ratio": 1}
    p = probe.plan(dict(base, resolve_to="198.18.0.101"))
    assert (p["connect"], p["port"], p["path"], p["host"], p["sni"]) == \
        ("198.18.0.101", 443, "/x?y=1", "app.example.test", "app.example.test")
    with pytest.raises(MigrationError, match="not an IP address"):
        probe.plan(dict(base, resolve_to="lb.example"))
