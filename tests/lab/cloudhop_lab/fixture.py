"""The seed fixture: an OpenVPN-based KKP user cluster on vSphere (kkp-migration-facts.md), or
with option konnectivity a Konnectivity-based one: no openvpn-server in the seed and no
openvpn-client in the user cluster (a konnectivity-agent instead), so the migration must bring
its own VPN hub."""

import base64
import hashlib
import ipaddress

from .controllers.kkp import openvpn_deployment
from .controllers.machines import node_info

DEFAULTS = {
    "cluster_id": "x8p9sk2tzv",
    "project_id": "k7xz5qd2wm",
    "legacy_api": False,
    "konnectivity": False,
    "wireguard_hubs": 0,  # > 0: the inventory asks for the WireGuard backend with that many hubs
    "dataplane": True,
    "workers": 3,
    "app_replicas": 3,
    "ingress_replicas": 2,
    "kubelet_version": "1.31.4",
    "networks": {"vsphere": "10.2.0.0/17", "aws": "172.31.0.0/16", "gcp": "10.156.0.0/20"},
    "vpn_cidr": "10.20.0.0/24",
    "pod_cidr": "172.25.0.0/16",
    "service_cidr": "10.240.16.0/20",
    "seed_pod_cidr": "10.100.0.0/16",
    "seed_service_cidr": "10.110.0.0/16",
    "public_cidr": "198.18.0.0/24",
    "seed_public_ip": "198.18.0.10",
    "vpn_node_port": 32359,
    "apiserver_node_port": 30303,
    "app_host": "app.example.test",
    "dns_ttl": 300,
    "dns_provider": "rfc2136",
    # the lowered TTL the lab's migration inventory asks for around the DNS switch
    "migration_dns_ttl": 5,
    "md_name": "to-migrate-vsphere-node",
    # several user clusters on the seed (lab up --clusters N), or the move world (--world move:
    # the old cluster with the shop app, and a new cluster on AWS)
    "clusters": 1,
    "world": "migrate",
    "same_pod_cidr": False,
    "vsphere_username": "lab-vsphere-user@vsphere.local",
    "vsphere_password": "lab-vsphere-password-not-real",
}

KKP_GROUPS = {False: "kubermatic.k8c.io", True: "kubermatic.k8s.io"}


def _b64(text):
    if isinstance(text, str):
        text = text.encode()
    return base64.b64encode(text).decode()


def _open(props=None, required=None):
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if props:
        schema["properties"] = props
    if required:
        schema["required"] = required
    return schema


def cluster_crd(legacy):
    group = KKP_GROUPS[legacy]
    meta = {"name": "clusters." + group}
    if legacy:
        meta["annotations"] = {"api-approved.kubernetes.io": "unapproved, legacy API"}
    spec_schema = _open({
        "pause": {"type": "boolean"},
        "pauseReason": {"type": "string"},
        "humanReadableName": {"type": "string"},
        "version": {"type": "string"},
        "exposeStrategy": {"type": "string",
                           "enum": ["NodePort", "LoadBalancer", "Tunneling"]},
        "cloud": _open({"dc": {"type": "string"}}, ["dc"]),
        "clusterNetwork": _open(),
    }, ["cloud", "version", "humanReadableName"])
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": meta,
        "spec": {"group": group, "scope": "Cluster",
                 "names": {"plural": "clusters", "singular": "cluster", "kind": "Cluster",
                           "listKind": "ClusterList", "categories": ["kkp-cluster"]},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "properties": {"apiVersion": {"type": "string"},
                                                  "kind": {"type": "string"},
                                                  "metadata": {"type": "object"},
                                                  "spec": spec_schema,
                                                  "status": _open()}}}}]}}


