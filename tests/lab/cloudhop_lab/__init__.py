"""cloudhop lab: a digital twin of a KKP migration (emulated API servers, controllers, data plane).

This package is test infrastructure. It is not part of the built collection (see galaxy.yml
build_ignore) and it never runs on a real cluster.
"""
