"""Object metadata validation as kube-apiserver does it, with its field paths, reasons and words.

The rules are apimachinery's (``k8s.io/apimachinery/pkg/api/validation/objectmeta.go``,
``pkg/util/validation`` and ``pkg/api/validate/content``): ``ValidateObjectMetaAccessor`` on
create (name or generateName by the kind's name rule, namespace, generation, labels,
annotations with their 256 kB total, owner references, finalizers) and
``ValidateObjectMetaAccessorUpdate`` on update (the same, plus immutable name, namespace, uid,
creationTimestamp, and no new finalizers while deleting). Each check appends a cause
``(field, reason, message)``; ``message`` is what ``field.Error.ErrorBody()`` prints, so the
Status reads as a real server's (``metadata.annotations: Invalid value: "a_b/c": prefix part a
lowercase RFC 1123 subdomain must consist of ...``).
"""

import json
import re

# --------------------------------------------------------------------------- causes (field.Error)

REASONS = {"Required value": "FieldValueRequired", "Invalid value": "FieldValueInvalid",
           "Forbidden": "FieldValueForbidden", "Too long": "FieldValueTooLong",
           "Unsupported value": "FieldValueNotSupported", "Duplicate value": "FieldValueDuplicate"}


def go_value(value):
    """A bad value as field.Error prints it: strings quoted (%q), numbers and bools plain
    (%v), everything else as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _add(causes, field, kind, detail="", value=None, with_value=False):
    body = kind + (": " + go_value(value) if with_value else "")
    if detail:
        body += ": " + detail
    causes.append((field, REASONS[kind], body))


def required(causes, field, detail=""):
    _add(causes, field, "Required value", detail)


def invalid(causes, field, value, detail):
    _add(causes, field, "Invalid value", detail, value, True)


def forbidden(causes, field, detail):
    _add(causes, field, "Forbidden", detail)


def too_long(causes, field, limit):
    _add(causes, field, "Too long", "may not be more than %d bytes" % limit)


def not_supported(causes, field, value, supported):
    _add(causes, field, "Unsupported value", "supported values: " + ", ".join(
        json.dumps(s) for s in supported), value, True)


def duplicate(causes, field, value):
    _add(causes, field, "Duplicate value", "", value, True)


# --------------------------------------------------------------------------- formats

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = _LABEL + "(\\." + _LABEL + ")*"
_DNS1035 = "[a-z]([-a-z0-9]*[a-z0-9])?"
_KEY_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_CONFIG_KEY = "[-._a-zA-Z0-9]+"
_WILDCARD = "\\*\\." + _SUBDOMAIN


def regex_error(msg, fmt, *examples):
    if not examples:
        return "%s (regex used for validation is '%s')" % (msg, fmt)
    return "%s (e.g. %s, regex used for validation is '%s')" % (
        msg, " or ".join("'%s'" % e for e in examples), fmt)


def max_len_error(limit):
    return "must be no more than %d characters" % limit


def _match(fmt, value):
    return re.fullmatch(fmt, value) is not None


def dns1123_label(value):
    errs = [max_len_error(63)] if len(value) > 63 else []
    if not _match(_LABEL, value):
        errs.append("must not contain dots" if _match(_SUBDOMAIN, value) else regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character", _LABEL, "my-name",
            "123-abc"))
    return errs


def _format_errors(value, limit, fmt, msg, *examples):
    """The length and the regular expression of one of apimachinery's Is* checks."""
    errs = [max_len_error(limit)] if len(value) > limit else []
    if not _match(fmt, value):
        errs.append(regex_error(msg, fmt, *examples))
    return errs


def dns1123_subdomain(value):
    return _format_errors(
        value, 253, _SUBDOMAIN, "a lowercase RFC 1123 subdomain must consist of lower case "
        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
        "character", "example.com")


def dns1035_label(value):
    return _format_errors(
        value, 63, _DNS1035, "a DNS-1035 label must consist of lower case alphanumeric "
        "characters or '-', start with an alphabetic character, and end with an alphanumeric "
        "character", "my-name", "abc-123")


