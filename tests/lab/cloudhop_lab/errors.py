"""Kubernetes ``Status`` errors with the real reasons and codes."""


class ApiError(Exception):
    """An error answered as a ``metav1.Status`` body."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _qualified(rt):
    return rt.plural if not rt.group else "%s.%s" % (rt.plural, rt.group)


def not_found(rt, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (_qualified(rt), name),
                    {"name": name, "group": rt.group, "kind": rt.plural})


def namespace_not_found(ns):
    return ApiError(404, "NotFound", 'namespaces "%s" not found' % ns,
                    {"name": ns, "kind": "namespaces"})


def already_exists(rt, name):
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (_qualified(rt), name),
                    {"name": name, "group": rt.group, "kind": rt.plural})


def conflict(rt, name, why="the object has been modified; please apply your changes to the "
                           "latest version and try again"):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                    % (_qualified(rt), name, why),
                    {"name": name, "group": rt.group, "kind": rt.plural})


def invalid(rt, name, causes):
    """causes: list of (field, reason, message) - reason e.g. FieldValueRequired."""
    msgs = ["%s: %s" % (f, m) for f, _r, m in causes]
    kind_q = rt.kind if not rt.group else "%s.%s" % (rt.kind, rt.group)
    message = '%s "%s" is invalid: %s' % (kind_q, name, msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]")
    return ApiError(422, "Invalid", message, {
        "name": name, "group": rt.group, "kind": rt.kind,
        "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes]})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def unsupported_media(message):
    return ApiError(415, "UnsupportedMediaType", message)


def method_not_allowed(message="the server does not allow this method on the requested resource"):
    return ApiError(405, "MethodNotAllowed", message)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(user, verb, rt, ns, sub=None, name=None):
    """kube-apiserver's RBAC denial: ``clusters.kubermatic.k8c.io "x" is forbidden: User "u"
    cannot patch resource "clusters" in API group "kubermatic.k8c.io" at the cluster scope``."""
    res = rt.plural + ("/" + sub if sub else "")
    where = ('in the namespace "%s"' % ns) if ns else "at the cluster scope"
    group = '"%s"' % rt.group
    what = '%s "%s"' % (_qualified(rt), name) if name else _qualified(rt)
    return ApiError(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in API '
                    'group %s %s' % (what, user, verb, res, group, where),
                    {"name": name, "kind": rt.plural, "group": rt.group} if name else
                    {"kind": rt.plural, "group": rt.group})


def too_many_requests(message, retry_after=None):
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return ApiError(429, "TooManyRequests", message, headers=headers)


def gone(message):
    return ApiError(410, "Expired", message)


def internal(message):
    return ApiError(500, "InternalError", "Internal error occurred: %s" % message)
