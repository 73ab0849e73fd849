# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/rbac's seed roles for the user clusters of an inventory: the file names one cluster's
namespace (the lab's, cluster-x8p9sk2tzv) as its example; each object there is made once per
cluster, in that cluster's namespace. Standard library only (the lab loads roles with it)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

EXAMPLE_CLUSTER_ID = "x8p9sk2tzv"
# a KKP cluster id makes the namespace cluster-<id>: a DNS label of at most 63 characters
CLUSTER_ID = re.compile(r"^[a-z0-9]([-a-z0-9]{0,53}[a-z0-9])?$")


def _items(objects):
    """The objects of a file's documents: a v1 List's items, or the objects themselves."""
    out = []
    for obj in objects or []:
        if not obj:
            continue
        if obj.get("kind") == "List" and "items" in obj:
            out += [item for item in obj["items"] if item]
        else:
            out.append(obj)
    return out


def _replace(value, old, new):
    if isinstance(value, dict):
        return dict((k, _replace(v, old, new)) for k, v in value.items())
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    if isinstance(value, str):
        return value.replace(old, new)
    return value


def for_clusters(objects, cluster_ids, example_id=EXAMPLE_CLUSTER_ID):
    """The objects of ``objects`` (documents of docs/rbac/seed.yaml, a v1 List or single
    objects) for the clusters ``cluster_ids``: every object in namespace cluster-<example_id>
    once per cluster, with that cluster's id wherever the example's stood; every other object
    once. Cluster ids are checked (a DNS label once prefixed with cluster-) and taken once each,
    in the order given. Raises MigrationError naming a bad id or a file with no example."""
    ids = []
    for cid in cluster_ids or []:
        if not isinstance(cid, str) or not CLUSTER_ID.match(cid):
            raise MigrationError(
                "cloudhop_cluster_id %r is not a KKP cluster id (lower-case letters, digits and "
                "-, at most 55 characters: its namespace is cluster-<id>)" % (cid,))
        if cid not in ids:
            ids.append(cid)
    if not ids:
        raise MigrationError("no user cluster to render the RBAC for: give the hosts of group "
                             "user_clusters their cloudhop_cluster_id")
    example_ns = "cluster-" + example_id
    shared, per_cluster = [], []
    for obj in _items(objects):
        ns = (obj.get("metadata") or {}).get("namespace")
        (per_cluster if ns == example_ns else shared).append(obj)
    if not per_cluster:
        raise MigrationError("the RBAC file has no object in the example namespace %s to make "
                             "once per cluster" % example_ns)
    out = [copy.deepcopy(obj) for obj in shared]
    for cid in ids:
        out += [_replace(copy.deepcopy(obj), example_id, cid) for obj in per_cluster]
    return out