def machine_crds():
    out = []
    for plural, kind, short, scale in (("machinedeployments", "MachineDeployment", ["md"], True),
                                       ("machinesets", "MachineSet", ["ms"], True),
                                       ("machines", "Machine", ["ma"], False)):
        subs = {"status": {}}
        if scale:
            subs["scale"] = {"specReplicasPath": ".spec.replicas",
                             "statusReplicasPath": ".status.replicas"}
        out.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "%s.cluster.k8s.io" % plural,
                         "annotations": {"api-approved.kubernetes.io": "unapproved, legacy API"}},
            "spec": {"group": "cluster.k8s.io", "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                               "listKind": kind + "List", "shortNames": short},
                     "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                   "subresources": subs,
                                   "schema": {"openAPIV3Schema": _open({
                                       "spec": _open({"replicas": {"type": "integer"},
                                                      "paused": {"type": "boolean"}}),
                                       "status": _open()})}}]}})
    return out


def _route_mask(cidr):
    net = ipaddress.ip_network(cidr)
    return "%s %s" % (net.network_address, net.netmask)


def openvpn_client_config(opts):
    return "\n".join([
        "client", "proto tcp-client", "dev kube", "dev-type tun", "auth-nocache",
        "remote %s %d" % (opts["seed_public_ip"], opts["vpn_node_port"]),
        "nobind", "connect-timeout 5", "connect-retry 1", "persist-key", "persist-tun",
        "cipher AES-256-GCM", "auth SHA1", "remote-cert-tls server", "ping 5", "ping-restart 30",
        "ca /etc/openvpn/certs/ca.crt", "cert /etc/openvpn/certs/client.crt",
        "key /etc/openvpn/certs/client.key", "verb 3", ""])


def seed_shared_objects(opts):
    """What the seed has once, whatever its user clusters: the Cluster CRD, namespace kubermatic
    and the seed node."""
    return [
        cluster_crd(opts["legacy_api"]),
        _ns("kubermatic"),
        {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": "seed-node-1", "labels": {"kubernetes.io/hostname": "seed-node-1"}},
         "spec": {"podCIDR": str(list(ipaddress.ip_network(opts["seed_pod_cidr"])
                                      .subnets(new_prefix=24))[0])},
         "status": {"addresses": [{"type": "InternalIP", "address": opts["seed_public_ip"]}],
                    "nodeInfo": node_info("00000000-0000-4000-8000-5eed00000001",
                                          opts["kubelet_version"], "ubuntu"),
                    "conditions": [{"type": "Ready", "status": "True",
                                    "reason": "KubeletReady"}]}},
    ]


def _cloud_spec(opts, cid, cred_name):
    if opts.get("cloud", "vsphere") == "aws":
        return {"dc": "aws-eu-central-1a", "aws": {
            "credentialsReference": {"name": cred_name, "namespace": "kubermatic"},
            "vpcID": "vpc-0cloudhoplab", "securityGroupID": "sg-0cloudhoplab",
            "routeTableID": "rtb-0cloudhoplab", "instanceProfileName": "kubernetes-" + cid,
            "roleARN": "", "accessKeyID": "", "secretAccessKey": ""}}
    return {"dc": "vsphere-dc1", "vsphere": {
        "credentialsReference": {"name": cred_name, "namespace": "kubermatic"},
        "username": "", "password": "",
        "folder": "/dc1/vm/kubermatic/" + cid, "datastore": "datastore1",
        "vmNetName": "kubermatic-workers", "storagePolicy": "",
        "infraManagementUser": {"username": "", "password": ""}}}


def _credential_data(opts):
    if opts.get("cloud", "vsphere") == "aws":
        return {"accessKeyId": _b64("AKIACLOUDHOPLAB00002"),
                "secretAccessKey": _b64("cloudhopLabNewClusterSecretKey000000000x")}
    return {"username": _b64(opts["vsphere_username"]),
            "password": _b64(opts["vsphere_password"])}


