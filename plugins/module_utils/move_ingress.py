# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ingresses of a cluster-to-cluster move, rendered from the app's original Ingresses (as
the old cluster had them before the move) and the Services moved so far. Pure functions over
plain dicts; the move's roles apply what they return with kubernetes.core.k8s.

Four views of one original Ingress:

``new_front``
    the new cluster's Ingress, same name, class and TLS: a path whose Service has moved goes
    to that Service, every other path to the proxy Service (``proxy_service``: selector-less,
    its endpoint the old cluster's proxy controller across the link).
``old_front``
    the old cluster's Ingress: a path whose Service has moved goes across the link to the new
    cluster's proxy (``proxy_service``), for clients that still resolve the old address; the
    other paths as they were.
``proxy``
    an Ingress of the proxy controllers' class (no TLS: the proxy hop is plain HTTP inside
    the link, TLS ends at the cluster the client reached), named ``cloudhop-proxy-<name>``:
    in the old cluster every path (``only_moved`` false), in the new one only the moved
    paths (``only_moved`` true; None when none has moved).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

PROXY_PREFIX = "cloudhop-proxy-"
PROXY_LABEL = "cloudhop.io/move-proxy"
ORIGIN = "cloudhop.io/move-origin"
# annotations that route or rewrite the request: at two hops they would apply twice
ROUTING = ("nginx.ingress.kubernetes.io/rewrite-target", "nginx.ingress.kubernetes.io/app-root",
           "nginx.ingress.kubernetes.io/permanent-redirect",
           "nginx.ingress.kubernetes.io/temporal-redirect",
           "nginx.ingress.kubernetes.io/configuration-snippet",
           "nginx.ingress.kubernetes.io/server-snippet",
           "nginx.ingress.kubernetes.io/backend-protocol")
# annotations of the TLS end only (the proxy hop has no TLS)
TLS_ONLY = ("nginx.ingress.kubernetes.io/ssl-redirect",
            "nginx.ingress.kubernetes.io/force-ssl-redirect")
DROP = ("kubectl.kubernetes.io/last-applied-configuration",)


def original(ingress):
    """What the move keeps of an Ingress read from the old cluster: name, labels, annotations
    (without kubectl's last-applied copy) and spec - never status, uid or versions."""
    meta = ingress.get("metadata") or {}
    annotations = dict((k, v) for k, v in (meta.get("annotations") or {}).items()
                       if k not in DROP)
    return {"name": meta.get("name"), "labels": dict(meta.get("labels") or {}),
            "annotations": annotations, "spec": copy.deepcopy(ingress.get("spec") or {})}


def problems(ingress):
    """Why an original Ingress cannot be proxied, as sentences (empty: it can)."""
    out = []
    name = ingress.get("name")
    routing = sorted(k for k in ingress.get("annotations") or {} if k in ROUTING)
    if routing:
        out.append("Ingress %s has %s: the proxy hop would apply it a second time; move this "
                   "Ingress by hand or drop the annotation." % (name, ", ".join(routing)))
    spec = ingress.get("spec") or {}
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            if not (path.get("backend") or {}).get("service"):
                out.append("Ingress %s has a path %s with a resource backend; the move proxies "
                           "Service backends only." % (name, path.get("path", "/")))
    if (spec.get("defaultBackend") or {}).get("resource"):
        out.append("Ingress %s has a resource defaultBackend; the move proxies Service backends "
                   "only." % name)
    return out


def _backend(service_name, port=80):
    return {"service": {"name": service_name, "port": {"number": port}}}


def _moved(backend, moved):
    return ((backend or {}).get("service") or {}).get("name") in moved


def _rules(spec, choose):
    """spec's rules with each path's backend replaced by choose(backend) (None: path dropped);
    rules left with no path are dropped."""
    rules = []
    for rule in spec.get("rules") or []:
        http = rule.get("http")
        if http is None:
            rules.append(copy.deepcopy(rule))
            continue
        paths = []
        for path in http.get("paths") or []:
            backend = choose(path.get("backend"))
            if backend is not None:
                paths.append(dict(copy.deepcopy(path), backend=backend))
        if paths:
            rules.append(dict(copy.deepcopy(rule), http={"paths": paths}))
    return rules


