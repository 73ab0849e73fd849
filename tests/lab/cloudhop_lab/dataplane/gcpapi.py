"""The Google Cloud APIs of the lab, as much of them as the migration uses, served over HTTP
inside clh-ctl (the daemon's network namespace) on 127.0.0.1:5001.

- **OAuth 2.0 token endpoint** (``POST /token``): the JWT-bearer grant of RFC 7523 that
  google-auth's service-account credentials send. The assertion must be signed (RS256) with the
  key of a registered service account (the lab registers the key file it writes,
  .lab/gcp-sa.json, as GCP does when it issues a key); ``iss`` must be that account, ``aud``
  Google's token endpoint, ``exp - iat`` at most one hour. Errors are Google's (``invalid_grant`` with its
  descriptions).
- **Cloud DNS v1** (``/dns/v1/projects/P/managedZones...``): managed zones, resource record sets
  and changes. A change's deletions must match the record set exactly (412 ``conditionNotMet``),
  an addition of an existing set without deleting it is 409 ``alreadyExists``, a name outside the
  zone is 400; a change is ``pending`` and then ``done`` (``propagation_s`` later), and only a
  done change is served by the zone's name servers (the lab's bind9, via ``on_dns_change``).
- **Compute Engine v1**: regional forwarding rules, the record the GCP cloud controller manager
  keeps of a Service's load balancer (name ``a`` + the Service's UID without dashes, 32
  characters; description ``{"kubernetes.io/service-name":"<ns>/<name>"}``).

Every API call needs ``Authorization: Bearer`` with a token from the endpoint above that is not
expired and whose scopes cover the API; the account may use its own project only (IAM in one
sentence). The lab speaks HTTP; the collection's modules take the Google APIs' root as
``endpoint_url`` (default ``https://*.googleapis.com``).
"""

import base64
import itertools
import json
import logging
import os
import re
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = logging.getLogger("cloudhop_lab")

GCP_PORT = 5001
ENDPOINT = "http://127.0.0.1:%d" % GCP_PORT
TOKEN_URI = ENDPOINT + "/token"
PROJECT = "cloudhop-lab"
REGION = "europe-west3"
# the audiences Google's token endpoint accepts in an assertion (google-auth sends the first,
# whatever the key's token_uri)
AUDIENCES = ("https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token",
             TOKEN_URI)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPES = {
    "dns": {"https://www.googleapis.com/auth/ndev.clouddns.readwrite",
            "https://www.googleapis.com/auth/cloud-platform"},
    "dns_read": {"https://www.googleapis.com/auth/ndev.clouddns.readonly",
                 "https://www.googleapis.com/auth/ndev.clouddns.readwrite",
                 "https://www.googleapis.com/auth/cloud-platform.read-only",
                 "https://www.googleapis.com/auth/cloud-platform"},
    "compute_read": {"https://www.googleapis.com/auth/compute.readonly",
                     "https://www.googleapis.com/auth/compute",
                     "https://www.googleapis.com/auth/cloud-platform.read-only",
                     "https://www.googleapis.com/auth/cloud-platform"},
}