def seed_objects(opts, pki_material, shared=True):
    """The seed's objects of one user cluster (and, with ``shared``, those it has once)."""
    cid, pid = opts["cluster_id"], opts["project_id"]
    group = KKP_GROUPS[opts["legacy_api"]]
    cns = "cluster-" + cid
    cred_name = "credential-%s-%s" % (opts.get("cloud", "vsphere"), cid)
    cluster = {
        "apiVersion": group + "/v1", "kind": "Cluster",
        "metadata": {"name": cid, "labels": {"project-id": pid}},
        "spec": {
            "humanReadableName": opts.get("human_name", "to-migrate"),
            "version": opts["kubelet_version"],
            "exposeStrategy": "NodePort", "pause": False, "enableUserSSHKeyAgent": True,
            "containerRuntime": "containerd",
            "cloud": _cloud_spec(opts, cid, cred_name),
            "clusterNetwork": {"pods": {"cidrBlocks": [opts["pod_cidr"]]},
                               "services": {"cidrBlocks": [opts["service_cidr"]]},
                               "dnsDomain": "cluster.local", "proxyMode": "ipvs",
                               "ipFamily": "IPv4", "nodeCidrMaskSizeIPv4": 24,
                               "nodeLocalDNSCacheEnabled": True,
                               "konnectivityEnabled": bool(opts["konnectivity"])},
        },
    }
    return (seed_shared_objects(opts) if shared else []) + [
        _ns(cns),
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": cred_name, "namespace": "kubermatic",
                      "labels": {"name": cred_name, "project-id": pid}},
         "type": "Opaque",
         "data": _credential_data(opts)},
        cluster,
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "ca", "namespace": cns}, "type": "Opaque",
         "data": {"ca.crt": _b64(pki_material["ca_crt"])}},
    ] + ([] if opts["konnectivity"] else [
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "openvpn-server-certificates", "namespace": cns},
         "type": "Opaque",
         "data": {"server.crt": _b64(pki_material["server_crt"]),
                  "server.key": _b64(pki_material["server_key"])}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "openvpn-client-configs", "namespace": cns},
         "data": {"user-cluster-client": "iroute %s\n" % _route_mask("10.254.0.0/16")}},
        openvpn_deployment(cluster, opts["vpn_cidr"]),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "openvpn-server", "namespace": cns,
                      "labels": {"app": "openvpn-server"}},
         "spec": {"type": "NodePort", "selector": {"app": "openvpn-server"},
                  "ports": [{"name": "secure", "port": 1194, "targetPort": 1194,
                             "protocol": "TCP", "nodePort": opts["vpn_node_port"]}]}},
    ]) + [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "apiserver-external", "namespace": cns},
         "spec": {"type": "NodePort", "selector": {"app": "apiserver"},
                  "ports": [{"name": "secure", "port": 6443, "targetPort": 6443,
                             "protocol": "TCP", "nodePort": opts["apiserver_node_port"]}]}},
    ]


def _ns(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _machine_spec(opts, cid):
    if opts.get("cloud", "vsphere") == "aws":
        return {"region": "eu-central-1", "availabilityZone": "eu-central-1a",
                "instanceType": "t3.large", "vpcId": "vpc-0cloudhoplab",
                "subnetId": "subnet-0cloudhoplab", "diskSize": 50, "diskType": "gp3"}
    return {"templateVMName": "ubuntu-22.04-server-cloudimg",
            "cpus": 2, "memoryMB": 4096, "diskSizeGB": 50,
            "datacenter": "dc1", "folder": "/dc1/vm/kubermatic/" + cid,
            "vmNetName": "kubermatic-workers", "allowInsecure": False}


def machine_deployment(opts, ssh_public_key, name=None, replicas=None):
    cid, pid = opts["cluster_id"], opts["project_id"]
    name = name or opts["md_name"]
    return {
        "apiVersion": "cluster.k8s.io/v1alpha1", "kind": "MachineDeployment",
        "metadata": {"name": name, "namespace": "kube-system",
                     "annotations": {"k8c.io/operating-system-profile": "osp-ubuntu"}},
        "spec": {
            "replicas": opts["workers"] if replicas is None else replicas,
            "minReadySeconds": 0,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": {"name": name}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"name": name}},
                "spec": {
                    "metadata": {"labels": {"system/cluster": cid, "system/project": pid}},
                    "providerSpec": {"value": {
                        "cloudProvider": opts.get("cloud", "vsphere"),
                        "cloudProviderSpec": _machine_spec(opts, cid),
                        "operatingSystem": "ubuntu",
                        "operatingSystemSpec": {"distUpgradeOnBoot": False,
                                                "disableAutoUpdate": True},
                        "sshPublicKeys": [ssh_public_key]}},
                    "versions": {"kubelet": opts["kubelet_version"]},
                },
            },
        },
    }


