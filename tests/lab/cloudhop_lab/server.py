"""HTTPS front end of an emulated API server: routing, discovery, auth, audit and watch."""

import base64
import datetime
import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from . import errors
from .podutil import now_iso
from .selectors import field_matches, label_matches, parse_field_selector, parse_label_selector

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": None,
}
MAX_BODY = 16 * 1024 * 1024


def qbool(value):
    """Query booleans are parsed like Go's strconv.ParseBool."""
    return (value or "").lower() in ("1", "t", "true")


class Audit:
    """One JSON line per API request."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.fh = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with

    def write(self, record):
        line = json.dumps(record, sort_keys=True)
        with self.lock:
            self.fh.write(line + "\n")
            self.fh.flush()


class Faults:
    """Programmable failures for fault-injection tests.

    A rule (dict) matches requests by ``verb`` and ``path_contains``, for ``count`` requests
    (default 1) or, with ``seconds``, every request until that many seconds after it was added.
    It can ``delay`` the request (seconds; longer than the client's timeout is a timeout), answer
    ``code`` (503, 500, 429...) instead of serving it, or do a ``concurrent_write`` first (another
    client changes the object, so a write with the resourceVersion read before gets 409).
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, rule):
        rule = dict(rule)
        if rule.get("seconds"):
            rule["until"] = time.monotonic() + float(rule["seconds"])
        with self.lock:
            self.rules.append(rule)

    def match(self, verb, path):
        with self.lock:
            for rule in self.rules:
                if rule.get("verb") not in (None, verb):
                    continue
                if rule.get("path_contains") and rule["path_contains"] not in path:
                    continue
                if "until" in rule:
                    if time.monotonic() > rule["until"]:
                        continue
                else:
                    if rule.get("count", 1) <= 0:
                        continue
                    rule["count"] = rule.get("count", 1) - 1
                rule["matched"] = rule.get("matched", 0) + 1
                return dict(rule)
        return None


class LabHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class ApiHandler(BaseHTTPRequestHandler):
    """One request to an emulated API server; ``make_handler`` binds the class to its Api,
    tokens, audit log and fault rules."""

    api = tokens = audit = faults = None
    protocol_version = "HTTP/1.1"
    server_version = "cloudhop-lab-apiserver"
    # headers and body go out as separate writes; without TCP_NODELAY, Nagle plus the
    # client's delayed ACK add ~40 ms to every response
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet; the audit log is the record
        return

    # -------------------------------------------------------------- plumbing

    def _send(self, code, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", self._audit_id)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._code = code

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise errors.ApiError(413, "RequestEntityTooLarge", "request entity too large")
        raw = self.rfile.read(length) if length else b""
        return raw

    def _decode(self, raw, ctype):
        if not raw:
            raise errors.bad_request("the body of the request is empty")
        try:
            if ctype == "application/apply-patch+yaml" or ctype.endswith("yaml"):
                return yaml.safe_load(raw.decode("utf-8"))
            return json.loads(raw.decode("utf-8"))
        except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise errors.bad_request("the object provided is unrecognized: could not decode "
                                     "the body: %s" % str(exc).splitlines()[0]) from exc

    def _handle(self):
        started = time.monotonic()
        self._audit_id = "%016x" % (int(time.time() * 1e6) ^ id(self))
        self._code = 0
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path.rstrip("/") or "/"
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        q = {k: v[-1] for k, v in query.items()}
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        # ts to the second; requestReceivedTimestamp to the microsecond, as kube-apiserver's
        # audit events have it (tests order requests of different clusters by it)
        received = datetime.datetime.now(datetime.timezone.utc)
        record = {"ts": now_iso(), "requestReceivedTimestamp": received.strftime(
                  "%Y-%m-%dT%H:%M:%S.%fZ"), "cluster": self.api.name, "method": self.command,
                  "path": path, "query": parsed.query, "contentType": ctype,
                  "dryRun": q.get("dryRun") == "All", "user": None,
                  "userAgent": self.headers.get("User-Agent", ""), "verb": None}
        try:
            user = self._auth()
            record["user"] = user
            raw = self._read_body() if self.command in ("POST", "PUT", "PATCH", "DELETE") \
                else b""
            self._route(path, q, raw, ctype, record, user)
        except errors.ApiError as exc:
            self._send(exc.code, exc.status(), exc.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # pylint: disable=broad-except
            api_err = errors.internal("%s: %s" % (type(exc).__name__, exc))
            try:
                self._send(500, api_err.status())
            except OSError:
                self.close_connection = True
            import traceback  # pylint: disable=import-outside-toplevel
            traceback.print_exc()
        record["code"] = self._code
        record["ms"] = round((time.monotonic() - started) * 1000, 2)
        if self.audit is not None and path not in ("/healthz", "/readyz", "/livez"):
            self.audit.write(record)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def _auth(self):
        header = self.headers.get("Authorization") or ""
        if header.startswith("Bearer "):
            user = self.tokens.get(header[7:].strip())
            if user:
                return user
        raise errors.unauthorized()

    # -------------------------------------------------------------- routing

    def _route(self, path, q, raw, ctype, record, user):
        if path in ("/healthz", "/readyz", "/livez"):
            self._send(200, b"ok")
            return
        if path == "/version":
            record["verb"] = "get"
            major, minor = self.api.version.lstrip("v").split(".")[:2]
            self._send(200, {"major": major, "minor": minor, "gitVersion": self.api.version,
                             "gitCommit": "cloudhop-lab", "gitTreeState": "clean",
                             "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
                             "compiler": "gc", "platform": "linux/amd64"})
            return
        parts = [p for p in path.split("/") if p]
        if parts == ["api"]:
            record["verb"] = "get"
            self._send(200, {"kind": "APIVersions", "versions": ["v1"],
                             "serverAddressByClientCIDRs": [
                                 {"clientCIDR": "0.0.0.0/0",
                                  "serverAddress": self.server.server_address[0]}]})
            return
        if parts == ["apis"]:
            record["verb"] = "get"
            self._send(200, self._group_list())
            return
        if parts and parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts and parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                record["verb"] = "get"
                grp = self._group(parts[1])
                if grp is None:
                    raise self._not_found_path()
                self._send(200, grp)
                return
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise self._not_found_path()
        if not rest:
            record["verb"] = "get"
            types = self.api.registry.in_group_version(group, version)
            if not types:
                raise self._not_found_path()
            resources = []
            for rt in sorted(types, key=lambda r: r.plural):
                resources.extend(rt.discovery())
            self._send(200, {"kind": "APIResourceList", "apiVersion": "v1",
                             "groupVersion": "%s/%s" % (group, version) if group else version,
                             "resources": resources})
            return
        self._resource(group, version, rest, q, raw, ctype, record, user)

    def _not_found_path(self):
        return errors.ApiError(404, "NotFound",
                               "the server could not find the requested resource")

    def _group(self, group):
        versions = self.api.registry.versions_of(group)
        if not versions:
            return None
        gv = [{"groupVersion": "%s/%s" % (group, v), "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gv,
                "preferredVersion": gv[0]}

    def _group_list(self):
        groups = []
        for name in sorted(g for g in self.api.registry.groups() if g):
            grp = self._group(name)
            grp.pop("kind")
            grp.pop("apiVersion")
            groups.append(grp)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource(self, group, version, rest, q, raw, ctype, record, user):
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and \
                self.api.rt(group, version, rest[2]) is not None and \
                self.api.rt(group, version, rest[2]).namespaced:
            ns, rest = rest[1], rest[2:]
        rt = self.api.rt(group, version, rest[0])
        if rt is None:
            raise self._not_found_path()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise self._not_found_path()
        if sub and sub not in rt.subresources() and \
                not (rt.kind == "Namespace" and sub == "finalize"):
            raise self._not_found_path()
        method = self.command
        watch = qbool(q.get("watch"))
        if method in ("GET", "HEAD"):
            verb = "get" if name else ("watch" if watch else "list")
        else:
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                    "DELETE": "delete" if name else "deletecollection"}[method]
        record.update(verb=verb, resource=rt.plural, namespace=ns, name=name,
                      subresource=sub, group=group)
        if self.api.rbac is not None and not self.api.rbac(user, verb, rt, ns, sub, name):
            raise errors.forbidden(user, verb, rt, ns, sub, name)
        self.api.requester.user = user
        fault = self.faults.match(verb, self.path)
        if fault:
            if fault.get("delay"):
                time.sleep(fault["delay"])
            if fault.get("concurrent_write") and name:
                # another client writes the object just before this request is served (a
                # write carrying the resourceVersion it read then gets 409, as from etcd)
                self.api.patch(rt, ns, name, "merge", {"metadata": {"annotations": {
                    "lab.cloudhop.io/concurrent-writer": str(time.time())}}},
                    manager="concurrent-writer")
            if fault.get("code"):
                raise errors.ApiError(fault["code"], fault.get("reason", "ServiceUnavailable"),
                                      fault.get("message", "injected fault"))
        if rt.namespaced and not ns and name and method != "GET":
            raise self._not_found_path()
        if rt.namespaced and not ns and method == "POST":
            raise self._not_found_path()
        if q.get("dryRun") not in (None, "", "All"):
            raise errors.bad_request('dryRun: Unsupported value: "%s": supported values: '
                                     '"All"' % q.get("dryRun"))
        dry = q.get("dryRun") == "All"
        manager = q.get("fieldManager") or (
            self.headers.get("User-Agent", "").split("/")[0] or None)
        if method in ("GET", "HEAD"):
            if name is None:
                if watch:
                    self._watch(rt, ns, q)
                else:
                    self._list(rt, ns, q)
                return
            if sub == "scale":
                self._send(200, self.api.get_scale(rt, ns, name))
            else:
                self._send(200, self.api.get(rt, ns, name))
            return
        if method == "POST":
            body = self._decode(raw, ctype or "application/json")
            if name is None:
                if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
                    record["name"] = body["metadata"].get("name")
                out = self.api.create(rt, ns, body, dry_run=dry, manager=manager)
                self._send(201, out)
            elif sub == "eviction":
                self.api.evict(ns, name, body, dry_run=dry)
                self._send(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                 "status": "Success", "code": 201})
            elif sub == "binding":
                self.api.bind(ns, name, body)
                self._send(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                 "status": "Success", "code": 201})
            else:
                raise errors.method_not_allowed()
            return
        if method == "PUT":
            if name is None:
                raise errors.method_not_allowed()
            body = self._decode(raw, ctype or "application/json")
            if sub == "scale":
                self._send(200, self.api.update_scale(rt, ns, name, body, dry, manager))
            elif sub == "finalize":
                self._send(200, self.api.update(rt, ns, name, body, dry_run=dry, manager=manager))
            else:
                self._send(200, self.api.update(rt, ns, name, body, sub=sub, dry_run=dry,
                                                manager=manager))
            return
        if method == "PATCH":
            if name is None:
                raise errors.method_not_allowed()
            if ctype not in PATCH_TYPES or PATCH_TYPES[ctype] is None:
                raise errors.unsupported_media(
                    "the body of the request was in an unknown format - accepted media "
                    "types include: application/json-patch+json, "
                    "application/merge-patch+json, application/apply-patch+yaml%s"
                    % (", application/strategic-merge-patch+json" if rt.builtin else ""))
            ptype = PATCH_TYPES[ctype]
            body = self._decode(raw, ctype)
            force = qbool(q.get("force"))
            if ptype != "apply" and q.get("force"):
                raise errors.bad_request("force is only valid for apply patches")
            if sub == "scale":
                current = self.api.get_scale(rt, ns, name)
                from . import patching  # pylint: disable=import-outside-toplevel
                if ptype == "json":
                    new = patching.json_patch(current, body)
                else:
                    new = patching.merge_patch(current, body)
                self._send(200, self.api.update_scale(rt, ns, name, new, dry, manager))
                return
            if ptype == "apply":
                manager = q.get("fieldManager")  # never defaulted for apply
            out = self.api.patch(rt, ns, name, ptype, body, sub=sub, dry_run=dry,
                                 manager=manager, force=force)
            self._send(200, out)
            return
        if method == "DELETE":
            opts = self._decode(raw, "application/json") if raw else {}
            if not isinstance(opts, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            for k in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
                if k in q:
                    val = q[k]
                    opts[k] = int(val) if k == "gracePeriodSeconds" else (
                        qbool(val) if k == "orphanDependents" else val)
            if "dryRun" in opts and opts["dryRun"]:
                dry = dry or opts["dryRun"] == ["All"]
                record["dryRun"] = dry
            if name is None:
                items = self.api.delete_collection(rt, ns, q.get("labelSelector"),
                                                   q.get("fieldSelector"), opts, dry)
                self._send(200, {"kind": rt.list_kind, "apiVersion": rt.api_version,
                                 "metadata": {}, "items": items})
                return
            obj, deleted = self.api.delete(rt, ns, name, opts, dry)
            if deleted and rt.builtin and rt.kind != "Pod":
                self._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                 "status": "Success",
                                 "details": {"name": name, "group": rt.group,
                                             "kind": rt.plural,
                                             "uid": obj["metadata"].get("uid")}})
            else:
                self._send(200, obj)
            return
        raise errors.method_not_allowed()

    # -------------------------------------------------------------- list / watch

    def _list(self, rt, ns, q):
        items, rv = self.api.list(rt, ns, q.get("labelSelector"), q.get("fieldSelector"),
                                  copy_objs=False)
        meta = {"resourceVersion": rv}
        limit = int(q.get("limit") or 0)
        start = 0
        if q.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(q["continue"].encode()))
                start = int(token["start"])
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.bad_request("continue key is not valid") from exc
        if limit > 0:
            page = items[start:start + limit]
            if start + limit < len(items):
                meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                    {"rv": rv, "start": start + limit}).encode()).decode()
                meta["remainingItemCount"] = len(items) - start - limit
            items = page
        elif start:
            items = items[start:]
        if rt.builtin:
            items = [{k: v for k, v in i.items() if k not in ("apiVersion", "kind")}
                     for i in items]
        self._send(200, {"kind": rt.list_kind, "apiVersion": rt.api_version,
                         "metadata": meta, "items": items})

    def _watch(self, rt, ns, q):
        lreqs = parse_label_selector(q.get("labelSelector"))
        freqs = parse_field_selector(q.get("fieldSelector"), rt.kind)
        timeout = float(q.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        rv_param = q.get("resourceVersion")

        def visible(obj):
            if obj is None:
                return False
            if ns and obj["metadata"].get("namespace") != ns:
                return False
            return label_matches(lreqs, obj["metadata"].get("labels")) and \
                field_matches(freqs, obj)

        initial = []
        if rv_param in (None, "", "0"):
            items, since = self.api.list(rt, ns, lreqs, freqs)
            since = int(since)
            initial = [("ADDED", i) for i in items]
        else:
            try:
                since = int(rv_param)
            except ValueError as exc:
                raise errors.bad_request("invalid resource version") from exc
            if since < self.api.oldest_rv():
                raise errors.gone("too old resource version: %d (%d)"
                                  % (since, self.api.oldest_rv()))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Audit-Id", self._audit_id)
        self.end_headers()
        self._code = 200

        def chunk(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def emit(etype, obj):
            out = dict(obj, apiVersion=rt.api_version, kind=rt.kind)
            chunk(json.dumps({"type": etype, "object": out}).encode() + b"\n")

        try:
            for etype, obj in initial:
                emit(etype, obj)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    events = self.api.events_since(since, min(left, 5.0))[0]
                except errors.ApiError as exc:
                    chunk(json.dumps({"type": "ERROR", "object": exc.status()}).encode()
                          + b"\n")
                    break
                for erv, key, etype, obj, old in events:
                    since = max(since, erv)
                    if key != rt.key:
                        continue
                    now_vis, was_vis = visible(obj), visible(old)
                    if etype == "DELETED":
                        if was_vis or now_vis:
                            emit("DELETED", obj)
                    elif etype == "ADDED":
                        if now_vis:
                            emit("ADDED", obj)
                    elif now_vis and not was_vis and old is not None:
                        emit("ADDED", obj)
                    elif was_vis and not now_vis:
                        emit("DELETED", obj)
                    elif now_vis:
                        emit("MODIFIED", obj)
            chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True


def make_handler(api, tokens, audit, faults):
    """The request handler class bound to one Api."""
    return type("Handler", (ApiHandler,), {"api": api, "tokens": tokens, "audit": audit,
                                           "faults": faults})


def serve(api, host, port, certfile, keyfile, tokens, audit_path, faults=None):
    """Start an HTTPS API server in a background thread; returns the server."""
    faults = faults or Faults()
    audit = Audit(audit_path) if audit_path else None
    handler = make_handler(api, tokens, audit, faults)
    httpd = LabHTTPServer((host, port), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                   do_handshake_on_connect=False)
    httpd.faults = faults
    thread = threading.Thread(target=httpd.serve_forever, name="api-%s" % api.name, daemon=True)
    thread.start()
    return httpd