class ApiError(Exception):
    def __init__(self, code, reason, message, status=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.status = code, reason, message, status

    def body(self):
        err = {"code": self.code, "message": self.message,
               "errors": [{"domain": "global", "reason": self.reason, "message": self.message}]}
        if self.status:
            err["status"] = self.status
        return {"error": err}


def _b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class GcpApi:
    def __init__(self, lab_dir, propagation_s=0.3, on_dns_change=None):
        self.dir = lab_dir
        self.propagation_s = propagation_s
        self.on_dns_change = on_dns_change  # callback(fqdn, type, ttl, rrdatas or None)
        self.lock = threading.Lock()
        self.accounts = {}  # client_email -> {key_id, public_key, project}
        self.tokens = {}  # access token -> {email, scopes, expires}
        self.zones = {}  # (project, zone name) -> {dnsName, rrsets: {(name, type): rrset}, ...}
        self.rules = {}  # (project, region, name) -> forwarding rule
        self.requests = []  # (method, path, status): what tests assert on
        self.before_change = []  # record sets a "concurrent writer" sets before the next change
        self.ids = itertools.count(1000000000000000000)
        self.httpd = None

    # --- set-up by the lab
    def register_key_file(self, path):
        """Register the public half of a service-account key file, as GCP does when it issues
        the key."""
        from cryptography.hazmat.primitives import serialization  # pylint: disable=C0415
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
        key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
        with self.lock:
            self.accounts[info["client_email"]] = {
                "key_id": info["private_key_id"], "public_key": key.public_key(),
                "project": info["project_id"]}

    def create_zone(self, name, dns_name, project=PROJECT):
        with self.lock:
            self.zones[(project, name)] = {
                "kind": "dns#managedZone", "name": name, "dnsName": dns_name,
                "id": str(next(self.ids)), "visibility": "public", "rrsets": {},
                "changes": [{"kind": "dns#change", "id": "0", "status": "done"}]}

    def set_rrset(self, zone, name, rtype, ttl, rrdatas, project=PROJECT):
        """What an operator did in the console before the migration (no change record needed
        by the tests; the name servers serve it at once)."""
        with self.lock:
            self.zones[(project, zone)]["rrsets"][(name, rtype)] = {
                "kind": "dns#resourceRecordSet", "name": name, "type": rtype, "ttl": ttl,
                "rrdatas": list(rrdatas)}
        if self.on_dns_change:
            self.on_dns_change(name, rtype, ttl, list(rrdatas))

    def rrset(self, zone, name, rtype, project=PROJECT):
        with self.lock:
            found = self.zones[(project, zone)]["rrsets"].get((name, rtype))
            return dict(found) if found else None

    def create_forwarding_rule(self, name, ip, service, ports, region=REGION, project=PROJECT):
        """The GCP CCM's record of a Service's load balancer."""
        link = "%s/compute/v1/projects/%s/regions/%s" % (ENDPOINT, project, region)
        with self.lock:
            self.rules[(project, region, name)] = {
                "kind": "compute#forwardingRule", "id": str(next(self.ids)), "name": name,
                "description": json.dumps({"kubernetes.io/service-name": service},
                                          separators=(",", ":")),
                "region": link, "IPAddress": ip, "IPProtocol": "TCP",
                "portRange": "%d-%d" % (min(ports), max(ports)) if ports else "",
                "target": "%s/targetPools/%s" % (link, name),
                "loadBalancingScheme": "EXTERNAL", "networkTier": "PREMIUM",
                "selfLink": "%s/forwardingRules/%s" % (link, name)}

    def delete_forwarding_rule(self, name, region=REGION, project=PROJECT):
        with self.lock:
            self.rules.pop((project, region, name), None)

    # --- the HTTP server
    def start(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # the lab logs requests itself
                return

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    code, body = api.handle(method, self.path, self.headers, raw)
                except ApiError as exc:
                    code, body = exc.code, exc.body()
                except Exception as exc:  # pylint: disable=broad-except
                    LOG.exception("gcp api: %s %s", method, self.path)
                    code, body = 500, ApiError(500, "backendError", str(exc)).body()
                with api.lock:
                    api.requests.append((method, self.path.split("?")[0], code))
                self._send(code, body)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def do_PATCH(self):  # noqa: N802
                self._handle("PATCH")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", GCP_PORT), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, name="gcp-api", daemon=True).start()
        with open(os.path.join(self.dir, "gcp.json"), "w", encoding="utf-8") as fh:
            json.dump({"endpoint_url": ENDPOINT, "token_uri": TOKEN_URI, "project": PROJECT,
                       "region": REGION}, fh)

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    # --- requests
    def handle(self, method, path, headers, raw):
        url = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/token" and method == "POST":
            return self._token(raw)
        token = self._authenticate(headers)
        m = re.fullmatch(r"/dns/v1/projects/([^/]+)/managedZones(?:/([^/]+)"
                         r"(?:/(rrsets|changes)(?:/([^/]+))?)?)?", url.path)
        if m:
            project, zone, coll, item = m.groups()
            self._authorize(token, project, "dns" if method != "GET" else "dns_read")
            return self._dns(method, project, zone, coll, item, query, raw)
        m = re.fullmatch(r"/compute/v1/projects/([^/]+)/regions/([^/]+)/forwardingRules"
                         r"(?:/([^/]+))?", url.path)
        if m and method == "GET":
            project, region, name = m.groups()
            self._authorize(token, project, "compute_read")
            return self._rules(project, region, name)
        raise ApiError(404, "notFound", "The requested URL %s was not found on this server."
                       % url.path)

    def _token(self, raw):
        from cryptography.exceptions import InvalidSignature  # pylint: disable=C0415
        from cryptography.hazmat.primitives import hashes  # pylint: disable=C0415
        from cryptography.hazmat.primitives.asymmetric import padding  # pylint: disable=C0415
        form = dict(urllib.parse.parse_qsl(raw.decode()))

        def refuse(description, error="invalid_grant"):
            return 400, {"error": error, "error_description": description}

        if form.get("grant_type") != JWT_BEARER:
            return refuse("Invalid grant_type: %s" % form.get("grant_type", ""),
                          "unsupported_grant_type")
        try:
            head_b64, claims_b64, sig_b64 = form["assertion"].split(".")
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(sig_b64)
        except (KeyError, ValueError):
            return refuse("Invalid JWT: the assertion is not a JWT.")
        with self.lock:
            account = self.accounts.get(claims.get("iss"))
        if account is None:
            return refuse("Invalid grant: account not found")
        if header.get("alg") != "RS256":
            return refuse("Invalid JWT: unsupported algorithm %s." % header.get("alg"))
        try:
            account["public_key"].verify(signature, ("%s.%s" % (head_b64, claims_b64)).encode(),
                                         padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return refuse("Invalid JWT Signature.")
        now = time.time()
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now <= exp + 300) or exp - iat > 3600:
            return refuse("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                          "reasonable timeframe. Check your iat and exp values in the JWT claim.")
        if claims.get("aud") not in AUDIENCES:
            return refuse("Invalid JWT: audience %s is not a Google token endpoint."
                          % claims.get("aud"))
        scopes = set((claims.get("scope") or "").split())
        if not scopes:
            return refuse("Invalid OAuth scope or ID token audience provided.", "invalid_scope")
        access = "ya29.lab-" + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access] = {"email": claims["iss"], "scopes": scopes,
                                   "expires": now + 3600}
        return 200, {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}

    def _authenticate(self, headers):
        auth = headers.get("Authorization") or ""
        token = self.tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
        if token is None or token["expires"] < time.time():
            raise ApiError(401, "authError",
                           "Request had invalid authentication credentials. Expected OAuth 2 "
                           "access token, login cookie or other valid authentication "
                           "credential.", "UNAUTHENTICATED")
        return token

    def _authorize(self, token, project, need):
        if not token["scopes"] & SCOPES[need]:
            raise ApiError(403, "insufficientPermissions",
                           "Request had insufficient authentication scopes.",
                           "PERMISSION_DENIED")
        if self.accounts[token["email"]]["project"] != project:
            raise ApiError(403, "forbidden", "Forbidden: %s has no role in project %s"
                           % (token["email"], project), "PERMISSION_DENIED")

    # --- Cloud DNS
    def _zone(self, project, name):
        zone = self.zones.get((project, name))
        if zone is None:
            raise ApiError(404, "notFound", "The 'parameters.managedZone' resource named '%s' "
                           "does not exist." % name)
        return zone

    @staticmethod
    def _public_zone(zone):
        return {k: v for k, v in zone.items() if k not in ("rrsets", "changes")}

    def _dns(self, method, project, zone_name, coll, item, query, raw):
        with self.lock:
            if zone_name is None and method == "GET":
                zones = [self._public_zone(z) for (p, _n), z in sorted(self.zones.items())
                         if p == project and query.get("dnsName") in (None, z["dnsName"])]
                return 200, {"kind": "dns#managedZonesListResponse", "managedZones": zones}
            zone = self._zone(project, zone_name)
            if coll is None and method == "GET":
                return 200, self._public_zone(zone)
            if coll == "rrsets" and method == "GET" and item is None:
                if query.get("type") and not query.get("name"):
                    raise ApiError(400, "invalid", "Invalid value for 'parameters.type': type "
                                   "requires name")
                sets = [dict(r) for (n, t), r in sorted(zone["rrsets"].items())
                        if query.get("name") in (None, n) and query.get("type") in (None, t)]
                return 200, {"kind": "dns#resourceRecordSetsListResponse", "rrsets": sets}
            if coll == "changes" and method == "POST" and item is None:
                return 200, self._change(zone, json.loads(raw or b"{}"))
            if coll == "changes" and method == "GET" and item is not None:
                for change in zone["changes"]:
                    if change["id"] == item:
                        return 200, dict(change)
                raise ApiError(404, "notFound", "The 'parameters.changeId' resource named '%s' "
                               "does not exist." % item)
        raise ApiError(404, "notFound", "Not found: %s %s" % (method, coll))

    def _change(self, zone, body):
        """Apply a change atomically (called with the lock held)."""
        while self.before_change:  # a test's concurrent writer got there first
            rr = self.before_change.pop(0)
            zone["rrsets"][(rr["name"], rr.get("type", "A"))] = {
                "kind": "dns#resourceRecordSet", "name": rr["name"], "type": rr.get("type", "A"),
                "ttl": rr["ttl"], "rrdatas": list(rr["rrdatas"])}
        sets = dict(zone["rrsets"])
        for i, rr in enumerate(body.get("deletions") or []):
            key = (rr.get("name"), rr.get("type"))
            have = sets.get(key)
            if have is None or int(have["ttl"]) != int(rr.get("ttl", -1)) or \
                    sorted(have["rrdatas"]) != sorted(rr.get("rrdatas") or []):
                raise ApiError(412, "conditionNotMet", "Precondition not met for "
                               "'entity.change.deletions[%d]'" % i)
            del sets[key]
        for i, rr in enumerate(body.get("additions") or []):
            name, rtype = rr.get("name") or "", rr.get("type") or ""
            if not name.endswith("."):
                raise ApiError(400, "invalid", "Invalid value for "
                               "'entity.change.additions[%d].name': '%s'" % (i, name))
            if not (name == zone["dnsName"] or name.endswith("." + zone["dnsName"])):
                raise ApiError(400, "invalid", "The resource 'entity.change.additions[%d].name' "
                               "is not in zone %s: '%s'" % (i, zone["dnsName"], name))
            if (name, rtype) in sets:
                raise ApiError(409, "alreadyExists", "The resource 'entity.change.additions"
                               "[%d]' named '%s (%s)' already exists" % (i, name, rtype))
            if not rr.get("rrdatas") or not isinstance(rr.get("ttl"), int) or rr["ttl"] < 0:
                raise ApiError(400, "invalid", "Invalid value for 'entity.change.additions"
                               "[%d]': ttl and rrdatas are required" % i)
            sets[(name, rtype)] = {"kind": "dns#resourceRecordSet", "name": name, "type": rtype,
                                   "ttl": rr["ttl"], "rrdatas": list(rr["rrdatas"])}
        if not body.get("additions") and not body.get("deletions"):
            raise ApiError(400, "required", "The 'entity.change' parameter is required but was "
                           "missing.")
        zone["rrsets"] = sets
        change = {"kind": "dns#change", "id": str(len(zone["changes"])), "status": "pending",
                  "startTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                  "additions": body.get("additions") or [],
                  "deletions": body.get("deletions") or []}
        zone["changes"].append(change)
        served = {key: sets.get(key) for key in
                  {(r["name"], r["type"]) for r in change["additions"] + change["deletions"]}}
        threading.Timer(self.propagation_s, self._propagated, (change, served)).start()
        return dict(change)

    def _propagated(self, change, served):
        if self.on_dns_change:
            for (name, rtype), rr in sorted(served.items()):
                try:
                    self.on_dns_change(name, rtype, rr["ttl"] if rr else None,
                                       rr["rrdatas"] if rr else None)
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("gcp api: name servers did not take %s", name)
                    return  # stays pending, as a change Google could not serve
        with self.lock:
            change["status"] = "done"

    # --- Compute Engine
    def _rules(self, project, region, name):
        with self.lock:
            if name is not None:
                rule = self.rules.get((project, region, name))
                if rule is None:
                    raise ApiError(404, "notFound", "The resource 'projects/%s/regions/%s/"
                                   "forwardingRules/%s' was not found" % (project, region, name))
                return 200, dict(rule)
            items = [dict(r) for (p, g, _n), r in sorted(self.rules.items())
                     if p == project and g == region]
        return 200, {"kind": "compute#forwardingRuleList", "items": items}