def _konnectivity_agent():
    """The user cluster's end of Konnectivity (it dials the seed's konnectivity-server; no node
    VPN). In the lab a plain pod: the control plane does not need to reach the nodes."""
    labels = {"k8s-app": "konnectivity-agent"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "konnectivity-agent", "namespace": "kube-system",
                         "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                         "name": "konnectivity-agent",
                         "image": "registry.k8s.io/kas-network-proxy/proxy-agent:v0.31.1",
                         "args": ["--proxy-server-host=konnectivity-server.example.test",
                                  "--proxy-server-port=443"]}]}}}}


def openvpn_client_pod_spec():
    """Pod spec of the in-cluster OpenVPN client (Secret + ConfigMap mounted)."""
    return {
        "containers": [{
            "name": "openvpn-client",
            "image": "quay.io/kubermatic/openvpn:v2.6.8",
            "command": ["/usr/sbin/openvpn"],
            "args": ["--config", "/etc/openvpn/config/config"],
            "volumeMounts": [{"name": "openvpn-client-certificates",
                              "mountPath": "/etc/openvpn/certs"},
                             {"name": "openvpn-client-config",
                              "mountPath": "/etc/openvpn/config"}]}],
        "volumes": [{"name": "openvpn-client-certificates",
                     "secret": {"secretName": "openvpn-client-certificates"}},
                    {"name": "openvpn-client-config",
                     "configMap": {"name": "openvpn-client-config"}}]}


def user_objects(opts, pki_material, ssh_public_key):
    underlay_mtu = 1500
    canal_labels = {"k8s-app": "canal"}
    vpn_labels = {"app": "openvpn-client"}
    ingress = {"app.kubernetes.io/name": "ingress-nginx",
               "app.kubernetes.io/component": "controller"}
    return machine_crds() + [
        _ns("ingress-nginx"),
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "canal-config", "namespace": "kube-system"},
         "data": {"canal_iface": "", "masquerade": "true",
                  "veth_mtu": str(underlay_mtu - 50),
                  "net-conf.json": '{"Network": "%s", "Backend": {"Type": "vxlan"}}'
                                   % opts["pod_cidr"]}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet",
         "metadata": {"name": "canal", "namespace": "kube-system", "labels": canal_labels},
         "spec": {"selector": {"matchLabels": canal_labels},
                  "updateStrategy": {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": 1}},
                  "template": {"metadata": {"labels": canal_labels},
                               "spec": {"hostNetwork": True, "priorityClassName":
                                        "system-node-critical",
                                        "tolerations": [{"operator": "Exists"}],
                                        "containers": [
                                            {"name": "calico-node",
                                             "image": "quay.io/calico/node:v3.28.2"},
                                            {"name": "kube-flannel",
                                             "image": "quay.io/coreos/flannel:v0.25.6",
                                             "command": ["/opt/bin/flanneld", "--ip-masq",
                                                         "--kube-subnet-mgr"],
                                             "env": [{"name": "FLANNELD_IFACE",
                                                      "valueFrom": {"configMapKeyRef": {
                                                          "name": "canal-config",
                                                          "key": "canal_iface"}}},
                                                     {"name": "FLANNELD_IP_MASQ",
                                                      "valueFrom": {"configMapKeyRef": {
                                                          "name": "canal-config",
                                                          "key": "masquerade"}}}]}]}}}},
    ] + ([_konnectivity_agent()] if opts["konnectivity"] else [
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "openvpn-client-certificates", "namespace": "kube-system"},
         "type": "Opaque",
         "data": {"ca.crt": _b64(pki_material["ca_crt"]),
                  "client.crt": _b64(pki_material["client_crt"]),
                  "client.key": _b64(pki_material["client_key"])}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "openvpn-client-config", "namespace": "kube-system"},
         "data": {"config": openvpn_client_config(opts)}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "openvpn-client", "namespace": "kube-system",
                      "labels": vpn_labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": vpn_labels},
                  "template": {"metadata": {"labels": vpn_labels},
                               "spec": openvpn_client_pod_spec()}}},
    ]) + [
        machine_deployment(opts, ssh_public_key),
    ] + (echo_app(opts) if opts.get("echo_app", True) else []) + (
        shop_app(opts, pki_material) if opts.get("shop_app") else []) + (
        [_ns(opts["app_namespace"])] if opts.get("app_namespace") else []) + (
        mongo_objects(opts) if opts.get("mongo") else []) + [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx",
                      "labels": ingress},
         "spec": {"replicas": opts["ingress_replicas"], "selector": {"matchLabels": ingress},
                  "strategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                  # ingress-nginx's preStop /wait-shutdown keeps a terminating controller
                  # serving while kube-proxy and the load balancers drop it
                  "template": {"metadata": {"labels": ingress},
                               "spec": {"terminationGracePeriodSeconds": 300,
                                        "containers": [{
                                            "name": "controller",
                                            "image": "registry.k8s.io/ingress-nginx/"
                                                     "controller:v1.11.3",
                                            "args": ["/nginx-ingress-controller",
                                                     "--ingress-class=nginx"],
                                            "lifecycle": {"preStop": {"exec": {
                                                "command": ["/wait-shutdown"]}}},
                                            "ports": [{"containerPort": 80, "name": "http"},
                                                      {"containerPort": 443,
                                                       "name": "https"}]}]}}}},
        # the ingress-nginx Helm chart's IngressClass (controller.ingressClassResource): the
        # controller serves the Ingresses that name it
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": "nginx", "labels": ingress},
         "spec": {"controller": "k8s.io/ingress-nginx"}},
        # the ingress-nginx Helm chart's PDB (controller.minAvailable 1 when replicas > 1)
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": ingress}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx",
                      "labels": ingress,
                      # MetalLB on vSphere; on AWS the cloud controller's load balancer
                      "annotations": {"metallb.universe.tf/address-pool": "vsphere-public"}
                      if opts.get("cloud", "vsphere") == "vsphere" else {}},
         "spec": {"type": "LoadBalancer", "selector": ingress,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                            {"name": "https", "port": 443, "targetPort": "https"}]}},
    ]


