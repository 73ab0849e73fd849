"""IngressClasses in the lab as in Kubernetes and ingress-nginx 1.x: which controller serves
an Ingress (its flags and the IngressClass's controller), the DefaultIngressClass admission
plugin, and the API's rules for the kind. A lab that let every controller of a class name
serve an Ingress without the IngressClass would pass a move whose proxy a real ingress-nginx
ignores."""

import time

import pytest

from cloudhop_lab import errors
from cloudhop_lab.dataplane.ingress import IngressAgent, ingress_class, serves

NS = "kube-system"  # the conftest api fixture's namespace
DEFAULT = "ingressclass.kubernetes.io/is-default-class"


def _pod(*args):
    return {"spec": {"containers": [{"name": "controller", "args": list(args)}]}}


def _ing(cls=None, annotation=None):
    meta = {"name": "x", "namespace": NS}
    if annotation:
        meta["annotations"] = {"kubernetes.io/ingress.class": annotation}
    return {"metadata": meta, "spec": {"ingressClassName": cls} if cls else {}}


def test_flags_as_ingress_nginx_reads_them():
    assert ingress_class(_pod("/nginx-ingress-controller")) == (
        "nginx", "k8s.io/ingress-nginx", False, False, "")
    assert ingress_class(_pod("/nginx-ingress-controller", "--ingress-class=proxy",
                              "--controller-class", "k8s.io/proxy",
                              "--watch-ingress-without-class=true",
                              "--watch-namespace=shop")) == (
        "proxy", "k8s.io/proxy", True, False, "shop")


def test_an_ingress_is_served_by_the_controller_its_ingressclass_names():
    classes = {"nginx": "k8s.io/ingress-nginx", "proxy": "k8s.io/proxy"}
    nginx = ingress_class(_pod())
    proxy = ingress_class(_pod("--ingress-class=proxy", "--controller-class=k8s.io/proxy"))
    assert serves(nginx, _ing("nginx"), classes) and not serves(proxy, _ing("nginx"), classes)
    assert serves(proxy, _ing("proxy"), classes) and not serves(nginx, _ing("proxy"), classes)
    # the class's name alone is not enough: the IngressClass must exist and name the controller
    assert not serves(proxy, _ing("proxy"), {"nginx": "k8s.io/ingress-nginx"})
    assert not serves(proxy, _ing("proxy"), {"proxy": "k8s.io/ingress-nginx"})
    by_name = ingress_class(_pod("--ingress-class=proxy", "--controller-class=k8s.io/proxy",
                                 "--ingress-class-by-name=true"))
    assert serves(by_name, _ing("proxy"), {})
    # the deprecated annotation is matched against --ingress-class
    assert serves(proxy, _ing(annotation="proxy"), {}) and not serves(
        nginx, _ing(annotation="proxy"), classes)
    # no class at all: only a controller that watches Ingresses without class
    assert not serves(nginx, _ing(), classes)
    assert serves(ingress_class(_pod("--watch-ingress-without-class=true")), _ing(), classes)
    # --watch-namespace: only that namespace's Ingresses
    scoped = ingress_class(_pod("--ingress-class=proxy", "--controller-class=k8s.io/proxy",
                                "--watch-namespace=other"))
    assert not serves(scoped, _ing("proxy"), classes)
    assert serves(scoped, dict(_ing("proxy"), metadata={"name": "x", "namespace": "other"}),
                  classes)


def _class(api, name, default=False, controller="k8s.io/ingress-nginx"):
    meta = {"name": name}
    if default:
        meta["annotations"] = {DEFAULT: "true"}
    return api.create(api.rt("networking.k8s.io", "v1", "ingressclasses"), None,
                      {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                       "metadata": meta, "spec": {"controller": controller}})


def _create_ingress(api, name, **spec):
    rules = [{"host": "a.example.test", "http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]
    return api.create(api.rt("networking.k8s.io", "v1", "ingresses"), NS, {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
        "spec": dict(spec, rules=rules)})


def test_default_ingress_class_admission(api):
    _class(api, "nginx")
    assert "ingressClassName" not in _create_ingress(api, "a")["spec"]
    _class(api, "public", default=True)
    assert _create_ingress(api, "b")["spec"]["ingressClassName"] == "public"
    assert _create_ingress(api, "c", ingressClassName="nginx")["spec"][
        "ingressClassName"] == "nginx"
    time.sleep(1.1)  # creationTimestamp has seconds: the newer default is the later second
    _class(api, "newer", default=True)
    assert _create_ingress(api, "d")["spec"]["ingressClassName"] == "newer"


def test_ingress_class_needs_a_controller_that_does_not_change(api):
    rt = api.rt("networking.k8s.io", "v1", "ingressclasses")
    for spec in ({}, {"controller": "nginx"}):
        with pytest.raises(errors.ApiError) as err:
            api.create(rt, None, {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                                  "metadata": {"name": "bad"}, "spec": spec})
        assert err.value.code == 422
        assert err.value.details["causes"][0]["field"] == "spec.controller"
    obj = _class(api, "nginx")
    obj["spec"]["controller"] = "k8s.io/other"
    with pytest.raises(errors.ApiError) as err:
        api.update(rt, None, "nginx", obj)
    assert err.value.code == 422 and "immutable" in err.value.details["causes"][0]["message"]


class _Proxy:
    def __init__(self, alive, loaded):
        self._alive, self.loaded = alive, loaded

    def alive(self):
        return self._alive


def test_an_ingress_pod_is_ready_once_its_proxy_has_loaded_a_configuration():
    """ingress-nginx's readiness probe passes once nginx runs its configuration: a proxy
    process just spawned, not listening yet, is not ready (kube-proxy would send it
    connections it refuses)."""
    ctl = IngressAgent.__new__(IngressAgent)
    ctl.pods = {"a": ("n", _Proxy(True, None), "10.0.0.1", "nginx"),
                "b": ("n", _Proxy(True, "cfg"), "10.0.0.2", "nginx"),
                "c": ("n", _Proxy(False, "cfg"), "10.0.0.3", "nginx")}
    assert [u for u in ("a", "b", "c", "gone") if ctl.pod_ready(u)] == ["b"]
