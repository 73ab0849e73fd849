"""The lab's inventory is the collection's own inventory plugin, cloudhop.k8s_migration.nodes,
reading the user cluster's Node objects: this writes its configuration, .lab/nodes.cloudhop.yml.

SSH host keys are verified against .lab/ssh/known_hosts (written as nodes boot).
"""

import ipaddress
import json
import os

import yaml

from .dns import DNS_HOST
from .gcpapi import ENDPOINT as GCP_ENDPOINT
from .gcpapi import PROJECT as GCP_PROJECT
from .gcpapi import REGION as GCP_REGION
from .gcpapi import TOKEN_URI as GCP_TOKEN_URI

CONFIG = "nodes.cloudhop.yml"


def kubeconfig(lab_dir, cluster, opts):
    """The kubeconfig the collection uses: the admin's, or with ``--rbac`` the one of user
    cloudhop-migrator, who has only what docs/rbac grants."""
    suffix = "-migrator" if opts.get("rbac") else ""
    return os.path.join(lab_dir, "%s%s.kubeconfig" % (cluster, suffix))


def plugin_config_name(spec):
    """nodes.cloudhop.yml for the first user cluster, nodes-<name>.cloudhop.yml for others."""
    return CONFIG if not spec or spec.get("index", 0) == 0 else "nodes-%s.cloudhop.yml" % (
        spec["name"])


def nodes_group(spec):
    """The group of a cluster's nodes: workers for the first, <id>_workers for the others (the
    plugin's group_prefix keeps each cluster's groups apart in one inventory)."""
    return "workers" if not spec or spec.get("index", 0) == 0 else spec["cluster_id"] + "_workers"


def write_plugin_config(lab_dir, md_name, opts=None, spec=None):
    ssh = os.path.join(lab_dir, "ssh")
    config = {
        "plugin": "cloudhop.k8s_migration.nodes",
        "kubeconfig": kubeconfig(lab_dir, (spec or {}).get("name", "user"), opts or {}),
        "ssh_user": "root",
        "ssh_private_key_file": os.path.join(ssh, "id_ed25519"),
        "ssh_common_args": "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes"
                           % os.path.join(ssh, "known_hosts"),
        "python_interpreter": "/usr/bin/python3",
        "old_machinedeployments": [md_name],
    }
    if spec and spec.get("index", 0):
        config["group_prefix"] = spec["cluster_id"] + "_"
    path = os.path.join(lab_dir, plugin_config_name(spec))
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    return path


MIGRATION = "user_clusters.yml"