def _echo_pod_spec():
    return {"terminationGracePeriodSeconds": 10, "containers": [{
        "name": "echo", "image": "cloudhop/echo:lab",
        # graceful shutdown as zero-downtime apps do it: keep serving until the endpoints have
        # dropped the pod
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "2"]}}},
        "ports": [{"containerPort": 8080, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                           "periodSeconds": 1}}]}


def echo_app(opts):
    """The first use case's app: echo (3 replicas, PDB, Service, Ingress on app_host)."""
    echo = {"app": "echo"}
    return [
        _ns("echo"),
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "echo", "namespace": "echo", "labels": echo},
         "spec": {"replicas": opts["app_replicas"], "selector": {"matchLabels": echo},
                  "template": {"metadata": {"labels": echo}, "spec": _echo_pod_spec()}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "echo", "namespace": "echo", "labels": echo},
         "spec": {"selector": echo,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "echo", "namespace": "echo"},
         "spec": {"minAvailable": max(1, opts["app_replicas"] - 1),
                  "selector": {"matchLabels": echo}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": "echo", "namespace": "echo"},
         "spec": {"ingressClassName": "nginx",
                  "rules": [{"host": opts["app_host"], "http": {"paths": [{
                      "path": "/", "pathType": "Prefix",
                      "backend": {"service": {"name": "echo",
                                              "port": {"number": 80}}}}]}}]}},
    ]


SHOP_NS = "shop"
# the move world's app: Deployment -> (host, path) of its Ingress rules
SHOP_ROUTES = {"shop.example.test": [("/", "web"), ("/cart", "cart"), ("/static", "static")],
               "api.example.test": [("/", "api"), ("/static", "static")]}
SHOP_HOSTS = sorted(SHOP_ROUTES)
SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"


