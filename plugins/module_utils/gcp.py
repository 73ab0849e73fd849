# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Google Cloud REST calls with google-auth: Cloud DNS record sets and Compute Engine forwarding
rules, plus the pure logic around them (what a change must contain, which forwarding rule is a
Service's load balancer) that unit tests reach.

The service account's own ``token_uri`` is where tokens come from; ``endpoint_url`` replaces the
root of every API (``https://dns.googleapis.com``, ``https://compute.googleapis.com``), for a
private endpoint or the lab. No message built here contains key material or a token.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.clouds import (
    google_credentials, parse_service_account)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, ModuleWrapper, run_module)

try:
    import google.auth.exceptions
    from google.auth.transport.requests import AuthorizedSession
    import requests
    HAS_GOOGLE_AUTH = True
except ImportError:
    HAS_GOOGLE_AUTH = False

DNS_SCOPE = "https://www.googleapis.com/auth/ndev.clouddns.readwrite"
DNS_READ_SCOPE = "https://www.googleapis.com/auth/ndev.clouddns.readonly"
COMPUTE_READ_SCOPE = "https://www.googleapis.com/auth/compute.readonly"
ROOTS = {"dns": "https://dns.googleapis.com", "compute": "https://compute.googleapis.com"}
SERVICE_NAME_KEY = "kubernetes.io/service-name"
RETRY_STATUS = (429, 500, 502, 503, 504)


class GoogleApiError(MigrationError):
    """An error answer of a Google API: ``code`` (HTTP status) and ``reason``."""

    def __init__(self, code, reason, message, what):
        self.code, self.reason = code, reason
        super(GoogleApiError, self).__init__("%s: HTTP %d %s: %s" % (what, code, reason, message),
                                             status=code, reason=reason)


def fqdn(name):
    """A DNS name as Cloud DNS stores it: lower case, with the trailing dot."""
    name = (name or "").strip().lower()
    if not name:
        raise MigrationError("the record name is empty")
    return name if name.endswith(".") else name + "."


def key_material(value, info, text):
    """Every form of a service-account key that must stay out of Ansible's output (for a
    module's no_log_values): the JSON text given, the private key and its ID, the canonical
    text."""
    out = set()
    if isinstance(value, str) and value.lstrip().startswith("{"):
        out.add(value)
    out.update(v for v in (info.get("private_key"), info.get("private_key_id"), text)
               if isinstance(v, str) and len(v) > 8)
    return out


def error_of(response_json, fallback):
    """(reason, message) of a Google error body ({"error": {...}} or the OAuth form)."""
    err = (response_json or {}).get("error")
    if isinstance(err, dict):
        reasons = [e.get("reason") for e in err.get("errors") or [] if e.get("reason")]
        return (reasons[0] if reasons else err.get("status") or "error",
                err.get("message") or fallback)
    if isinstance(err, str):
        return err, (response_json or {}).get("error_description") or fallback
    return "error", fallback


def pick_zone(zones, dns_name, managed_zone=None):
    """The managed zone to use: the one named ``managed_zone``, else the single public zone
    whose dnsName is ``dns_name`` (zones: a managedZones list answer's items)."""
    want = fqdn(dns_name)
    if managed_zone:
        for zone in zones:
            if zone.get("name") == managed_zone:
                if fqdn(zone.get("dnsName")) != want:
                    raise MigrationError("managed zone %s serves %s, not %s; set zone to its DNS "
                                         "name" % (managed_zone, zone.get("dnsName"), want))
                return zone
        raise MigrationError("managed zone %s not found in the project (zones: %s)"
                             % (managed_zone, ", ".join(z.get("name", "?") for z in zones)
                                or "none"))
    found = [z for z in zones if fqdn(z.get("dnsName")) == want]
    public = [z for z in found if z.get("visibility", "public") == "public"]
    if len(public) == 1:
        return public[0]
    if not found:
        raise MigrationError("no Cloud DNS managed zone for %s in the project (zones there: %s); "
                             "check zone and project" % (want, ", ".join(
                                 "%s (%s)" % (z.get("name"), z.get("dnsName")) for z in zones)
                                 or "none"))
    raise MigrationError("%d managed zones serve %s (%s); set managed_zone to the one the "
                         "record lives in" % (len(found), want,
                                              ", ".join(z.get("name", "?") for z in found)))


def in_zone(record, zone_dns_name):
    record, zone = fqdn(record), fqdn(zone_dns_name)
    return record == zone or record.endswith("." + zone)


def rrset_change(current, name, rtype, ttl, values):
    """The Cloud DNS change that makes record set (name, rtype) hold ``values`` with ``ttl``
    (``values`` None: makes it absent): {"additions": [...], "deletions": [...]}, or None when
    it already is so. The deletion is the current set exactly as read, so a concurrent writer
    makes the change fail (412) instead of being overwritten."""
    if values is None:
        if not current:
            return None
        return {"kind": "dns#change", "additions": [], "deletions": [
            {k: current[k] for k in ("kind", "name", "type", "ttl", "rrdatas") if k in current}]}
    want = {"kind": "dns#resourceRecordSet", "name": fqdn(name), "type": rtype,
            "ttl": int(ttl), "rrdatas": sorted(values)}
    if current and int(current.get("ttl", -1)) == want["ttl"] and \
            sorted(current.get("rrdatas") or []) == want["rrdatas"]:
        return None
    change = {"kind": "dns#change", "additions": [want], "deletions": []}
    if current:
        change["deletions"] = [{k: current[k] for k in ("kind", "name", "type", "ttl", "rrdatas")
                                if k in current}]
    return change


def service_of(rule):
    """The Service (``ns/name``) a forwarding rule's description names, as the GCP cloud
    controller manager writes it, or None."""
    try:
        desc = json.loads(rule.get("description") or "")
    except ValueError:
        return None
    return desc.get(SERVICE_NAME_KEY) if isinstance(desc, dict) else None


def rules_for_service(rules, service, address=None):
    """The forwarding rules of Service ``service`` (``ns/name``), optionally at ``address``."""
    return [r for r in rules if service_of(r) == service and
            (address is None or r.get("IPAddress") == address)]


SERVICE_ACCOUNT_SPEC = {
    # not no_log as a whole: a file path would be masked in every message; the key material is
    # added to no_log_values instead (key_material)
    "service_account": {"type": "raw", "required": True, "no_log": False},
    "project": {"type": "str"},
    "endpoint_url": {"type": "str"},
}


def record_spec():
    """The options gcp_dns_record and gcp_dns_record_info share (GoogleModule adds the account's)."""
    return dict(zone={"type": "str", "required": True}, managed_zone={"type": "str"},
                record={"type": "str", "required": True},
                type={"type": "str", "default": "A", "choices": ["A", "AAAA", "CNAME", "TXT"]})


class GoogleModule(ModuleWrapper):
    """The one wrapper of the Google modules (amazon.aws's AnsibleAWSModule is the model): the
    service-account options, one client factory (``api``), one way to end (``run``); conflicts
    are redone with ``common.redo_on_conflict``, as the Kubernetes modules redo theirs."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(SERVICE_ACCOUNT_SPEC)
        spec.update(argument_spec)
        kwargs.setdefault("supports_check_mode", True)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)

    def api(self, scopes):
        """Parse service_account (its key material hidden from every output) -> GoogleApi."""
        p = self.params
        info, text = parse_service_account(p["service_account"])
        self.module.no_log_values.update(key_material(p["service_account"], info, text))
        return GoogleApi(info, scopes, p["endpoint_url"])

    def run(self, func):
        """func(self) -> result dict; exit_json or fail_json exactly once."""
        run_module(self.module, lambda _module: func(self))


def read_record(module, api):
    """(project, managed zone name, record set or None) for the module's zone and record."""
    p = module.params
    if not in_zone(p["record"], p["zone"]):
        raise MigrationError("record %s is not in zone %s" % (fqdn(p["record"]), fqdn(p["zone"])))
    project = p["project"] or api.project
    zone = pick_zone(api.zones(project), p["zone"], p["managed_zone"])["name"]
    return project, zone, api.rrset(project, zone, fqdn(p["record"]), p["type"])


def simple_rrset(rrset):
    return None if rrset is None else {k: rrset.get(k) for k in ("name", "type", "ttl", "rrdatas")}


class GoogleApi(object):
    """A session on Google's REST APIs for one service account."""

    def __init__(self, info, scopes, endpoint_url=None, timeout=30, retries=4, sleep=time.sleep):
        if not HAS_GOOGLE_AUTH:
            raise MigrationError("the Google APIs need google-auth and requests on the controller "
                                 "(pip install google-auth requests)")
        creds = google_credentials(info, scopes)
        self.email = creds.service_account_email
        self.project = info.get("project_id")
        self.session = AuthorizedSession(creds)
        self.endpoint_url = (endpoint_url or "").rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.sleep = sleep

    def url(self, api, path):
        return (self.endpoint_url or ROOTS[api]) + path

    def call(self, method, api, path, params=None, body=None, what=None):
        """One API call -> the decoded answer. 429 and 5xx are retried with backoff; other
        errors raise GoogleApiError."""
        what = what or "%s %s" % (method, path)
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                resp = self.session.request(method, self.url(api, path), params=params,
                                            json=body, timeout=self.timeout)
            except google.auth.exceptions.RefreshError as exc:
                reason = exc.args[0] if exc.args else str(exc)
                raise MigrationError("Google refused a token for %s (%s); check that "
                                     "gcp.service_account is a current key of an enabled service "
                                     "account" % (self.email, str(reason).split(",", maxsplit=1)[0][:200]))
            except requests.exceptions.RequestException as exc:
                if attempt < self.retries:
                    self.sleep(delay)
                    delay *= 2
                    continue
                raise MigrationError("%s: cannot reach %s (%s); check endpoint_url and network "
                                     "access" % (what, self.url(api, ""), type(exc).__name__))
            if resp.status_code in RETRY_STATUS and attempt < self.retries:
                self.sleep(delay)
                delay *= 2
                continue
            try:
                data = resp.json() if resp.content else {}
            except ValueError:
                data = {}
            if resp.status_code >= 400:
                reason, message = error_of(data, resp.reason or "")
                raise GoogleApiError(resp.status_code, reason, message, what)
            return data
        raise MigrationError("%s: no answer" % what)  # pragma: no cover (the loop returns)

    # --- Cloud DNS
    def zones(self, project):
        return self.call("GET", "dns", "/dns/v1/projects/%s/managedZones" % project,
                         what="list the Cloud DNS zones of project %s" % project
                         ).get("managedZones") or []

    def rrset(self, project, zone, name, rtype):
        sets = self.call("GET", "dns", "/dns/v1/projects/%s/managedZones/%s/rrsets"
                         % (project, zone), {"name": fqdn(name), "type": rtype},
                         what="read %s %s in zone %s" % (fqdn(name), rtype, zone)
                         ).get("rrsets") or []
        return sets[0] if sets else None

    def change(self, project, zone, change):
        return self.call("POST", "dns", "/dns/v1/projects/%s/managedZones/%s/changes"
                         % (project, zone), body=change, what="change zone %s" % zone)

    def wait_change(self, project, zone, change, timeout, poll=0.5):
        deadline = time.time() + timeout
        while change.get("status") != "done":
            if time.time() > deadline:
                raise MigrationError("Cloud DNS change %s in zone %s is still %s after %d s"
                                     % (change.get("id"), zone, change.get("status"), timeout))
            self.sleep(poll)
            change = self.call("GET", "dns", "/dns/v1/projects/%s/managedZones/%s/changes/%s"
                               % (project, zone, change["id"]),
                               what="read change %s of zone %s" % (change.get("id"), zone))
        return change

    # --- Compute Engine
    def forwarding_rules(self, project, region):
        items, token = [], None
        while True:
            page = self.call("GET", "compute", "/compute/v1/projects/%s/regions/%s/forwardingRules"
                             % (project, region), {"pageToken": token} if token else None,
                             what="list the forwarding rules of %s in %s" % (project, region))
            items += page.get("items") or []
            token = page.get("nextPageToken")
            if not token:
                return items
