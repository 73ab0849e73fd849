"""Whether the ingress phase adds a second LoadBalancer Service, as preflight and the ingress
role both ask it (filter ingress_lb_service)."""

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import ingress
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.filter.migration import FilterModule

PLAIN = {"metadata": {"name": "ingress-nginx-controller", "annotations": {"a.b/c": "d"}},
         "spec": {"type": "LoadBalancer"}}
METALLB = {"metadata": {"name": "ingress-nginx-controller",
                        "annotations": {"metallb.universe.tf/loadBalancerIPs": "10.2.0.82"}},
           "spec": {"type": "LoadBalancer"}}
CLASSED = {"metadata": {"name": "ingress-nginx-controller"},
           "spec": {"type": "LoadBalancer", "loadBalancerClass": "kube-vip.io/kube-vip-class"}}


def test_auto_adds_one_only_beside_a_load_balancer_bound_to_the_old_cloud():
    assert not ingress.needs_second_service(PLAIN)
    assert ingress.needs_second_service(METALLB)
    assert ingress.needs_second_service(CLASSED)
    # an annotation that merely mentions metallb further in does not bind the Service
    assert not ingress.needs_second_service(
        {"metadata": {"annotations": {"example.com/metallb.note": "x"}}})


def test_always_and_never_override_and_anything_else_is_refused():
    assert ingress.needs_second_service(PLAIN, "always")
    assert not ingress.needs_second_service(METALLB, "never")
    with pytest.raises(MigrationError):
        ingress.needs_second_service(PLAIN, "sometimes")


def test_the_filter_names_the_service():
    lb = FilterModule().filters()["ingress_lb_service"]
    assert lb(METALLB, "gcp") == {"name": "ingress-nginx-controller-gcp", "second": True}
    assert lb(PLAIN, "aws") == {"name": "ingress-nginx-controller", "second": False}
