#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: migration_ledger
short_description: Record and read a migration's progress in the seed
version_added: 0.1.0
description:
  - Keeps a ConfigMap (default C(cloudhop-migration)) in the seed namespace C(cluster-<id>) that
    records, per phase, its status (C(pending), C(started), C(done), C(failed)), start and end
    time, the collection version, the number of attempts and key facts (old and new
    MachineDeployment names, backup path, LB address, DNS TTL before the change...).
  - Roles read it to skip phases already done (resume); C(rollback.yml) reads it to undo.
  - C(start) on a phase that is C(done) fails unless I(reopen=true); C(done) needs a start first
    (in check mode a start of the same run counts, as it was only a dry run).
  - Writes carry the ConfigMap's C(resourceVersion); a concurrent change (409) is re-read and
    retried.
  - Facts are not secret by design; a fact whose name looks like a credential is refused.
  - Check mode asks the API server for a dry run.
  - Without I(cluster), the ledger of something else than a KKP cluster (the
    cluster-to-cluster move's, in its new cluster) - I(namespace) is then required and
    I(subject) names what the ledger is of.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - cloudhop.k8s_migration.attributes.api
  - cloudhop.k8s_migration.kkp_cluster
options:
  action:
    description: C(read) only reads; C(start), C(done), C(fail) move I(phase); C(record) adds
      I(facts) to it; C(reset) forgets it.
    type: str
    choices: [read, start, done, fail, record, reset]
    default: read
  phase:
    description: The phase name (for example C(seed_vpn)); required unless I(action=read).
    type: str
  facts:
    description: Facts to merge into the phase's record.
    type: dict
  note:
    description: A note for C(done) or C(fail), for example why the phase failed.
    type: str
  reopen:
    description: Allow C(start) on a phase that is C(done).
    type: bool
    default: false
  started:
    description:
      - With I(action=done) on a phase never started (or failed), the time it started
        (C(YYYY-MM-DDTHH:MM:SSZ)), for a phase that writes nothing until it has passed.
    type: str
    version_added: 0.1.0
  name:
    description: Name of the ledger ConfigMap.
    type: str
    default: cloudhop-migration
  namespace:
    description: Namespace of the ledger; defaults to C(cluster-<cluster>). Required without
      I(cluster).
    type: str
  cluster:
    description:
      - The KKP cluster ID, i.e. the C(metadata.name) of the seed's C(Cluster) object (for
        example C(x8p9sk2tzv)); the connection options then address the seed.
      - An unknown ID fails with the list of clusters the seed has.
      - Without it, I(namespace) is required and the ledger is not a KKP cluster's.
    type: str
    required: false
  subject:
    description: What the ledger is of, without I(cluster) (for example C(move-shop)); kept in
      the ledger's C(meta) and as the label C(cloudhop.io/subject), so a label value (up to 63
      letters, digits, C(-), C(_) and C(.), starting and ending with a letter or digit).
    type: str
    version_added: 0.1.0
"""

EXAMPLES = r"""
- name: Skip the phase when the ledger says it is done
  cloudhop.k8s_migration.migration_ledger:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
  register: ledger

- name: Start the phase
  cloudhop.k8s_migration.migration_ledger:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
    phase: target_cloud
    action: start
  when: ledger.ledger.phases.target_cloud.status | default('pending') != 'done'

- name: Done, with the facts a rollback needs
  cloudhop.k8s_migration.migration_ledger:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
    phase: target_cloud
    action: done
    facts:
      backup_path: /var/backups/cloudhop/cluster-x8p9sk2tzv-20261122T101500.000000Z.json

- name: The cluster-to-cluster move's ledger, kept in the new cluster
  cloudhop.k8s_migration.migration_ledger:
    kubeconfig: new.kubeconfig
    namespace: shop
    name: cloudhop-move
    subject: move-shop
    phase: move_preflight
    action: start
"""

RETURN = r"""
ledger:
  description: The ledger after the task, with every phase's record.
  returned: always
  type: dict
  sample: {"phases": {"seed_vpn": {"status": "done", "started": "2026-11-22T10:00:00Z",
           "finished": "2026-11-22T10:01:10Z", "attempts": 1, "version": "0.1.0",
           "facts": {}}}, "meta": {"cluster": "x8p9sk2tzv"}}
phase:
  description: The record of I(phase) after the task.
  returned: when phase is given
  type: dict
  sample: {"status": "started", "started": "2026-11-22T10:00:00Z", "attempts": 1}
summary:
  description: Phase names by status.
  returned: always
  type: dict
  sample: {"done": ["preflight"], "started": ["seed_vpn"], "failed": [], "pending": []}
