"""What a lab API server's registries do on a write besides validation: a created
CustomResourceDefinition's kind is added to discovery (and served at once), and a Service gets
its cluster IP and node ports from the service range and the node-port range, as kube-apiserver's
allocators give them. ``Api`` inherits these; they use its store and registry."""

from .kinds import ResourceType
from .podutil import now_iso


class Allocation:
    """Mixed into ``Api``."""

    def _register_crd(self, crd):
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        name = crd["metadata"]["name"]
        self.registry.remove_crd(name)
        for ver in spec.get("versions") or []:
            if not ver.get("served", True):
                continue
            subs = ver.get("subresources") or {}
            schema = (ver.get("schema") or {}).get("openAPIV3Schema")
            self.registry.add(ResourceType(
                spec["group"], ver["name"], names["plural"], names["kind"],
                spec.get("scope") == "Namespaced", singular=names.get("singular"),
                short_names=names.get("shortNames") or (), status="status" in subs,
                scale=subs.get("scale"), builtin=False, categories=names.get("categories") or (),
                schema=schema, crd_name=name))
        status = crd.setdefault("status", {})
        status["acceptedNames"] = dict(names)
        status["storedVersions"] = [v["name"] for v in spec.get("versions") or []
                                    if v.get("storage")]
        status["conditions"] = [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now_iso()},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now_iso()}]

    def _allocate_service(self, svc, dry_run=False, old=None):
        spec = svc.setdefault("spec", {})
        svc_rt = self.registry.get("", "v1", "services")
        used_ips = {s["spec"].get("clusterIP") for s in self.data[svc_rt.key].values()}
        used_ports = {p.get("nodePort") for s in self.data[svc_rt.key].values()
                      for p in s["spec"].get("ports") or []}
        if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
            for host in list(self.service_net.hosts())[9:]:
                if str(host) not in used_ips:
                    spec["clusterIP"] = str(host)
                    break
            spec["clusterIPs"] = [spec["clusterIP"]]
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            old_ports = {p.get("port"): p.get("nodePort")
                         for p in ((old or {}).get("spec") or {}).get("ports") or []}
            for p in spec.get("ports") or []:
                if not p.get("nodePort"):
                    p["nodePort"] = old_ports.get(p.get("port")) or next(
                        n for n in range(30000, 32768) if n not in used_ports)
                    used_ports.add(p["nodePort"])
        del dry_run
