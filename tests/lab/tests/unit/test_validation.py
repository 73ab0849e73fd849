"""The lab API validates object metadata and the collection's kinds as kube-apiserver does
(apimachinery's ValidateObjectMeta, pkg/apis/*/validation): each case is a write a server
without that rule would accept, and the 422 Status names the field, the reason and the words."""

import pytest

from cloudhop_lab import errors, validation

NS = "kube-system"
POD_TEMPLATE = {"metadata": {"labels": {"app": "a"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}


def _rt(api, kind):
    return {"ConfigMap": api.rt("", "v1", "configmaps"), "Secret": api.rt("", "v1", "secrets"),
            "Service": api.rt("", "v1", "services"),
            "Namespace": api.rt("", "v1", "namespaces"),
            "Deployment": api.rt("apps", "v1", "deployments"),
            "DaemonSet": api.rt("apps", "v1", "daemonsets"),
            "PodDisruptionBudget": api.rt("policy", "v1", "poddisruptionbudgets"),
            "Ingress": api.rt("networking.k8s.io", "v1", "ingresses")}[kind]


def _obj(kind, name="x", **fields):
    base = {"ConfigMap": {"data": {"k": "v"}}, "Secret": {"data": {"k": "dg=="}},
            "Service": {"spec": {"ports": [{"port": 80}], "selector": {"app": "a"}}},
            "Namespace": {},
            "Deployment": {"spec": {"selector": {"matchLabels": {"app": "a"}},
                                    "template": POD_TEMPLATE}},
            "DaemonSet": {"spec": {"selector": {"matchLabels": {"app": "a"}},
                                   "template": POD_TEMPLATE}},
            "PodDisruptionBudget": {"spec": {"selector": {"matchLabels": {"app": "a"}},
                                             "minAvailable": 1}},
            "Ingress": {"spec": {"rules": [{"host": "app.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {
                    "name": "web", "port": {"number": 80}}}}]}}]}}}[kind]
    obj = dict(base, metadata={"name": name})
    obj.update(fields)
    return obj


def _refused(api, kind, obj, ns=NS):
    rt = _rt(api, kind)
    with pytest.raises(errors.ApiError) as err:
        api.create(rt, None if kind == "Namespace" else ns, obj)
    assert err.value.code == 422 and err.value.reason == "Invalid"
    return err.value


def _causes(err):
    return [(c["field"], c["reason"]) for c in err.details["causes"]]


def test_every_valid_object_here_is_accepted(api):
    for kind in ("ConfigMap", "Secret", "Service", "Deployment", "DaemonSet",
                 "PodDisruptionBudget", "Ingress"):
        api.create(_rt(api, kind), NS, _obj(kind, metadata={
            "name": "ok-1.a" if kind != "Service" else "ok-1",
            "labels": {"example.com/Key_1.x": "V-1_2.z", "plain": ""},
            "annotations": {"k8s-migration.cloudhop.io/min-ready-seconds-before": "",
                            "Example.COM/Upper": "x"},
            "finalizers": ["example.com/cleanup", "kubernetes"]}))


def test_the_old_annotation_key_is_refused_in_kube_apiservers_words(api):
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={
        "name": "x", "annotations": {"cloudhop.k8s_migration/min-ready-seconds-before": "2"}}))
    assert err.message.startswith(
        'ConfigMap "x" is invalid: metadata.annotations: Invalid value: '
        '"cloudhop.k8s_migration/min-ready-seconds-before": prefix part a lowercase RFC 1123 '
        "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'example.com', regex used for "
        "validation is '")
    assert _causes(err) == [("metadata.annotations", "FieldValueInvalid")]


def test_a_patch_that_adds_a_bad_key_is_refused_and_changes_nothing(api):
    rt = _rt(api, "DaemonSet")
    before = api.create(rt, NS, _obj("DaemonSet", name="canal"))
    with pytest.raises(errors.ApiError) as err:
        api.patch(rt, NS, "canal", "merge",
                  {"metadata": {"annotations": {"a_b/c": "1"}}, "spec": {"minReadySeconds": 2}})
    assert err.value.code == 422
    assert api.get(rt, NS, "canal")["metadata"]["resourceVersion"] == \
        before["metadata"]["resourceVersion"]