def wildcard_dns1123_subdomain(value):
    return _format_errors(
        value, 253, _WILDCARD, "a wildcard DNS-1123 subdomain must start with '*.', followed "
        "by a valid DNS subdomain, which must consist of lower case alphanumeric characters, "
        "'-' or '.' and end with an alphanumeric character", "*.example.com")


def qualified_name(value):
    """content.IsLabelKey: [prefix/]name, prefix a DNS-1123 subdomain, name 63 at most."""
    parts = value.split("/")
    errs = []
    if len(parts) > 2:
        return ["a valid label key " + regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character", _KEY_NAME, "MyName", "my.name", "123-abc") +
            " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in dns1123_subdomain(parts[0])]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _match(_KEY_NAME, name):
        errs.append("name part " + regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character", _KEY_NAME, "MyName", "my.name", "123-abc"))
    return errs


def label_value(value):
    return _format_errors(
        value, 63, "(" + _KEY_NAME + ")?", "a valid label must be an empty string or consist "
        "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character", "MyValue", "my_value", "12345")


def config_map_key(value):
    errs = [max_len_error(253)] if len(value) > 253 else []
    if not _match(_CONFIG_KEY, value):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, "
                                "'-', '_' or '.'", _CONFIG_KEY, "key.name", "KEY_NAME",
                                "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def port_name(value):
    """IsValidPortName (IANA_SVC_NAME): a container port's or a targetPort's name."""
    errs = [max_len_error(15)] if len(value) > 15 else []
    if not _match("[-a-z0-9]+", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


# --------------------------------------------------------------------------- names per kind

def _path_segment(value):
    """path.IsValidPathSegmentName: what RBAC objects' names must be."""
    if value in (".", ".."):
        return ["may not be '%s'" % value]
    return ["may not contain '%s'" % c for c in ("/", "%") if c in value]


# NameIsDNSSubdomain unless named here (pkg/apis/*/validation: ValidateServiceName is
# NameIsDNS1035Label, ValidateNamespaceName a DNS-1123 label, RBAC names path segments)
NAME_RULES = {"Service": dns1035_label, "Namespace": dns1123_label,
              "Role": _path_segment, "RoleBinding": _path_segment, "ClusterRole": _path_segment,
              "ClusterRoleBinding": _path_segment}


def name_errors(kind, name, prefix=False):
    """The kind's ValidateNameFunc; a generateName (``prefix``) may end with '-' (apimachinery's
    maskTrailingDash replaces the last two characters with "a" before checking)."""
    if prefix and kind not in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding") and \
            len(name) > 1 and name.endswith("-"):
        name = name[:-2] + "a"
    return NAME_RULES.get(kind, dns1123_subdomain)(name)


# --------------------------------------------------------------------------- ObjectMeta

ANNOTATIONS_LIMIT = 256 * 1024
ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"


def validate_labels(labels, field, causes):
    if not isinstance(labels, dict):
        invalid(causes, field, labels, "must be a map of string keys and values")
        return
    for key, value in labels.items():
        for msg in qualified_name(key):
            invalid(causes, field, key, msg)
        if not isinstance(value, str):
            invalid(causes, field, value, "label values must be strings")
            continue
        for msg in label_value(value):
            invalid(causes, field, value, msg)


def validate_annotations(annotations, field, causes):
    if not isinstance(annotations, dict):
        invalid(causes, field, annotations, "must be a map of string keys and values")
        return
    size = 0
    for key, value in annotations.items():
        for msg in qualified_name(key.lower()):
            invalid(causes, field, key, msg)
        if not isinstance(value, str):
            invalid(causes, field, key, "annotation values must be strings")
            continue
        size += len(key.encode()) + len(value.encode())
    if size > ANNOTATIONS_LIMIT:
        too_long(causes, field, ANNOTATIONS_LIMIT)


def validate_owner_references(refs, field, causes):
    controller = None
    for i, ref in enumerate(refs or []):
        here = "%s[%d]" % (field, i)
        ref = ref if isinstance(ref, dict) else {}
        api_version = ref.get("apiVersion") or ""
        if not api_version:
            required(causes, here + ".apiVersion", "must not be empty")
        elif api_version.count("/") > 1 or api_version.endswith("/"):
            # schema.ParseGroupVersion: at most one '/', and a version after it
            invalid(causes, here + ".apiVersion", api_version,
                    "must be <group>/<version> or <version>")
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                required(causes, "%s.%s" % (here, key), "must not be empty")
        if api_version == "v1" and ref.get("kind") == "Event":
            invalid(causes, here, ref, "/v1, Kind=Event is disallowed from being an owner")
        if ref.get("controller") is True:
            this = "%s/%s" % (ref.get("kind"), ref.get("name"))
            if controller:
                invalid(causes, field, refs, "Only one reference can have Controller set to "
                        "true. Found \"true\" in references for %s and %s" % (controller, this))
            else:
                controller = this


def validate_finalizers(finalizers, field, causes):
    if not isinstance(finalizers, list):
        invalid(causes, field, finalizers, "must be a list of strings")
        return
    for name in finalizers:
        for msg in qualified_name(str(name)):
            invalid(causes, field, name, msg)
    if ORPHAN in finalizers and FOREGROUND in finalizers:
        invalid(causes, field, finalizers, "finalizer %s and %s cannot be both set"
                % (ORPHAN, FOREGROUND))


def _common(meta, namespaced, causes):
    if namespaced is True:
        ns = meta.get("namespace")
        if not ns:
            required(causes, "metadata.namespace")
        else:
            for msg in dns1123_label(ns):
                invalid(causes, "metadata.namespace", ns, msg)
    elif namespaced is False and meta.get("namespace"):
        forbidden(causes, "metadata.namespace", "not allowed on this type")
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        invalid(causes, "metadata.generation", generation, "must be greater than or equal to 0")
    validate_labels(meta.get("labels") or {}, "metadata.labels", causes)
    validate_annotations(meta.get("annotations") or {}, "metadata.annotations", causes)
    validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences", causes)


def validate_object_meta(kind, meta, namespaced, causes):
    """ValidateObjectMetaAccessor (create), after name generation; ``namespaced`` None skips
    the namespace rule (a caller that does not know the scope)."""
    if meta.get("generateName"):
        for msg in name_errors(kind, meta["generateName"], prefix=True):
            invalid(causes, "metadata.generateName", meta["generateName"], msg)
    name = meta.get("name")
    if not name:
        required(causes, "metadata.name", "name or generateName is required")
    elif not isinstance(name, str):
        invalid(causes, "metadata.name", name, "must be a string")
    else:
        for msg in name_errors(kind, name):
            invalid(causes, "metadata.name", name, msg)
    _common(meta, namespaced, causes)
    validate_finalizers(meta.get("finalizers") or [], "metadata.finalizers", causes)


def validate_object_meta_update(new, old, causes):
    """ValidateObjectMetaAccessorUpdate: labels, annotations and owner references as on create,
    and what an update may not change. (Finalizers added while deleting are refused before.)"""
    if not new.get("resourceVersion"):
        invalid(causes, "metadata.resourceVersion", "", "must be specified for an update")
    generation, old_generation = new.get("generation") or 0, old.get("generation") or 0
    if generation < old_generation:
        invalid(causes, "metadata.generation", generation, "must not be decremented")
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds"):
        if new.get(key) != old.get(key):
            invalid(causes, "metadata." + key, new.get(key), "field is immutable")
    validate_labels(new.get("labels") or {}, "metadata.labels", causes)
    validate_annotations(new.get("annotations") or {}, "metadata.annotations", causes)
    validate_owner_references(new.get("ownerReferences"), "metadata.ownerReferences", causes)
    validate_finalizers(new.get("finalizers") or [], "metadata.finalizers", causes)
