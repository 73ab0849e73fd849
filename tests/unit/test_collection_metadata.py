"""Guards on the collection's metadata: action groups, dependencies, build_ignore."""

import os
import re

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _yaml(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _modules():
    mod_dir = os.path.join(ROOT, "plugins", "modules")
    if not os.path.isdir(mod_dir):
        return {}
    out = {}
    for name in sorted(os.listdir(mod_dir)):
        if name.endswith(".py") and not name.startswith("_"):
            with open(os.path.join(mod_dir, name), encoding="utf-8") as fh:
                out[name[:-3]] = fh.read()
    return out


def test_runtime_metadata():
    runtime = _yaml("meta/runtime.yml")
    assert re.match(r">=\s*2\.\d+", runtime["requires_ansible"])
    assert "k8s" in runtime["action_groups"]


def test_action_group_lists_exactly_the_modules_with_kubernetes_options():
    group = set(_yaml("meta/runtime.yml")["action_groups"]["k8s"] or [])
    modules = _modules()
    takes_k8s = {name for name, src in modules.items()
                 if "kubernetes.core.k8s_auth_options" in src or "AUTH_ARG_SPEC" in src}
    assert group == takes_k8s, "meta/runtime.yml action_groups.k8s must list exactly the " \
        "modules that take the shared Kubernetes options"
    assert group <= set(modules)


def test_seed_and_user_groups_split_the_kubernetes_modules():
    groups = _yaml("meta/runtime.yml")["action_groups"]
    seed, user = set(groups["seed"]), set(groups["user"])
    assert seed | user == set(groups["k8s"]) and not seed & user
    modules = _modules()
    # seed modules address one KKP cluster: they take the `cluster` option, user modules do not
    for name in seed:
        assert "cloudhop.k8s_migration.kkp_cluster" in modules[name], name
    for name in user:
        assert "kkp_cluster" not in modules[name], name


def _used_collections():
    used = set()
    for base in ("playbooks", "roles", "tests/integration", "molecule"):
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, base)):
            for f in files:
                if f.endswith((".yml", ".yaml")):
                    with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                        text = fh.read()
                    used |= set(re.findall(r"^\s*-?\s*([a-z_]+\.[a-z_]+)\.[a-z_0-9]+:\s*$",
                                           text, re.M))
                    used |= set(re.findall(r"group/([a-z_]+\.[a-z_]+)\.", text))
    return used - {"ansible.builtin", "cloudhop.k8s_migration"}


def test_every_collection_used_is_a_declared_dependency():
    deps = set(_yaml("galaxy.yml")["dependencies"])
    used = _used_collections()
    assert "kubernetes.core" in used
    missing = used - deps
    assert not missing, "collections used but not in galaxy.yml dependencies: %s" % missing


def test_build_ignore_keeps_the_lab_and_caches_out():
    ignore = _yaml("galaxy.yml")["build_ignore"]
    for path in (".lab", ".venv", "tests/lab", "tests/output", ".collections"):
        assert path in ignore