def render(ingress, view, moved, proxy_service=None, proxy_class=None, only_moved=False,
           ingress_class=None):
    """The manifest of one view (see the module's doc) of an original Ingress (``original``),
    or None when the view has no path. ``moved``: the Services moved so far."""
    if view not in ("new_front", "old_front", "proxy"):
        raise MigrationError("unknown Ingress view %r" % view)
    moved = set(moved or ())
    spec = ingress.get("spec") or {}
    name = ingress["name"]
    labels = dict(ingress.get("labels") or {})
    annotations = dict(ingress.get("annotations") or {})
    if view == "new_front":
        def choose(backend):
            return copy.deepcopy(backend) if _moved(backend, moved) else _backend(proxy_service)
        out_spec = dict(copy.deepcopy(spec), rules=_rules(spec, choose))
        if ingress_class:  # the class replaces a deprecated class annotation
            out_spec["ingressClassName"] = ingress_class
            annotations.pop("kubernetes.io/ingress.class", None)
    elif view == "old_front":
        def choose(backend):
            return _backend(proxy_service) if _moved(backend, moved) else copy.deepcopy(backend)
        out_spec = dict(copy.deepcopy(spec), rules=_rules(spec, choose))
    else:
        def choose(backend):
            return copy.deepcopy(backend) if not only_moved or _moved(backend, moved) else None
        out_spec = {"ingressClassName": proxy_class, "rules": _rules(spec, choose)}
        if spec.get("defaultBackend") and choose(spec["defaultBackend"]) is not None:
            out_spec["defaultBackend"] = copy.deepcopy(spec["defaultBackend"])
        if not out_spec["rules"] and "defaultBackend" not in out_spec:
            return None
        name = PROXY_PREFIX + name
        labels[PROXY_LABEL] = "true"
        annotations = dict((k, v) for k, v in annotations.items()
                           if k not in TLS_ONLY and k != "kubernetes.io/ingress.class")
        annotations[ORIGIN] = ingress["name"]
    if view != "proxy":
        if spec.get("defaultBackend"):
            out_spec["defaultBackend"] = choose(spec["defaultBackend"])
        if not out_spec["rules"] and not out_spec.get("defaultBackend"):
            return None
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": out_spec}


def render_all(ingresses, view, moved=None, proxy_service=None, proxy_class=None,
               only_moved=False, ingress_class=None):
    """``render`` for a list of originals, the views with no path left out; view
    ``original`` takes Ingress objects as read and returns their originals."""
    if view == "original":
        return [original(i) for i in ingresses or []]
    out = []
    for ing in ingresses or []:
        manifest = render(ing, view, moved, proxy_service, proxy_class, only_moved,
                          ingress_class)
        if manifest is not None:
            out.append(manifest)
    return out


def problems_all(ingresses):
    """``problems`` of a list of originals, in one list."""
    return [p for ing in ingresses or [] for p in problems(ing)]


def paths(ingresses, services=None):
    """Every (host, path) of the originals as {host, path, service, tls}, one each, sorted:
    the addresses the move's gates probe; with ``services`` only those of these Services.
    A rule without host is left out (DNS moves names); a path ``/`` is probed as ``/``."""
    out = {}
    for ing in ingresses or []:
        spec = ing.get("spec") or {}
        tls_hosts = set(h for t in spec.get("tls") or [] for h in t.get("hosts") or [])
        for rule in spec.get("rules") or []:
            host = rule.get("host")
            if not host:
                continue
            for path in (rule.get("http") or {}).get("paths") or []:
                service = ((path.get("backend") or {}).get("service") or {}).get("name")
                if services is not None and service not in services:
                    continue
                key = (host, path.get("path") or "/")
                out.setdefault(key, {"host": host, "path": key[1], "service": service,
                                     "tls": host in tls_hosts})
    return [out[k] for k in sorted(out)]
