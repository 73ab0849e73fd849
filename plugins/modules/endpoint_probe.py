#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: endpoint_probe
short_description: Probe an HTTP(S) endpoint repeatedly and gate on the success ratio
version_added: 0.1.0
description:
  - Sends I(attempts) requests to I(url), I(interval) seconds apart, and fails unless at least
    I(min_success_ratio) of them succeed. A request succeeds when it answers one of
    I(expected_status) and, if set, its body matches I(body_pattern).
  - I(resolve_to) connects to a fixed IP while the URL's host name (or I(host_header)) is sent as
    C(Host) and used for TLS SNI and the certificate check, like C(curl --resolve); this probes a
    new load balancer before DNS points at it.
  - With I(wait_timeout), it first waits up to that many seconds for one request to succeed
    (one request every 0.2 s), then counts I(attempts) requests. A new load balancer gets its
    address before its health checks pass; the wait is not counted against the success ratio.
  - Returns latency percentiles, failures and the last samples. Read-only, so it runs in check
    mode too.
author:
  - cloudhop contributors (@cloudhop)
options:
  url:
    description: The URL, C(http://) or C(https://).
    type: str
    required: true
  resolve_to:
    description: Connect to this IP address instead of resolving the URL's host.
    type: str
  host_header:
    description: C(Host) header to send (default the URL's host).
    type: str
  sni:
    description: TLS server name (default the C(Host) header).
    type: str
  method:
    description: HTTP method.
    type: str
    default: GET
    choices: [GET, HEAD]
  expected_status:
    description: Status codes that count as success.
    type: list
    elements: int
    default: [200]
  body_pattern:
    description: A regular expression the body must match (Python C(re.search)).
    type: str
  attempts:
    description: Number of requests.
    type: int
    default: 10
  interval:
    description: Seconds between requests.
    type: float
    default: 0.5
  timeout:
    description: Seconds per request (connect and read).
    type: float
    default: 5
  min_success_ratio:
    description: Fraction of requests that must succeed, between 0 and 1.
    type: float
    default: 1.0
  wait_timeout:
    description:
      - Seconds to wait for a first successful request before the counted requests start.
      - C(0) (the default) counts from the first request.
    type: float
    default: 0
  validate_certs:
    description: Verify the server certificate.
    type: bool
    default: true
  ca_path:
    description: CA bundle for the certificate check.
    type: path
attributes:
  check_mode:
    description: Probes are read-only and run in check mode too.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
"""

EXAMPLES = r"""
- name: The new AWS load balancer serves the app before DNS points at it
  cloudhop.k8s_migration.endpoint_probe:
    url: https://app.example.com/healthz
    resolve_to: "{{ new_lb_ip }}"
    body_pattern: ok
    attempts: 20
    interval: 0.25
    min_success_ratio: 1.0
  register: probe

- name: A new load balancer serves the app, after up to 10 minutes for its health checks to pass
  cloudhop.k8s_migration.endpoint_probe:
    url: http://app.example.com/
    resolve_to: "{{ new_lb_ip }}"
    wait_timeout: 600
    attempts: 20
    interval: 0.1
- name: Show latency
  ansible.builtin.debug:
    msg: "p50 {{ probe.latency_ms.p50 }} ms, p99 {{ probe.latency_ms.p99 }} ms"
"""

RETURN = r"""
requests:
  description: Number of requests sent.
  returned: always
  type: int
  sample: 20
successes:
  description: Number of successful requests.
  returned: always
  type: int
  sample: 20
failures:
  description: Number of failed requests.
  returned: always
  type: int
  sample: 0
success_ratio:
  description: successes / requests.
  returned: always
  type: float
  sample: 1.0
passed:
  description: Whether I(min_success_ratio) was reached.
  returned: always
  type: bool
  sample: true
latency_ms:
  description: Latency of the successful requests, in milliseconds (C(p50), C(p99), C(max)).
  returned: always
  type: dict
  sample: {"p50": 2.1, "p99": 5.3, "max": 5.3}
failed_samples:
  description: The first failed requests with their attempt number and error.
  returned: always
  type: list
  elements: dict
  sample: [{"attempt": 3, "ok": false, "status": 503, "error": "HTTP 503, expected [200]", "ms": 1.2}]
waited:
  description:
    - The wait for a first successful request (I(wait_timeout)), C(requests) sent while waiting,
      C(waited_s) seconds, and C(last_error) the last failure seen while waiting.
  returned: when I(wait_timeout) is above 0
  type: dict
  sample: {"ok": true, "requests": 14, "waited_s": 2.8, "last_error": "RemoteDisconnected: Remote end closed connection without response"}
samples:
  description: The last requests.
  returned: always
  type: list
  elements: dict
  sample: [{"ok": true, "status": 200, "error": null, "ms": 2.0}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, run_module)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.probe import (
    evaluate, plan, run_probe, ssl_context, wait_for_answer)


def run(module):
    p = module.params
    req = plan(p)
    context = ssl_context(p["validate_certs"], p["ca_path"]) if req["scheme"] == "https" \
        else None
    waited = wait_for_answer(req, p["wait_timeout"], context) if p["wait_timeout"] else None
    if waited is not None and not waited["ok"]:
        raise MigrationError("%s (via %s): no request succeeded in %.0f s of waiting (%d "
                             "requests, wait_timeout %s); last failure: %s" % (
                                 p["url"], req["connect"], waited["waited_s"],
                                 waited["requests"], p["wait_timeout"], waited["last_error"]),
                             waited=waited)
    result = evaluate(run_probe(req, p["attempts"], p["interval"], context),
                      p["min_success_ratio"])
    if waited is not None:
        result["waited"] = waited
    if not result["passed"]:
        first = result["failed_samples"][0]["error"] if result["failed_samples"] else "no requests"
        raise MigrationError("%s (via %s): %d of %d requests succeeded (%.0f%%, need %.0f%%); "
                             "first failure: %s" % (p["url"], req["connect"], result["successes"],
                                                    result["requests"],
                                                    100 * result["success_ratio"],
                                                    100 * p["min_success_ratio"], first),
                             **result)
    return dict(result, changed=False)


def main():
    module = AnsibleModule(argument_spec=dict(
        url={"type": "str", "required": True},
        resolve_to={"type": "str"},
        host_header={"type": "str"},
        sni={"type": "str"},
        method={"type": "str", "default": "GET", "choices": ["GET", "HEAD"]},
        expected_status={"type": "list", "elements": "int", "default": [200]},
        body_pattern={"type": "str"},
        attempts={"type": "int", "default": 10},
        interval={"type": "float", "default": 0.5},
        timeout={"type": "float", "default": 5},
        min_success_ratio={"type": "float", "default": 1.0},
        wait_timeout={"type": "float", "default": 0},
        validate_certs={"type": "bool", "default": True},
        ca_path={"type": "path"},
    ), supports_check_mode=True)
    run_module(module, run)


if __name__ == "__main__":
    main()
