"""The move's Ingresses (filters move_ingresses, move_ingress_problems) for the shop's two
Ingresses: which path goes where in each cluster as Services move, what the proxy Ingresses
carry and what they must not (TLS, the TLS-only annotations), and the Ingresses refused."""

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.filter.migration import FilterModule
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import move_ingress

F = FilterModule().filters()


def _path(path, service, port=80):
    return {"path": path, "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": port}}}}


SHOP = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "shop", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                     "labels": {"app": "shop"},
                     "annotations": {"nginx.ingress.kubernetes.io/ssl-redirect": "false",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{}",
                                     "nginx.ingress.kubernetes.io/proxy-body-size": "8m"}},
        "spec": {"ingressClassName": "nginx",
                 "tls": [{"hosts": ["shop.example.test"], "secretName": "shop-tls"}],
                 "rules": [{"host": "shop.example.test", "http": {"paths": [
                     _path("/", "web"), _path("/cart", "cart"), _path("/static", "static")]}}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.2.0.80"}]}}}
API = {"metadata": {"name": "api"},
       "spec": {"ingressClassName": "nginx",
                "rules": [{"host": "api.example.test", "http": {"paths": [
                    _path("/", "api", 8080), _path("/static", "static")]}}]}}


def _routes(manifest):
    return {(r["host"], p["path"]): (p["backend"]["service"]["name"],
                                     p["backend"]["service"]["port"]["number"])
            for r in manifest["spec"]["rules"] for p in r["http"]["paths"]}


def originals():
    return F["move_ingresses"]([SHOP, API], "original")


def test_original_keeps_what_the_move_needs_and_nothing_of_the_server():
    shop = originals()[0]
    assert shop["name"] == "shop" and shop["labels"] == {"app": "shop"}
    assert "kubectl.kubernetes.io/last-applied-configuration" not in shop["annotations"]
    assert shop["annotations"]["nginx.ingress.kubernetes.io/ssl-redirect"] == "false"
    assert set(shop) == {"name", "labels", "annotations", "spec"}
    assert shop["spec"]["tls"][0]["secretName"] == "shop-tls"
    assert sorted({p["service"] for p in F["move_ingress_paths"](originals()[1:])}) == [
        "api", "static"]


def test_new_front_sends_what_has_not_moved_to_the_proxy():
    front = F["move_ingresses"](originals(), "new_front", ["cart"], "cloudhop-move-old")
    shop, api = front
    assert _routes(shop) == {("shop.example.test", "/"): ("cloudhop-move-old", 80),
                             ("shop.example.test", "/cart"): ("cart", 80),
                             ("shop.example.test", "/static"): ("cloudhop-move-old", 80)}
    # the new cluster terminates TLS with the same Secret, under the same name and class
    assert shop["metadata"]["name"] == "shop" and shop["spec"]["tls"] == SHOP["spec"]["tls"]
    assert shop["spec"]["ingressClassName"] == "nginx"
    assert shop["metadata"]["annotations"]["nginx.ingress.kubernetes.io/ssl-redirect"] == "false"
    assert _routes(api)[("api.example.test", "/")] == ("cloudhop-move-old", 80)
    # the original port of a moved path is kept
    moved = F["move_ingresses"](originals(), "new_front", ["api", "static"], "cloudhop-move-old")
    assert _routes(moved[1]) == {("api.example.test", "/"): ("api", 8080),
                                 ("api.example.test", "/static"): ("static", 80)}
    classed = F["move_ingresses"](originals(), "new_front", [], "p", ingress_class="public")
    assert classed[0]["spec"]["ingressClassName"] == "public"
    # a deprecated class annotation goes with an explicit class (the API refuses a mismatch)
    legacy = dict(originals()[1], annotations={"kubernetes.io/ingress.class": "nginx"})
    legacy["spec"] = {k: v for k, v in legacy["spec"].items() if k != "ingressClassName"}
    out = F["move_ingresses"]([legacy], "new_front", [], "p", ingress_class="public")[0]
    assert "kubernetes.io/ingress.class" not in out["metadata"]["annotations"]


def test_old_front_sends_what_has_moved_across_the_link():
    shop = F["move_ingresses"](originals(), "old_front", ["web"], "cloudhop-move-new")[0]
    assert _routes(shop) == {("shop.example.test", "/"): ("cloudhop-move-new", 80),
                             ("shop.example.test", "/cart"): ("cart", 80),
                             ("shop.example.test", "/static"): ("static", 80)}
    # nothing moved: the old cluster's Ingresses as they were
    same = F["move_ingresses"](originals(), "old_front", [], "cloudhop-move-new")
    assert [m["spec"] for m in same] == [SHOP["spec"], API["spec"]]


def test_proxy_ingresses_are_plain_http_of_the_proxy_class():
    old = F["move_ingresses"](originals(), "proxy", [], proxy_class="cloudhop-proxy")
    assert [m["metadata"]["name"] for m in old] == ["cloudhop-proxy-shop", "cloudhop-proxy-api"]
    shop = old[0]
    assert shop["spec"]["ingressClassName"] == "cloudhop-proxy" and "tls" not in shop["spec"]
    assert _routes(shop) == _routes({"spec": SHOP["spec"]})
    assert "nginx.ingress.kubernetes.io/ssl-redirect" not in shop["metadata"]["annotations"]
    assert shop["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "8m"
    assert shop["metadata"]["annotations"][move_ingress.ORIGIN] == "shop"
    assert shop["metadata"]["labels"][move_ingress.PROXY_LABEL] == "true"
    # the new cluster's proxy: only what has moved; nothing when nothing has
    assert F["move_ingresses"](originals(), "proxy", [], proxy_class="p", only_moved=True) == []
    new = F["move_ingresses"](originals(), "proxy", ["static"], proxy_class="p", only_moved=True)
    assert [_routes(m) for m in new] == [{("shop.example.test", "/static"): ("static", 80)},
                                         {("api.example.test", "/static"): ("static", 80)}]


def test_ingresses_that_cannot_be_proxied_are_named():
    rewrite = dict(originals()[1], annotations={
        "nginx.ingress.kubernetes.io/rewrite-target": "/$2"})
    resource = {"name": "files", "spec": {"rules": [{"http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"resource": {"kind": "Bucket", "name": "b"}}}]}}]}}
    problems = F["move_ingress_problems"]([originals()[0], rewrite, resource])
    assert len(problems) == 2
    assert "Ingress api has nginx.ingress.kubernetes.io/rewrite-target" in problems[0]
    assert "Ingress files has a path / with a resource backend" in problems[1]
    assert F["move_ingress_problems"](originals()) == []
    with pytest.raises(Exception, match="unknown Ingress view"):
        F["move_ingresses"](originals(), "sideways")


def test_paths_are_each_host_and_path_once_with_its_service():
    every = F["move_ingress_paths"](originals())
    assert [(p["host"], p["path"], p["service"], p["tls"]) for p in every] == [
        ("api.example.test", "/", "api", False), ("api.example.test", "/static", "static", False),
        ("shop.example.test", "/", "web", True), ("shop.example.test", "/cart", "cart", True),
        ("shop.example.test", "/static", "static", True)]
    assert [p["path"] for p in F["move_ingress_paths"](originals(), ["static"])] == [
        "/static", "/static"]


class _Lazy(dict):
    """Stands in for ansible-core 2.19's lazy containers, whose deep copy drags the templar and
    every variable along: copying one is what made a move's Ingress tasks take 10 s each."""

    def __deepcopy__(self, memo):
        raise AssertionError("a filter deep-copied its input as Ansible handed it over")


class _LazyList(list):
    def __deepcopy__(self, memo):
        raise AssertionError("a filter deep-copied its input as Ansible handed it over")


def _lazy(value):
    if isinstance(value, dict):
        return _Lazy((k, _lazy(v)) for k, v in value.items())
    if isinstance(value, list):
        return _LazyList(_lazy(v) for v in value)
    return value


def test_filters_work_on_plain_copies_of_what_ansible_hands_them():
    lazy = _lazy(originals())
    for view, moved in (("new_front", ["cart"]), ("old_front", ["web"]), ("proxy", ["web"])):
        plain = F["move_ingresses"](originals(), view, moved, "cloudhop-move-x",
                                    proxy_class="cloudhop-proxy")
        assert F["move_ingresses"](lazy, view, _LazyList(moved), "cloudhop-move-x",
                                   proxy_class="cloudhop-proxy") == plain
    out = F["move_ingresses"](lazy, "new_front", ["cart"], "cloudhop-move-old")
    assert not isinstance(out[0]["spec"], _Lazy)
    assert not isinstance(out[0]["spec"]["rules"], _LazyList)