exists:
  description: Whether the ledger ConfigMap existed before the task.
  returned: always
  type: bool
  sample: true
diff:
  description: The phase's record before and after.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"status": "pending"}, "after": {"status": "started"}}
"""

import re

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import k8s_names
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.args import KKP_CLUSTER_ARG_SPEC
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    COLLECTION_VERSION, MigrationError, utc_now)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kkp_cluster import get_cluster
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kube import KubeModule, retry_on_conflict
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.ledger import (
    decode, encode, summary, transition)

RETRIES = 5


def once(mod, ns):
    p = mod.params
    live = mod.kube.get("v1", "ConfigMap", p["name"], ns)
    before = decode((live or {}).get("data"))
    if not before["meta"]:
        before["meta"] = dict({"cluster": p["cluster"]} if p["cluster"] else
                              {"subject": p["subject"]}, created=utc_now())
    after, changed = before, False
    if p["action"] != "read":
        # in check mode the start of this run was a dry run: done may follow it
        after, changed = transition(before, p["phase"], p["action"], utc_now(),
                                    COLLECTION_VERSION, p["facts"], p["note"], p["reopen"],
                                    assume_started=mod.check_mode, started=p["started"])
    if changed:
        if live is None:
            labels = {k8s_names.MANAGED_BY: k8s_names.MANAGER}
            if p["cluster"]:
                labels[k8s_names.CLUSTER_LABEL] = p["cluster"]
            else:
                labels[k8s_names.SUBJECT_LABEL] = p["subject"]
            mod.kube.create("v1", "ConfigMap", {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": p["name"], "namespace": ns, "labels": labels},
                "data": encode(after)}, ns)
        else:
            data = encode(after)
            for key in live.get("data") or {}:
                if key.startswith("phase.") and key not in data:
                    data[key] = None  # a reset phase
            mod.kube.merge_patch("v1", "ConfigMap", p["name"], {
                "metadata": {"resourceVersion": live["metadata"]["resourceVersion"]},
                "data": data}, ns)
    return live is not None, before, after, changed


def run(mod):
    p = mod.params
    if p["action"] != "read" and not p["phase"]:
        raise MigrationError("action=%s needs phase" % p["action"])
    if not p["cluster"]:
        if not p["namespace"] or not p["subject"]:
            raise MigrationError("a ledger without cluster needs namespace and subject")
        if not re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", p["subject"]):
            raise MigrationError("subject %r must be a label value: up to 63 letters, digits, "
                                 "'-', '_' and '.', starting and ending with a letter or digit"
                                 % p["subject"])
        ns = p["namespace"]
        if mod.kube.get("v1", "Namespace", ns) is None:
            raise MigrationError("namespace %s of the ledger does not exist; create it first"
                                 % ns)
    else:
        dummy, cluster = get_cluster(mod.kube, p["cluster"], p["api_group"])
        ns = p["namespace"] or (cluster.get("status") or {}).get("namespaceName") or \
            "cluster-" + p["cluster"]
        if mod.kube.get("v1", "Namespace", ns) is None:
            raise MigrationError("namespace %s does not exist in the seed; set namespace to the "
                                 "cluster's control-plane namespace" % ns)

    def attempt():
        try:
            return once(mod, ns)
        except MigrationError as exc:
            if exc.details.get("reason") != "AlreadyExists":
                raise
            # another run created the ledger between this read and this create: read it again
            raise MigrationError(exc.msg, status=409, reason="Conflict")

    exists, before, after, changed = retry_on_conflict(
        mod.kube, "ledger ConfigMap %s/%s" % (ns, p["name"]), attempt, retries=RETRIES - 1)
    result = {"changed": changed, "ledger": after, "summary": summary(after), "exists": exists}
    if p["phase"]:
        result["phase"] = after["phases"].get(p["phase"], {"status": "pending"})
    if mod.diff_mode and p["phase"]:
        result["diff"] = {"before": before["phases"].get(p["phase"], {"status": "pending"}),
                          "after": result["phase"]}
    return result


def main():
    spec = dict(KKP_CLUSTER_ARG_SPEC, cluster={"type": "str"}, subject={"type": "str"})
    spec.update(
        action={"type": "str", "default": "read",
                "choices": ["read", "start", "done", "fail", "record", "reset"]},
        phase={"type": "str"}, facts={"type": "dict"}, note={"type": "str"},
        reopen={"type": "bool", "default": False},
        started={"type": "str"},
        name={"type": "str", "default": k8s_names.LEDGER_CONFIGMAP},
        namespace={"type": "str"},
    )
    KubeModule(spec).run(run)


if __name__ == "__main__":
    main()