def shop_app(opts, pki_material):
    """The second use case's app in the old cluster: four Deployments (web, api, cart, static)
    with Services and PDBs, Ingress rules on two hosts and several paths, TLS from the lab CA
    (Secret shop-tls, terminated by ingress-nginx). HTTP is served too (ssl-redirect off, as
    apps behind a TLS-terminating ingress often keep it during a move)."""
    out = [_ns(SHOP_NS),
           {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "shop-tls", "namespace": SHOP_NS},
            "data": {"tls.crt": _b64(pki_material["shop_crt"]),
                     "tls.key": _b64(pki_material["shop_key"])}}]
    for name in ("web", "api", "cart", "static"):
        labels = {"app": name}
        spec = _echo_pod_spec()
        if name == "api":  # the app that writes: POST inserts, GET reads (MongoDB)
            spec["containers"][0]["env"] = [{"name": "MONGODB_URI", "value": mongo_uri(opts)}]
        out += [
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": name, "namespace": SHOP_NS, "labels": dict(labels)},
             "spec": {"replicas": opts.get("shop_replicas", 2),
                      "selector": {"matchLabels": dict(labels)},
                      "template": {"metadata": {"labels": dict(labels)},
                                   "spec": spec}}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": name, "namespace": SHOP_NS, "labels": dict(labels)},
             "spec": {"selector": dict(labels),
                      "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": name, "namespace": SHOP_NS},
             "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(labels)}}}]
    for host in SHOP_HOSTS:
        out.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": host.split(".")[0], "namespace": SHOP_NS,
                         "annotations": {SSL_REDIRECT: "false"}},
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": [host], "secretName": "shop-tls"}],
                     "rules": [{"host": host, "http": {"paths": [
                         {"path": path, "pathType": "Prefix",
                          "backend": {"service": {"name": svc, "port": {"number": 80}}}}
                         for path, svc in SHOP_ROUTES[host]]}}]}})
    return out


MONGO_SET = "rs0"
MONGO_PORT = 27017
MONGO_MEMBERS = 3
MONGO_FIRST_HOST = 200  # members' load balancers: host addresses .200, .201, .202 of the network
MONGO_IMAGE = "cloudhop/mongo-double:7.0"


def mongo_hosts(opts, cloud):
    """The member host names (``address:port``) of the replica set's members in ``cloud``: the
    addresses of their per-member internal load balancers on that cloud's node network."""
    net = ipaddress.ip_network(opts["networks"][cloud])
    return ["%s:%d" % (net.network_address + MONGO_FIRST_HOST + i, MONGO_PORT)
            for i in range(MONGO_MEMBERS)]


def mongo_uri(opts, cloud="vsphere"):
    """What the app is given (env MONGODB_URI): a seed list of the members, the set's name,
    majority writes and retryable writes."""
    return "mongodb://%s/shop?replicaSet=%s&w=majority&retryWrites=true" % (
        ",".join(mongo_hosts(opts, cloud)), MONGO_SET)