def _gcp_service_account(lab_dir, project):
    """A service-account key file like GCP issues: a fresh RSA key, which the lab's Google API
    registers (gcpapi.py); its token_uri is the lab's OAuth endpoint."""
    from cryptography.hazmat.primitives import serialization  # pylint: disable=C0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # pylint: disable=C0415
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    email = "cloudhop-migration@%s.iam.gserviceaccount.com" % project
    sa = {"type": "service_account", "project_id": project, "private_key_id": "0" * 40,
          "private_key": pem, "client_email": email, "client_id": "100000000000000000001",
          "auth_uri": "https://accounts.google.com/o/oauth2/auth",
          "token_uri": GCP_TOKEN_URI}
    path = os.path.join(lab_dir, "gcp-sa.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(sa, fh)
    return path


def write_migration_inventory(lab_dir, opts, specs=None):
    """.lab/user_clusters.yml: the lab's user clusters on vSphere as hosts of group
    user_clusters, with every input of the migration roles (as inventories/example/ shows for a
    real cluster) and the admin kubeconfigs playbooks/rbac.yml applies docs/rbac with. The
    target cloud defaults to AWS; -e cloudhop_target_cloud=gcp picks the GCP settings."""
    sa_file = _gcp_service_account(lab_dir, GCP_PROJECT)
    hosts = {}
    for spec in specs or [dict(opts, index=0, name="user")]:
        if spec.get("cloud", "vsphere") != "vsphere":
            continue  # the move world's new cluster is no migration source
        hosts[spec["cluster_id"]] = _migration_host(lab_dir, spec, sa_file)
        # playbooks/rbac.yml applies docs/rbac with the admins' kubeconfigs
        hosts[spec["cluster_id"]]["cloudhop_rbac_user_kubeconfig"] = os.path.join(
            lab_dir, "%s.kubeconfig" % spec.get("name", "user"))
    inv = {"all": {"children": {"user_clusters": {
        "hosts": hosts,
        "vars": {"cloudhop_rbac_seed_kubeconfig": os.path.join(lab_dir, "seed.kubeconfig")}}}}}
    path = os.path.join(lab_dir, MIGRATION)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(inv, fh, sort_keys=False)
    return path


MOVE = "move"


def write_move_inventory(lab_dir, specs, opts=None):
    """.lab/move/ (world move): the inventory of playbooks/move.yml as a user writes it for real
    clusters (inventories/example-move/): ``hosts.yml`` with the shop's move as host ``shop``
    of group cluster_moves and its inputs, and the nodes of each cluster from the collection's
    nodes inventory plugin (``old.cloudhop.yml``, ``new.cloudhop.yml``, groups
    move_old_workers and move_new_workers), from which the move checks the link. The
    Deployments' order is left to the move's default. With ``--rbac`` (``opts``) the
    kubeconfigs are user cloudhop-migrator's, bound to docs/rbac's move roles."""
    from .. import fixture  # pylint: disable=import-outside-toplevel
    opts = opts or {}
    old, new = specs[0], specs[-1]
    first = fixture.mongo_hosts(old, "vsphere")[0]
    d = os.path.join(lab_dir, MOVE)
    os.makedirs(d, mode=0o700, exist_ok=True)
    old_net = ipaddress.ip_network(old["networks"]["vsphere"])
    new_net = ipaddress.ip_network(new["networks"]["aws"])
    proxy_old = str(old_net.network_address + fixture.MONGO_FIRST_HOST + 10)
    proxy_new = str(new_net.network_address + fixture.MONGO_FIRST_HOST + 10)
    dns_host = str(ipaddress.ip_network(old["public_cidr"])[DNS_HOST])
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "cloudhop_move_old_kubeconfig": kubeconfig(lab_dir, old["name"], opts),
        "cloudhop_move_new_kubeconfig": kubeconfig(lab_dir, new["name"], opts),
        "cloudhop_move_namespace": fixture.SHOP_NS,
        "cloudhop_move_mongodb": {
            "replica_set": fixture.MONGO_SET, "login_host": first.rsplit(":", 1)[0],
            "login_port": int(first.rsplit(":", 1)[1]),
            "new_members": fixture.mongo_hosts(new, "aws")},
        # the api's copy in the new cluster names the new members (cleanup removes the old)
        "cloudhop_move_env": {"api": {"MONGODB_URI": fixture.mongo_uri(new, "aws")}},
        # link mode build (-e cloudhop_move_link_mode=build): each side's node network; the
        # hub's load balancer in the old cluster is a public one (MetalLB's public pool)
        "cloudhop_move_link_build": {"old_network": str(old_net), "new_network": str(new_net)},
        "cloudhop_move_old_nodes_group": "move_old_workers",
        "cloudhop_move_new_nodes_group": "move_new_workers",
        # internal load balancers for the proxies: MetalLB on vSphere, an internal NLB on AWS
        "cloudhop_move_proxy": {
            "old_annotations": {"metallb.universe.tf/loadBalancerIPs": proxy_old},
            "new_annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
                "service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses":
                    proxy_new}},
        "cloudhop_move_dns": {
            "provider": "rfc2136", "server": dns_host, "zone": "example.test",
            "key_name": "cloudhop-lab", "key_algorithm": "hmac-sha256",
            "key_secret": "{{ (lookup('ansible.builtin.file', '%s') | from_json).secret }}"
                          % os.path.join(lab_dir, "dns", "tsig.json"),
            "ttl": old.get("migration_dns_ttl", 5)},
        # the echo app names the cluster that answered
        "cloudhop_move_answer": {"old": '"cluster": "%s"' % old["cluster_id"],
                                 "new": '"cluster": "%s"' % new["cluster_id"]},
        "cloudhop_move_ca_path": os.path.join(lab_dir, "pki", "ca.crt"),
        "cloudhop_backup_dir": os.path.join(lab_dir, "backups"),
        "cloudhop_report_dir": os.path.join(lab_dir, "reports"),
    }
    inv = {"all": {"children": {"cluster_moves": {"hosts": {"shop": host}}}}}
    path = os.path.join(d, "hosts.yml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(inv, fh, sort_keys=False)
    for side, spec in (("old", old), ("new", new)):
        src = os.path.join(lab_dir, plugin_config_name(spec))
        with open(src, encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
        config["group_prefix"] = "move_%s_" % side
        with open(os.path.join(d, side + ".cloudhop.yml"), "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)
    return d


def _migration_host(lab_dir, opts, sa_file):
    cid = opts["cluster_id"]
    index = opts.get("index", 0)
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "cloudhop_seed_kubeconfig": kubeconfig(lab_dir, "seed", opts),
        "cloudhop_user_kubeconfig": kubeconfig(lab_dir, opts.get("name", "user"), opts),
        "cloudhop_cluster_id": cid,
        "cloudhop_source_machinedeployments": [opts["md_name"]],
        "cloudhop_target_cloud": "aws",
        "cloudhop_target_dc": "{{ lab_target[cloudhop_target_cloud].dc }}",
        "cloudhop_target_machine": "{{ lab_target[cloudhop_target_cloud].machine }}",
        "cloudhop_target_node_cidr": "{{ lab_target[cloudhop_target_cloud].cidr }}",
        "cloudhop_aws": {
            # moto accepts any keys; these have the shape of real ones (the module checks it)
            "access_key_id": "AKIACLOUDHOPLAB00001",
            "secret_access_key": "cloudhopLabSecretAccessKey0000000000000x",
            "region": "eu-central-1", "vpc_id": "vpc-0cloudhoplab", "security_group_id":
            "sg-0cloudhoplab", "endpoint_url": "http://127.0.0.1:5000"},
        "cloudhop_gcp": {"service_account": sa_file,
                         "region": GCP_REGION, "endpoint_url": GCP_ENDPOINT,
                         "network": "global/networks/cloudhop-lab",
                         "subnetwork": "regions/europe-west3/subnetworks/cloudhop-lab"},
        "lab_target": {
            "aws": {"dc": "aws-eu-central-1a", "cidr": opts["networks"]["aws"],
                    "machine": {"region": "eu-central-1", "availabilityZone": "eu-central-1a",
                                "instanceType": "t3.large", "vpcId": "vpc-0cloudhoplab",
                                "subnetId": "subnet-0cloudhoplab", "diskSize": 50,
                                "diskType": "gp3"}},
            "gcp": {"dc": "gcp-europe-west3", "cidr": opts["networks"]["gcp"],
                    "machine": {"zone": "europe-west3-a", "machineType": "e2-standard-2",
                                "diskSize": 50, "diskType": "pd-ssd",
                                "network": "global/networks/cloudhop-lab",
                                "subnetwork": "regions/europe-west3/subnetworks/cloudhop-lab"}}},
        # VPN mode auto: the seed's openvpn-server, or (lab up --konnectivity) the hub, reached
        # at the seed node's NodePort
        "cloudhop_vpn_hub": {"address": opts["seed_public_ip"], "node_port": 31194 + index,
                             "wireguard_node_port": 31820 + 8 * index,
                             **({"count": opts["wireguard_hubs"]}
                                if opts.get("wireguard_hubs") else {})},
        **({"cloudhop_vpn_backend": "wireguard", "cloudhop_vpn_tunnel_mtu": 1500}
           if opts.get("wireguard_hubs") else {}),
        "cloudhop_app_host": opts["app_host"],
        "cloudhop_dns": ({
            "provider": "rfc2136", "server": str(ipaddress.ip_network(opts["public_cidr"])[DNS_HOST]), "zone": "example.test",
            "key_name": "cloudhop-lab", "key_algorithm": "hmac-sha256",
            "key_secret": "{{ (lookup('ansible.builtin.file', '%s') | from_json).secret }}"
                          % os.path.join(lab_dir, "dns", "tsig.json"),
            "ttl": opts["migration_dns_ttl"]} if opts.get("dns_provider", "rfc2136") == "rfc2136" else {
            # the hosted zone in the lab's AWS API, with the keys of cloudhop_aws
            "provider": "route53", "zone": "example.test", "ttl": opts["migration_dns_ttl"]}
            if opts["dns_provider"] == "route53" else {
            # the managed zone in the lab's Google API, with the service account of cloudhop_gcp
            "provider": "clouddns", "zone": "example.test", "ttl": opts["migration_dns_ttl"]}),
        "cloudhop_backup_dir": os.path.join(lab_dir, "backups"),
        "cloudhop_report_dir": os.path.join(lab_dir, "reports"),
        **({"cloudhop_nodes_group": nodes_group(opts)} if index else {}),
        "cloudhop_gate_requests": 10,
        "cloudhop_gate_interval": 0.05,
        "cloudhop_wait_timeout": 180,
    }
    return host