@pytest.mark.parametrize("kind,name,words", [
    ("ConfigMap", "Upper", "a lowercase RFC 1123 subdomain"),
    ("ConfigMap", "a" * 254, "must be no more than 253 characters"),
    ("Service", "1st", "a DNS-1035 label"),                   # starts with a digit
    ("Service", "a.b", "a DNS-1035 label"),
    ("Service", "s" * 64, "must be no more than 63 characters"),
    ("Namespace", "a.b", "must not contain dots"),
    ("Deployment", "-x", "a lowercase RFC 1123 subdomain"),
])
def test_names_follow_the_kinds_rule(api, kind, name, words):
    err = _refused(api, kind, _obj(kind, name=name))
    assert ("metadata.name", "FieldValueInvalid") in _causes(err)
    assert words in err.message


def test_generate_name_is_checked_and_may_end_with_a_dash(api):
    rt = _rt(api, "ConfigMap")
    made = api.create(rt, NS, _obj("ConfigMap", metadata={"generateName": "run-"}))
    assert made["metadata"]["name"].startswith("run-")
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={"generateName": "Run_"}))
    assert ("metadata.generateName", "FieldValueInvalid") in _causes(err)
    # maskTrailingDash leaves a lone "-" as it is
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={"generateName": "-"}))
    assert ("metadata.generateName", "FieldValueInvalid") in _causes(err)


@pytest.mark.parametrize("labels,field_value", [
    ({"a/b/c": "x"}, "a/b/c"),                 # two slashes
    ({"/x": "x"}, "/x"),                       # empty prefix
    ({"example.com/": "x"}, "example.com/"),   # empty name
    ({"k" * 64: "x"}, "k" * 64),               # name part over 63
    ({"Example.com/x": "x"}, "Example.com/x"),  # label prefixes are case-sensitive
    ({"k": "v" * 64}, "v" * 64),               # value over 63
    ({"k": "-v"}, "-v"),                       # value must start alphanumeric
])
def test_label_keys_and_values(api, labels, field_value):
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={"name": "x", "labels": labels}))
    assert _causes(err)[0] == ("metadata.labels", "FieldValueInvalid")
    assert validation.go_value(field_value) in err.message


def test_annotations_total_size(api):
    big = {"a": "x" * (128 * 1024), "b": "y" * (128 * 1024)}  # 256 KiB + 2 bytes of keys
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={"name": "x",
                                                                 "annotations": big}))
    assert _causes(err) == [("metadata.annotations", "FieldValueTooLong")]
    assert "Too long: may not be more than 262144 bytes" in err.message
    big["b"] = big["b"][:-2]
    api.create(_rt(api, "ConfigMap"), NS, _obj("ConfigMap", metadata={
        "name": "x", "annotations": big}))


def test_finalizers_and_owner_references(api):
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={
        "name": "x", "finalizers": ["cloudhop.k8s_migration/keep"]}))
    assert _causes(err) == [("metadata.finalizers", "FieldValueInvalid")]
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={
        "name": "x", "finalizers": ["orphan", "foregroundDeletion"]}))
    assert "cannot be both set" in err.message
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u",
             "controller": True}
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={
        "name": "x", "ownerReferences": [owner, dict(owner, name="e"),
                                         {"apiVersion": "v1", "kind": "Event", "name": "e"}]}))
    fields = [f for f, _r in _causes(err)]
    assert "metadata.ownerReferences[2].uid" in fields
    assert "metadata.ownerReferences[2]" in fields         # an Event may not own anything
    assert "metadata.ownerReferences" in fields            # two controllers


