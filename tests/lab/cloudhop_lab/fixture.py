"""The seed fixture: an OpenVPN-based KKP user cluster on vSphere (kkp-migration-facts.md), or
with option konnectivity a Konnectivity-based one: no openvpn-server in the seed and no
openvpn-client in the user cluster (a konnectivity-agent instead), so the migration must bring
its own VPN hub."""

import base64
import ipaddress

from .controllers.kkp import openvpn_deployment
from .controllers.machines import node_info

DEFAULTS = {
    "cluster_id": "x8p9sk2tzv",
    "project_id": "k7xz5qd2wm",
    "legacy_api": False,
    "konnectivity": False,
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


def seed_objects(opts, pki_material):
    cid, pid = opts["cluster_id"], opts["project_id"]
    group = KKP_GROUPS[opts["legacy_api"]]
    cns = "cluster-" + cid
    cred_name = "credential-vsphere-" + cid
    cluster = {
        "apiVersion": group + "/v1", "kind": "Cluster",
        "metadata": {"name": cid, "labels": {"project-id": pid}},
        "spec": {
            "humanReadableName": "to-migrate", "version": opts["kubelet_version"],
            "exposeStrategy": "NodePort", "pause": False, "enableUserSSHKeyAgent": True,
            "containerRuntime": "containerd",
            "cloud": {"dc": "vsphere-dc1", "vsphere": {
                "credentialsReference": {"name": cred_name, "namespace": "kubermatic"},
                "username": "", "password": "",
                "folder": "/dc1/vm/kubermatic/" + cid, "datastore": "datastore1",
                "vmNetName": "kubermatic-workers", "storagePolicy": "",
                "infraManagementUser": {"username": "", "password": ""}}},
            "clusterNetwork": {"pods": {"cidrBlocks": [opts["pod_cidr"]]},
                               "services": {"cidrBlocks": [opts["service_cidr"]]},
                               "dnsDomain": "cluster.local", "proxyMode": "ipvs",
                               "ipFamily": "IPv4", "nodeCidrMaskSizeIPv4": 24,
                               "nodeLocalDNSCacheEnabled": True,
                               "konnectivityEnabled": bool(opts["konnectivity"])},
        },
    }
    return [
        cluster_crd(opts["legacy_api"]),
        _ns("kubermatic"), _ns(cns),
        {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": "seed-node-1", "labels": {"kubernetes.io/hostname": "seed-node-1"}},
         "spec": {"podCIDR": str(list(ipaddress.ip_network(opts["seed_pod_cidr"])
                                      .subnets(new_prefix=24))[0])},
         "status": {"addresses": [{"type": "InternalIP", "address": opts["seed_public_ip"]}],
                    "nodeInfo": node_info("00000000-0000-4000-8000-5eed00000001",
                                          opts["kubelet_version"], "ubuntu"),
                    "conditions": [{"type": "Ready", "status": "True",
                                    "reason": "KubeletReady"}]}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": cred_name, "namespace": "kubermatic",
                      "labels": {"name": cred_name, "project-id": pid}},
         "type": "Opaque",
         "data": {"username": _b64(opts["vsphere_username"]),
                  "password": _b64(opts["vsphere_password"])}},
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
                        "cloudProvider": "vsphere",
                        "cloudProviderSpec": {
                            "templateVMName": "ubuntu-22.04-server-cloudimg",
                            "cpus": 2, "memoryMB": 4096, "diskSizeGB": 50,
                            "datacenter": "dc1", "folder": "/dc1/vm/kubermatic/" + cid,
                            "vmNetName": "kubermatic-workers", "allowInsecure": False},
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
    host = opts["app_host"]
    underlay_mtu = 1500
    canal_labels = {"k8s-app": "canal"}
    vpn_labels = {"app": "openvpn-client"}
    echo = {"app": "echo"}
    ingress = {"app.kubernetes.io/name": "ingress-nginx",
               "app.kubernetes.io/component": "controller"}
    return machine_crds() + [
        _ns("ingress-nginx"), _ns("echo"),
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
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "echo", "namespace": "echo", "labels": echo},
         "spec": {"replicas": opts["app_replicas"], "selector": {"matchLabels": echo},
                  "template": {"metadata": {"labels": echo},
                               "spec": {"terminationGracePeriodSeconds": 10, "containers": [{
                                   "name": "echo", "image": "cloudhop/echo:lab",
                                   # graceful shutdown as zero-downtime apps do it: keep
                                   # serving until the endpoints have dropped the pod
                                   "lifecycle": {"preStop": {"exec": {
                                       "command": ["sleep", "2"]}}},
                                   "ports": [{"containerPort": 8080, "name": "http"}],
                                   "readinessProbe": {"httpGet": {"path": "/healthz",
                                                                  "port": 8080},
                                                      "periodSeconds": 1}}]}}}},
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
                  "rules": [{"host": host, "http": {"paths": [{
                      "path": "/", "pathType": "Prefix",
                      "backend": {"service": {"name": "echo",
                                              "port": {"number": 80}}}}]}}]}},
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
        # the ingress-nginx Helm chart's PDB (controller.minAvailable 1 when replicas > 1)
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": ingress}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx",
                      "labels": ingress,
                      "annotations": {"metallb.universe.tf/address-pool": "vsphere-public"}},
         "spec": {"type": "LoadBalancer", "selector": ingress,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                            {"name": "https", "port": 443, "targetPort": "https"}]}},
    ]


def base_namespaces():
    return [_ns(n) for n in ("default", "kube-system", "kube-public", "kube-node-lease")]
