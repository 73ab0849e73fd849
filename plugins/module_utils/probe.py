# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP(S) checks as a gate: request a URL N times, optionally at a fixed IP with a Host/SNI of
choice (what ``curl --resolve`` / ``--header Host:`` did), and judge the success ratio.

Standard library only (``http.client`` + ``ssl``): ``--resolve`` semantics need the TCP target
and the TLS server name set apart, which ``urllib`` does not offer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
import socket
import ssl
import time

try:
    from urllib.parse import urlsplit
    import http.client as http_client
except ImportError:  # pragma: no cover - Python 2 is not supported
    urlsplit = http_client = None

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError


def plan(params):
    """Validate the options -> a dict describing every request."""
    url = urlsplit(params.get("url") or "")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise MigrationError("url %r must be an absolute http:// or https:// URL"
                             % params.get("url"))
    resolve_to = params.get("resolve_to")
    if resolve_to:
        try:
            ipaddress.ip_address(resolve_to)
        except ValueError:
            raise MigrationError("resolve_to %r is not an IP address; give the load balancer's "
                                 "address (or leave it unset to use DNS)" % resolve_to)
    for key, low, high in (("attempts", 1, 100000), ("interval", 0, 3600),
                           ("timeout", 0.01, 3600), ("min_success_ratio", 0, 1),
                           ("wait_timeout", 0, 86400)):
        if params.get(key) is not None and not low <= params[key] <= high:
            raise MigrationError("%s %s is out of range [%s, %s]" % (key, params[key], low, high))
    pattern = None
    if params.get("body_pattern"):
        try:
            pattern = re.compile(params["body_pattern"])
        except re.error as exc:
            raise MigrationError("body_pattern %r is not a valid regular expression (%s)"
                                 % (params["body_pattern"], exc))
    host = params.get("host_header") or url.hostname
    return {"scheme": url.scheme, "connect": resolve_to or url.hostname,
            "port": url.port or (443 if url.scheme == "https" else 80),
            "path": (url.path or "/") + ("?" + url.query if url.query else ""),
            "host": host, "sni": params.get("sni") or host, "pattern": pattern,
            "status": list(params.get("expected_status") or [200]),
            "method": params.get("method") or "GET", "timeout": params["timeout"]}


class _HTTPSConnection(http_client.HTTPSConnection if http_client else object):
    """TCP to ``connect_to``, TLS server name (SNI and certificate check) = ``host``."""

    def __init__(self, connect_to, host, port, timeout, context):
        http_client.HTTPSConnection.__init__(self, host, port, timeout=timeout, context=context)
        self._connect_to = connect_to

    def connect(self):
        sock = socket.create_connection((self._connect_to, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def request_once(p, context=None):
    """One request -> sample dict (ok, status, ms, error)."""
    start = time.monotonic()
    sample = {"ok": False, "status": None, "error": None}
    try:
        if p["scheme"] == "https":
            conn = _HTTPSConnection(p["connect"], p["sni"], p["port"], p["timeout"], context)
        else:
            conn = http_client.HTTPConnection(p["connect"], p["port"], timeout=p["timeout"])
        conn.request(p["method"], p["path"], headers={"Host": p["host"],
                                                      "User-Agent": "cloudhop-endpoint-probe",
                                                      "Connection": "close"})
        resp = conn.getresponse()
        body = resp.read(1 << 20).decode("utf-8", "replace")
        conn.close()
        sample["status"] = resp.status
        if resp.status not in p["status"]:
            sample["error"] = "HTTP %s, expected %s" % (resp.status, p["status"])
        elif p["pattern"] is not None and not p["pattern"].search(body):
            sample["error"] = "body does not match body_pattern"
        else:
            sample["ok"] = True
    except (socket.timeout, ssl.SSLError, OSError, http_client.HTTPException) as exc:
        sample["error"] = "%s: %s" % (type(exc).__name__, exc)
    sample["ms"] = round((time.monotonic() - start) * 1000, 2)
    return sample


def percentile(values, pct):
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(pct / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def evaluate(samples, min_ratio, keep=10):
    ok = [s for s in samples if s["ok"]]
    lat = [s["ms"] for s in ok]
    ratio = float(len(ok)) / len(samples) if samples else 0.0
    failures = [dict(s, attempt=i + 1) for i, s in enumerate(samples) if not s["ok"]]
    return {"requests": len(samples), "successes": len(ok), "failures": len(failures),
            "success_ratio": round(ratio, 4), "passed": bool(samples) and ratio >= min_ratio,
            "latency_ms": {"p50": percentile(lat, 50), "p99": percentile(lat, 99),
                           "max": max(lat) if lat else None},
            "failed_samples": failures[:keep], "samples": samples[-keep:]}


WAIT_POLL = 0.2  # seconds between requests while waiting for the first answer


def wait_for_answer(p, wait_timeout, context=None, clock=time.monotonic, sleep=time.sleep):
    """Request until one request succeeds or ``wait_timeout`` seconds pass -> a summary dict
    (ok, requests, waited_s, last error). A new cloud load balancer has its address before its
    health checks pass (AWS NLB targets take minutes to register): that is not a failure yet."""
    start = clock()
    requests, last = 0, None
    while True:
        sample = request_once(p, context)
        requests += 1
        if sample["ok"]:
            return {"ok": True, "requests": requests, "waited_s": round(clock() - start, 2),
                    "last_error": last}
        last = sample["error"]
        left = wait_timeout - (clock() - start)
        if left <= 0:
            return {"ok": False, "requests": requests, "waited_s": round(clock() - start, 2),
                    "last_error": last}
        sleep(min(WAIT_POLL, left))


def run_probe(p, attempts, interval, context=None):
    samples = []
    for i in range(attempts):
        samples.append(request_once(p, context))
        if i + 1 < attempts and interval:
            time.sleep(interval)
    return samples


def ssl_context(validate_certs, ca_path=None):
    ctx = ssl.create_default_context(cafile=ca_path) if validate_certs else \
        ssl._create_unverified_context()  # pylint: disable=protected-access
    return ctx