def test_an_update_may_not_change_the_uid(api):
    rt = _rt(api, "ConfigMap")
    made = api.create(rt, NS, _obj("ConfigMap"))
    changed = dict(made, metadata=dict(made["metadata"], uid="another"))
    with pytest.raises(errors.ApiError) as err:
        api.update(rt, NS, "x", changed)
    assert _causes(err.value) == [("metadata.uid", "FieldValueInvalid")]
    assert "field is immutable" in err.value.message


@pytest.mark.parametrize("kind,fields,cause", [
    ("ConfigMap", {"data": {"a b": "1"}}, ("data[a b]", "FieldValueInvalid")),
    ("ConfigMap", {"data": {"..x": "1"}}, ("data[..x]", "FieldValueInvalid")),
    ("ConfigMap", {"data": {"k": "x" * (1024 * 1024 + 1)}}, ("", "FieldValueTooLong")),
    ("ConfigMap", {"data": {"k": "1"}, "binaryData": {"k": "MQ=="}},
     ("data[k]", "FieldValueInvalid")),
    ("Secret", {"data": {"a/b": "dg=="}}, ("data[a/b]", "FieldValueInvalid")),
    ("Secret", {"type": "kubernetes.io/tls", "data": {"tls.crt": "dg=="}},
     ("data[tls.key]", "FieldValueRequired")),
    ("Service", {"spec": {"ports": [{"port": 80, "name": "Http"}, {"port": 81, "name": "b"}]}},
     ("spec.ports[0].name", "FieldValueInvalid")),
    ("Service", {"spec": {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}},
     ("spec.ports[1].name", "FieldValueDuplicate")),
    ("Service", {"spec": {"ports": [{"port": 80, "protocol": "HTTP"}]}},
     ("spec.ports[0].protocol", "FieldValueNotSupported")),
    ("Service", {"spec": {"ports": [{"port": 80, "targetPort": "Web_Port"}]}},
     ("spec.ports[0].targetPort", "FieldValueInvalid")),
    ("Service", {"spec": {"ports": [{"port": 80, "nodePort": 30080}]}},
     ("spec.ports[0].nodePort", "FieldValueForbidden")),
    ("Service", {"spec": {"ports": [{"port": 80}], "selector": {"app": "a b"}}},
     ("spec.selector", "FieldValueInvalid")),
    ("Deployment", {"spec": {"selector": {"matchLabels": {"app": "a"}},
                             "template": POD_TEMPLATE, "minReadySeconds": -1}},
     ("spec.minReadySeconds", "FieldValueInvalid")),
    ("Deployment", {"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": POD_TEMPLATE,
                             "minReadySeconds": 700}},
     ("spec.progressDeadlineSeconds", "FieldValueInvalid")),
    ("DaemonSet", {"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": dict(
        POD_TEMPLATE, metadata={"labels": {"app": "a"}, "annotations": {"a_b/c": "1"}})}},
     ("spec.template.metadata.annotations", "FieldValueInvalid")),
    ("DaemonSet", {"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": dict(
        POD_TEMPLATE, spec=dict(POD_TEMPLATE["spec"], restartPolicy="Never"))}},
     ("spec.template.spec.restartPolicy", "FieldValueNotSupported")),
    ("PodDisruptionBudget", {"spec": {"selector": {"matchLabels": {"a b": "x"}},
                                      "minAvailable": 1}},
     ("spec.selector.matchLabels", "FieldValueInvalid")),
    ("Ingress", {"spec": {"rules": [{"host": "App.example.com"}]}},
     ("spec.rules[0].host", "FieldValueInvalid")),
    ("Ingress", {"spec": {"rules": [{"host": "10.0.0.1"}]}},
     ("spec.rules[0].host", "FieldValueInvalid")),
    ("Ingress", {"spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {
        "service": {"name": "web", "port": {"number": 80}}}}]}}]}},
     ("spec.rules[0].http.paths[0].pathType", "FieldValueRequired")),
    ("Ingress", {"spec": {"rules": [{"http": {"paths": [{"path": "api", "pathType": "Prefix",
                                                         "backend": {"service": {
                                                             "name": "web",
                                                             "port": {"number": 80}}}}]}}]}},
     ("spec.rules[0].http.paths[0].path", "FieldValueInvalid")),
    ("Ingress", {"spec": {"rules": [{"http": {"paths": [{"path": "/a//b", "pathType": "Exact",
                                                         "backend": {"service": {
                                                             "name": "web",
                                                             "port": {"number": 80}}}}]}}]}},
     ("spec.rules[0].http.paths[0].path", "FieldValueInvalid")),
    ("Ingress", {"spec": {"rules": [{"http": {"paths": [{"path": "api",
                                                         "pathType": "ImplementationSpecific",
                                                         "backend": {"service": {
                                                             "name": "web",
                                                             "port": {"number": 80}}}}]}}]}},
     ("spec.rules[0].http.paths[0].path", "FieldValueInvalid")),
    ("Ingress", {"spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
                                                         "backend": {"service": {
                                                             "name": "web"}}}]}}]}},
     ("spec.rules[0].http.paths[0].backend.service.port", "FieldValueRequired")),
    ("Ingress", {"spec": {"rules": [{"host": "a.example.com"}],
                          "tls": [{"hosts": ["*.example.com"], "secretName": "Bad_Secret"}]}},
     ("spec.tls[0].secretName", "FieldValueInvalid")),
    # ValidateIngressCreate: the deprecated class annotation must match ingressClassName
    ("Ingress", {"metadata": {"name": "x", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
                 "spec": {"ingressClassName": "public", "rules": [{"host": "a.example.com"}]}},
     ("annotations.kubernetes.io/ingress.class", "FieldValueInvalid")),
])
def test_kind_rules(api, kind, fields, cause):
    err = _refused(api, kind, _obj(kind, **fields))
    assert cause in _causes(err), err.message