def mongo_objects(opts):
    """MongoDB members as a StatefulSet ``mongo`` (ordinal pods with a claim each), a headless
    governing Service, and a per-member internal load balancer (selector
    ``statefulset.kubernetes.io/pod-name``) on a fixed address of the node network: the host
    name in the member's configuration, reachable from the other cluster over the link. On
    vSphere MetalLB gives the address (``loadBalancerIPs``), on AWS the load balancer
    controller (an internal NLB with ``private-ipv4-addresses``)."""
    cloud = opts.get("cloud", "vsphere")
    labels = {"app": "mongo"}
    out = [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "mongo", "namespace": SHOP_NS, "labels": dict(labels)},
         "spec": {"clusterIP": "None", "selector": dict(labels),
                  "ports": [{"name": "mongo", "port": MONGO_PORT, "targetPort": "mongo"}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "mongo", "namespace": SHOP_NS, "labels": dict(labels)},
         "spec": {"serviceName": "mongo", "replicas": MONGO_MEMBERS,
                  "podManagementPolicy": "Parallel",
                  "selector": {"matchLabels": dict(labels)},
                  "template": {"metadata": {"labels": dict(labels)}, "spec": {
                      "terminationGracePeriodSeconds": 30,
                      "containers": [{
                          "name": "mongod", "image": MONGO_IMAGE,
                          "args": ["--replSet", MONGO_SET, "--bind_ip_all",
                                   "--port", str(MONGO_PORT), "--dbpath", "/data/db"],
                          "ports": [{"name": "mongo", "containerPort": MONGO_PORT}],
                          "readinessProbe": {"tcpSocket": {"port": MONGO_PORT},
                                             "periodSeconds": 2},
                          "volumeMounts": [{"name": "data", "mountPath": "/data/db"}]}]}},
                  "volumeClaimTemplates": [{
                      "metadata": {"name": "data"},
                      "spec": {"accessModes": ["ReadWriteOnce"],
                               "resources": {"requests": {"storage": "1Gi"}}}}]}}]
    for i, host in enumerate(mongo_hosts(opts, cloud)):
        address = host.rsplit(":", 1)[0]
        ann = {"metallb.universe.tf/loadBalancerIPs": address} if cloud == "vsphere" else {
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
            "service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses": address}
        out.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "mongo-%d" % i, "namespace": SHOP_NS, "labels": dict(labels),
                         "annotations": ann},
            "spec": {"type": "LoadBalancer",
                     "selector": {"statefulset.kubernetes.io/pod-name": "mongo-%d" % i},
                     "ports": [{"name": "mongo", "port": MONGO_PORT, "targetPort": "mongo"}]}})
    return out


def base_namespaces():
    return [_ns(n) for n in ("default", "kube-system", "kube-public", "kube-node-lease")]


def derived_id(base, index):
    """A KKP-style cluster id (10 lower-case letters and digits) for the index-th extra cluster,
    the same on every lab up."""
    digest = int(hashlib.sha256(("%s/%d" % (base, index)).encode()).hexdigest(), 16)
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's util/rand, which KKP's ids use
    out = ""
    for _i in range(10):
        digest, rem = divmod(digest, len(alphabet))
        out += alphabet[rem]
    return out


NEW_POD_CIDR = "172.26.0.0/16"
NEW_SERVICE_CIDR = "10.240.32.0/20"


def cluster_specs(opts):
    """The user clusters of this lab, each a dict of the fixture options for it: the first is
    the classic one (``user``: user.kubeconfig, port 7443, app.example.test). ``clusters`` N
    adds ``user2`` .. ``userN`` (their own ids, API servers, NodePorts, nodes, echo app, load
    balancer and record ``app<k>.example.test``; the same pod and service CIDRs, as KKP gives
    every cluster by default). World ``move`` adds ``new``: a cluster on AWS with
    ingress-nginx and an empty ``shop`` namespace, its own pod and service CIDRs unless
    ``same_pod_cidr``; the old cluster then also runs the shop app."""
    first = dict(opts, index=0, name="user", cloud="vsphere", port=7443)
    if opts.get("world") == "move":
        first["shop_app"] = first["mongo"] = True
        new = dict(opts, index=1, name="new", cloud="aws", port=7444,
                   cluster_id=derived_id(opts["cluster_id"], 1), human_name="move-target",
                   md_name="new-aws-workers", echo_app=False, app_namespace=SHOP_NS,
                   app_host=None, vpn_node_port=opts["vpn_node_port"] + 1,
                   apiserver_node_port=opts["apiserver_node_port"] + 1,
                   pod_cidr=opts["pod_cidr"] if opts.get("same_pod_cidr") else NEW_POD_CIDR,
                   service_cidr=NEW_SERVICE_CIDR, konnectivity=False, mongo=True)
        return [first, new]
    out = [first]
    for k in range(1, int(opts.get("clusters") or 1)):
        out.append(dict(opts, index=k, name="user%d" % (k + 1), cloud="vsphere", port=7443 + k,
                        cluster_id=derived_id(opts["cluster_id"], k),
                        human_name="to-migrate-%d" % (k + 1),
                        app_host="app%d.example.test" % (k + 1),
                        vpn_node_port=opts["vpn_node_port"] + k,
                        apiserver_node_port=opts["apiserver_node_port"] + k))
    return out
