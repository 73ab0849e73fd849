"""The nodes inventory plugin's pure parts: MachineDeployment ownership and host variables."""

from ansible_collections.cloudhop.k8s_migration.plugins.inventory import nodes

NODE = {"metadata": {"name": "n1", "labels": {"zone": "a"}},
        "spec": {"podCIDR": "172.25.3.0/24", "providerID": "aws:///eu-central-1a/i-0abc",
                 "unschedulable": True},
        "status": {"addresses": [{"type": "InternalIP", "address": "172.31.0.7"},
                                 {"type": "ExternalIP", "address": "198.51.100.7"},
                                 {"type": "Hostname", "address": "n1"}],
                   "conditions": [{"type": "Ready", "status": "True"}]}}


def test_node_hostvars_internal_and_external():
    hv = nodes.node_hostvars(NODE, "InternalIP", "aws-workers")
    assert hv["ansible_host"] == "172.31.0.7" and hv["node_cloud"] == "aws"
    assert hv["node_ready"] and hv["node_unschedulable"]
    assert hv["node_pod_cidr"] == "172.25.3.0/24" and hv["node_machinedeployment"] == "aws-workers"
    assert nodes.node_hostvars(NODE, "ExternalIP", None)["ansible_host"] == "198.51.100.7"


def test_machinedeployment_of_each_node_follows_the_owner_chain():
    machinesets = [{"metadata": {"name": "ms1", "ownerReferences": [
        {"kind": "MachineDeployment", "name": "old-md"}]}}]
    machines = [{"metadata": {"name": "m1", "ownerReferences": [{"kind": "MachineSet",
                                                                 "name": "ms1"}]},
                 "status": {"nodeRef": {"name": "n1"}}},
                {"metadata": {"name": "m2", "ownerReferences": [{"kind": "MachineSet",
                                                                 "name": "gone"}]},
                 "status": {"nodeRef": {"name": "n2"}}},
                {"metadata": {"name": "m3", "ownerReferences": [{"kind": "MachineSet",
                                                                 "name": "ms1"}]}}]
    assert nodes.node_machinedeployments(machines, machinesets) == {"n1": "old-md"}


def test_group_names_are_valid_ansible_groups():
    assert nodes.group_name("to-migrate-vsphere-node") == "to_migrate_vsphere_node"


def _populate(**options):
    from ansible.inventory.data import InventoryData
    from ansible.plugins.loader import inventory_loader
    plugin = inventory_loader.get("cloudhop.k8s_migration.nodes")
    plugin.inventory = InventoryData()
    plugin.set_options(direct=dict({"plugin": "cloudhop.k8s_migration.nodes"}, **options))
    plugin._populate([NODE], {"n1": "old-md"})  # pylint: disable=protected-access
    return plugin.inventory


def test_groups_without_and_with_a_per_cluster_prefix():
    inv = _populate(old_machinedeployments=["old-md"])
    assert {"workers", "old_workers", "aws", "md_old_md"} <= set(inv.groups)
    assert [h.name for h in inv.groups["old_workers"].get_hosts()] == ["n1"]
    inv = _populate(old_machinedeployments=["old-md"], group_prefix="x8p9sk2tzv_")
    assert {"x8p9sk2tzv_workers", "x8p9sk2tzv_old_workers", "x8p9sk2tzv_aws",
            "x8p9sk2tzv_md_old_md"} <= set(inv.groups)
    assert "workers" not in inv.groups
    assert [h.name for h in inv.groups["x8p9sk2tzv_old_workers"].get_hosts()] == ["n1"]