def test_a_status_with_several_causes_lists_them_all(api):
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={
        "name": "Bad", "labels": {"k": "-v"}}, data={"a b": "1"}))
    assert err.message.startswith('ConfigMap "Bad" is invalid: [')
    fields = sorted(f for f, _r in _causes(err))
    assert fields == ["data[a b]", "metadata.labels", "metadata.name"]


def test_custom_resources_names_are_dns_subdomains(api):
    crd_rt = api.rt("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    api.create(crd_rt, None, {"metadata": {"name": "widgets.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Service", "singular": "widget"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    rt = api.rt("example.com", "v1", "widgets")
    api.create(rt, NS, {"metadata": {"name": "a.b"}})  # a subdomain: fine for a custom kind
    with pytest.raises(errors.ApiError) as err:
        api.create(rt, NS, {"metadata": {"name": "a", "labels": {"x": "a b"}}})
    assert err.value.code == 422


def test_an_owner_reference_without_a_group_may_start_with_a_slash(api):
    """schema.ParseGroupVersion takes "/v1" (the empty group); "apps/" has no version."""
    owner = {"kind": "ConfigMap", "name": "o", "uid": "u"}
    api.create(_rt(api, "ConfigMap"), NS, _obj("ConfigMap", metadata={
        "name": "x", "ownerReferences": [dict(owner, apiVersion="/v1")]}))
    err = _refused(api, "ConfigMap", _obj("ConfigMap", metadata={
        "name": "y", "ownerReferences": [dict(owner, apiVersion="apps/")]}))
    assert _causes(err) == [("metadata.ownerReferences[0].apiVersion", "FieldValueInvalid")]


def test_an_ingress_prefix_path_is_checked_for_what_a_proxy_would_normalise(api):
    for path, words in (("/a/../b", "must not contain '/../'"), ("/a/.", "cannot end with '/.'"),
                        ("/a%2Fb", "must not contain '%2F'")):
        spec = {"rules": [{"http": {"paths": [{"path": path, "pathType": "Prefix", "backend": {
            "service": {"name": "web", "port": {"number": 80}}}}]}}]}
        err = _refused(api, "Ingress", _obj("Ingress", spec=spec))
        assert words in err.message, err.message
