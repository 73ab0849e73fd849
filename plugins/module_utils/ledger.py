# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration ledger: one ConfigMap in the seed's ``cluster-<id>`` namespace that records,
per phase, status, start and end time, collection version and key facts.

``transition`` is pure: (ledger, request) -> (new ledger, changed). One data key per phase
(``phase.<name>``, a JSON document) keeps concurrent phases' writes apart and the object
readable with kubectl.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import re

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

PHASE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
STATUSES = ("pending", "started", "done", "failed")
PREFIX = "phase."
# a phase's facts are for names, addresses, times and paths; these look like secrets
SECRETISH = re.compile(r"(password|secret|token|private_?key|access_?key)", re.I)


def decode(data):
    """ConfigMap data -> {"phases": {name: record}, "meta": {...}}."""
    phases = {}
    for key, value in (data or {}).items():
        if key.startswith(PREFIX):
            try:
                phases[key[len(PREFIX):]] = json.loads(value)
            except ValueError:
                raise MigrationError("ledger key %s is not JSON; someone edited the ConfigMap by "
                                     "hand - fix or remove that key" % key)
    meta = {}
    if (data or {}).get("meta"):
        try:
            meta = json.loads(data["meta"])
        except ValueError:
            meta = {}
    return {"phases": phases, "meta": meta}


def encode(ledger):
    data = dict((PREFIX + name, json.dumps(rec, sort_keys=True))
                for name, rec in ledger["phases"].items())
    data["meta"] = json.dumps(ledger["meta"], sort_keys=True)
    return data


def check_facts(facts):
    for key in facts or {}:
        if SECRETISH.search(str(key)):
            raise MigrationError("facts.%s looks like a secret; the ledger is readable by anyone "
                                 "who can read the seed namespace - record a reference instead"
                                 % key)


def transition(ledger, phase, action, now, version, facts=None, message=None, reopen=False,
               assume_started=False, started=None):
    """Apply ``action`` (start|done|fail|reset|record) to ``phase`` -> (ledger, changed).

    ``assume_started`` lets ``done`` follow a start that was never written: in check mode the
    start of the same run was only a dry run. ``started`` (a timestamp) does the same for a
    phase that writes nothing until it has passed (preflight), and is recorded as its start.
    """
    if not phase or not PHASE_RE.match(phase):
        raise MigrationError("phase %r is not a valid phase name (lower-case letters, digits, "
                             "'_', starting with a letter)" % phase)
    check_facts(facts)
    new = copy.deepcopy(ledger)
    rec = new["phases"].get(phase) or {"status": "pending", "facts": {}}
    status = rec.get("status", "pending")
    if action == "start":
        if status == "done" and not reopen:
            raise MigrationError("phase %s is already done (finished %s); roles skip it on "
                                 "resume. Set reopen: true to run it again"
                                 % (phase, rec.get("finished")))
        if status != "started":
            rec.update(status="started", started=now, finished=None, message=None,
                       attempts=rec.get("attempts", 0) + 1)
    elif action == "done":
        if status in ("pending", "failed") and started:
            rec.update(status="started", started=started, attempts=rec.get("attempts", 0) + 1)
            status = "started"
        if status == "pending" and assume_started:
            rec.update(status="started", started=now, attempts=rec.get("attempts", 0) + 1)
            status = "started"
        if status == "pending":
            raise MigrationError("phase %s was never started; record start before done" % phase)
        if status != "done":
            rec.update(status="done", finished=now, message=message)
    elif action == "fail":
        if status != "failed" or rec.get("message") != message:
            rec.update(status="failed", finished=now, message=message)
    elif action == "reset":
        if phase in new["phases"]:
            del new["phases"][phase]
        return new, new != ledger
    elif action != "record":
        raise MigrationError("unknown ledger action %r" % action)
    if facts:
        merged = dict(rec.get("facts") or {})
        merged.update(facts)
        rec["facts"] = merged
    if rec != (ledger["phases"].get(phase)):
        rec["version"] = version
    new["phases"][phase] = rec
    return new, new != ledger


def summary(ledger):
    """{status: [phases]} for a quick view."""
    out = dict((s, []) for s in STATUSES)
    for name, rec in sorted(ledger["phases"].items()):
        out.setdefault(rec.get("status", "pending"), []).append(name)
    return out
