"""The phases are listed once (module_utils/phases.py PHASES); migrate.yml imports their
playbooks in that order, and each phase playbook reads top to bottom: begin, then start, the
phase's own role and done in one block with failed as its rescue, its output passed by name."""

import os

import yaml

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.phases import PHASES

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _load(name):
    with open(os.path.join(REPO, "playbooks", name)) as fh:
        return yaml.safe_load(fh)


def test_migrate_imports_the_phases_in_order_each_tagged_with_its_name():
    imports = [(p["ansible.builtin.import_playbook"], p["tags"]) for p in _load("migrate.yml")]
    # then the fleet report over every cluster, with the report phase's tag
    assert imports == [("%s.yml" % p, [p]) for p in PHASES] + [("fleet_report.yml", ["report"])]


def test_each_phase_playbook_runs_begin_start_role_done_and_failed_by_static_names():
    for phase in PHASES:
        plays = _load("%s.yml" % phase)
        assert plays[0] == {"name": "Check the inventory",
                            "ansible.builtin.import_playbook": "inventory_check.yml"}
        # the batch is chosen before the first phase of a run, whichever phase that is
        assert plays[1] == {"name": "The clusters this run takes (cloudhop_fleet_batch)",
                            "ansible.builtin.import_playbook": "fleet_batch.yml"}
        play = plays[2]
        assert play["vars"] == {"cloudhop_phase": phase}
        assert set(play["module_defaults"]) == {
            "group/cloudhop.k8s_migration.seed", "group/cloudhop.k8s_migration.user",
            "group/kubernetes.core.k8s", "cloudhop.k8s_migration.migration_ledger"}
        begin, block = play["tasks"]
        assert begin["ansible.builtin.include_role"] == {
            "name": "cloudhop.k8s_migration.cloudhop", "tasks_from": "phase_begin",
            "public": True}
        steps = [t["ansible.builtin.include_role"] for t in block["block"]]
        assert steps == [
            {"name": "cloudhop.k8s_migration.cloudhop", "tasks_from": "phase_start"},
            {"name": "cloudhop.k8s_migration." + phase},
            {"name": "cloudhop.k8s_migration.cloudhop", "tasks_from": "phase_done"}]
        assert block["block"][2]["vars"]["cloudhop_phase_facts"] == \
            "{{ %s_ledger_facts | default({}) }}" % phase
        assert [t["ansible.builtin.include_role"] for t in block["rescue"]] == [
            {"name": "cloudhop.k8s_migration.cloudhop", "tasks_from": "phase_failed"}]
        # the output the playbook records is the one the role sets and documents
        with open(os.path.join(REPO, "roles", phase, "tasks", "main.yml")) as fh:
            assert "%s_ledger_facts:" % phase in fh.read()
        with open(os.path.join(REPO, "roles", phase, "README.md")) as fh:
            assert "`%s_ledger_facts`" % phase in fh.read()
