"""Markers of the migration tests; the evidence of a failed one kept.

The next test's ``lab up`` starts its lab's directory afresh, so the logs that say why a test
failed (the probes' request logs, labd.log, every load balancer's and ingress proxy's HAProxy
session log, the audit logs, the VPN containers' logs, every namespace's half-open connection-tracking
entries) are copied, when a test fails, to
``$CLH_TEST_EVIDENCE/<time>-<test>`` (default ``/var/tmp/cloudhop-failures``; the last 10
kept); the failure report names the directory.
"""

import glob
import os
import shutil
import subprocess
import time

import pytest

from cloudhop_lab import cli

EVIDENCE = os.environ.get("CLH_TEST_EVIDENCE", "/var/tmp/cloudhop-failures")
KEEP = 10
PATTERNS = ("*.jsonl", "*summary.json", "labd.log", "ansible.log", "lab-up.json",
            "lb/*/haproxy.log", "ingress/*/haproxy.log",
            # the VPN's containers: the WireGuard node agents and hubs, the OpenVPN clients and hub
            "pods/*/wireguard.log", "seed-pods/*/wireguard.log", "pods/*/openvpn.log",
            "seed-pods/*/openvpn.log")


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_args(*args): extra options of `lab up` for the test's fresh lab")


def keep_evidence(name):
    """Copy the lab's logs to a directory of their own; its path, or None when none exist."""
    src = cli.lab_dir()
    files = sorted({f for p in PATTERNS for f in glob.glob(os.path.join(src, p))})
    if not files:
        return None
    dst = os.path.join(EVIDENCE, "%s-%s" % (time.strftime("%Y%m%dT%H%M%S"), name[:80]))
    for path in files:
        target = os.path.join(dst, os.path.relpath(path, src))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(path, target)
    _keep_half_open(dst)
    for old in sorted(glob.glob(os.path.join(EVIDENCE, "*")))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return dst


def _keep_half_open(dst):
    """Every lab namespace's connection-tracking entries still in SYN_SENT when the test failed
    (conntrack/<namespace>.txt): a reused source port follows such an entry to the endpoint it
    was DNATed to, even a pod gone since (docs/design.md, the node hooks' half-open timeout)."""
    for ns in cli.lab_namespaces():
        out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/nf_conntrack"],
                             capture_output=True, text=True, check=False).stdout
        half = [line for line in out.splitlines() if " SYN_SENT " in line]
        if half:
            os.makedirs(os.path.join(dst, "conntrack"), exist_ok=True)
            with open(os.path.join(dst, "conntrack", ns + ".txt"), "w", encoding="utf-8") as fh:
                fh.write("\n".join(half) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pylint: disable=unused-argument
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        try:
            where = keep_evidence(item.name)
        except OSError as exc:
            where = "not kept: %s" % exc
        report.sections.append(("lab evidence", "the lab's logs of this failure: %s" % where))
