# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of modules that address one KKP Cluster in the seed.
    DOCUMENTATION = r"""
options:
  cluster:
    description:
      - The KKP cluster ID, i.e. the C(metadata.name) of the seed's C(Cluster) object (for example
        C(x8p9sk2tzv)).
      - An unknown ID fails with the list of clusters the seed has.
    type: str
    required: true
  api_group:
    description:
      - API group of the C(Cluster) kind.
      - C(auto) asks the seed's discovery and uses C(kubermatic.k8c.io) (KKP 2.21 and newer) or,
        failing that, the legacy C(kubermatic.k8s.io).
    type: str
    choices: [auto, kubermatic.k8c.io, kubermatic.k8s.io]
    default: auto
notes:
  - The Kubernetes connection options address the B(seed) cluster.
"""
