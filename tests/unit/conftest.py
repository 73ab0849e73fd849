"""Make ``ansible_collections.cloudhop.k8s_migration`` (and the bundled collections such as
kubernetes.core) importable for unit tests, the way ansible-test units does: with Ansible's
collection loader over .collections and the ansible package's collections."""

import os

import ansible
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_PATHS = [os.path.join(ROOT, ".collections"),
          os.path.join(os.path.dirname(os.path.dirname(ansible.__file__)))]
_AnsibleCollectionFinder(paths=_PATHS)._install()  # pylint: disable=protected-access
