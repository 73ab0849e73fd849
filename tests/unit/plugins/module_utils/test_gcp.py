"""Cloud DNS and Compute Engine logic of module_utils/gcp.py: the change that sets a record set,
zone choice, the CCM's forwarding-rule description, error parsing, and the retry behaviour of
GoogleApi.call against a fake session."""

import json

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import gcp
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

ZONES = [{"name": "example-com", "dnsName": "example.com.", "visibility": "public"},
         {"name": "example-com-internal", "dnsName": "example.com.", "visibility": "private"},
         {"name": "other", "dnsName": "other.org.", "visibility": "public"}]


def test_fqdn_adds_the_dot_and_lowers():
    assert gcp.fqdn("App.Example.com") == "app.example.com."
    assert gcp.fqdn("app.example.com.") == "app.example.com."
    with pytest.raises(MigrationError):
        gcp.fqdn("  ")


def test_in_zone_needs_a_label_boundary():
    assert gcp.in_zone("app.example.com", "example.com")
    assert gcp.in_zone("example.com.", "example.com")
    assert not gcp.in_zone("app.badexample.com", "example.com")
    assert not gcp.in_zone("app.example.org", "example.com")


def test_change_creates_a_missing_set():
    change = gcp.rrset_change(None, "app.example.com", "A", 60, ["203.0.113.8", "203.0.113.7"])
    assert change["deletions"] == []
    assert change["additions"] == [{"kind": "dns#resourceRecordSet", "name": "app.example.com.",
                                    "type": "A", "ttl": 60,
                                    "rrdatas": ["203.0.113.7", "203.0.113.8"]}]


def test_change_deletes_the_set_exactly_as_read():
    current = {"kind": "dns#resourceRecordSet", "name": "app.example.com.", "type": "A",
               "ttl": 300, "rrdatas": ["198.51.100.4"], "signatureRrdatas": []}
    change = gcp.rrset_change(current, "app.example.com.", "A", 60, ["198.51.100.4"])
    assert change["deletions"] == [{"kind": "dns#resourceRecordSet", "name": "app.example.com.",
                                    "type": "A", "ttl": 300, "rrdatas": ["198.51.100.4"]}]
    assert change["additions"][0]["ttl"] == 60


def test_no_change_when_equal_in_any_order():
    current = {"name": "app.example.com.", "type": "A", "ttl": 60,
               "rrdatas": ["203.0.113.8", "203.0.113.7"]}
    assert gcp.rrset_change(current, "app.example.com", "A", 60,
                            ["203.0.113.7", "203.0.113.8"]) is None
    assert gcp.rrset_change(current, "app.example.com", "A", 61,
                            ["203.0.113.7", "203.0.113.8"]) is not None


def test_change_to_absent_deletes_only_what_exists():
    current = {"kind": "dns#resourceRecordSet", "name": "old.example.com.", "type": "A",
               "ttl": 300, "rrdatas": ["198.51.100.4"]}
    change = gcp.rrset_change(current, "old.example.com", "A", 300, None)
    assert change["additions"] == [] and change["deletions"] == [current]
    assert gcp.rrset_change(None, "old.example.com", "A", 300, None) is None


def test_pick_zone_prefers_the_single_public_zone():
    assert gcp.pick_zone(ZONES, "example.com")["name"] == "example-com"
    assert gcp.pick_zone(ZONES, "example.com", "example-com-internal")["name"] == \
        "example-com-internal"


def test_pick_zone_errors_name_what_exists():
    with pytest.raises(MigrationError) as err:
        gcp.pick_zone(ZONES, "missing.net")
    assert "no Cloud DNS managed zone for missing.net." in err.value.msg
    assert "other (other.org.)" in err.value.msg
    with pytest.raises(MigrationError) as err:
        gcp.pick_zone(ZONES, "other.org", "example-com")
    assert "serves example.com., not other.org." in err.value.msg
    with pytest.raises(MigrationError) as err:
        gcp.pick_zone(ZONES, "example.com", "nope")
    assert "managed zone nope not found" in err.value.msg
    two_public = [dict(z, visibility="public") for z in ZONES[:2]]
    with pytest.raises(MigrationError) as err:
        gcp.pick_zone(two_public, "example.com")
    assert "2 managed zones serve example.com." in err.value.msg


def test_rules_for_service_reads_the_ccm_description():
    rules = [
        {"name": "a1", "IPAddress": "203.0.113.7",
         "description": '{"kubernetes.io/service-name":"ingress-nginx/ingress-gcp"}'},
        {"name": "a2", "IPAddress": "203.0.113.9",
         "description": '{"kubernetes.io/service-name":"ingress-nginx/ingress-gcp"}'},
        {"name": "a3", "IPAddress": "203.0.113.7",
         "description": '{"kubernetes.io/service-name":"default/other"}'},
        {"name": "manual", "IPAddress": "203.0.113.7", "description": "made by hand"},
        {"name": "list", "IPAddress": "203.0.113.7", "description": "[1, 2]"},
    ]
    assert [r["name"] for r in gcp.rules_for_service(rules, "ingress-nginx/ingress-gcp")] == \
        ["a1", "a2"]
    assert [r["name"] for r in gcp.rules_for_service(rules, "ingress-nginx/ingress-gcp",
                                                     "203.0.113.7")] == ["a1"]
    assert gcp.service_of(rules[3]) is None and gcp.service_of(rules[4]) is None


def test_error_of_both_shapes():
    api = {"error": {"code": 412, "message": "Precondition not met",
                     "errors": [{"reason": "conditionNotMet"}]}}
    assert gcp.error_of(api, "x") == ("conditionNotMet", "Precondition not met")
    oauth = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    assert gcp.error_of(oauth, "x") == ("invalid_grant", "Invalid JWT Signature.")
    assert gcp.error_of(None, "Bad Gateway") == ("error", "Bad Gateway")


def test_key_material_collects_every_form():
    info = {"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n", "private_key_id": "0" * 40}
    text = json.dumps(info)
    found = gcp.key_material(text, info, text)
    assert info["private_key"] in found and info["private_key_id"] in found and text in found
    assert gcp.key_material("/path/sa.json", info, text) == {info["private_key"],
                                                             info["private_key_id"], text}


class FakeResponse:
    def __init__(self, status, body=None):
        self.status_code = status
        self.content = json.dumps(body).encode() if body is not None else b""
        self._body = body
        self.reason = "Reason"

    def json(self):
        return self._body


class FakeSession:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, params=None, json=None, timeout=None):  # noqa: A002
        self.calls.append((method, url, params, json))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def api_with(answers, retries=3):
    api = gcp.GoogleApi.__new__(gcp.GoogleApi)
    api.session = FakeSession(answers)
    api.endpoint_url, api.timeout, api.retries = "http://lab:5001", 5, retries
    api.email, api.project = "sa@p.iam.gserviceaccount.com", "p"
    api.slept = []
    api.sleep = api.slept.append
    return api


def test_call_retries_5xx_and_429_with_backoff():
    api = api_with([FakeResponse(503, {}), FakeResponse(429, {}), FakeResponse(200, {"a": 1})])
    assert api.call("GET", "dns", "/dns/v1/x") == {"a": 1}
    assert api.slept == [0.5, 1.0]
    assert api.session.calls[0][1] == "http://lab:5001/dns/v1/x"


def test_call_gives_up_after_the_retries_with_the_reason():
    api = api_with([FakeResponse(503, {"error": {"message": "backend down",
                                                 "errors": [{"reason": "backendError"}]}})] * 3,
                   retries=2)
    with pytest.raises(gcp.GoogleApiError) as err:
        api.call("GET", "dns", "/dns/v1/x", what="read the zone")
    assert err.value.code == 503
    assert err.value.msg == "read the zone: HTTP 503 backendError: backend down"


def test_call_does_not_retry_a_client_error():
    api = api_with([FakeResponse(412, {"error": {"message": "Precondition not met",
                                                 "errors": [{"reason": "conditionNotMet"}]}})])
    with pytest.raises(gcp.GoogleApiError) as err:
        api.call("POST", "dns", "/dns/v1/c", body={})
    assert err.value.code == 412 and err.value.reason == "conditionNotMet"
    assert len(api.session.calls) == 1 and api.slept == []


def test_real_roots_without_endpoint_url():
    api = api_with([])
    api.endpoint_url = ""
    assert api.url("dns", "/dns/v1/p") == "https://dns.googleapis.com/dns/v1/p"
    assert api.url("compute", "/compute/v1/p") == "https://compute.googleapis.com/compute/v1/p"


def test_forwarding_rules_follow_pages():
    api = api_with([FakeResponse(200, {"items": [{"name": "a"}], "nextPageToken": "t1"}),
                    FakeResponse(200, {"items": [{"name": "b"}]})])
    assert [r["name"] for r in api.forwarding_rules("p", "europe-west3")] == ["a", "b"]
    assert api.session.calls[1][2] == {"pageToken": "t1"}


def test_wait_change_polls_until_done():
    api = api_with([FakeResponse(200, {"id": "3", "status": "pending"}),
                    FakeResponse(200, {"id": "3", "status": "done"})])
    done = api.wait_change("p", "z", {"id": "3", "status": "pending"}, timeout=30, poll=0.1)
    assert done["status"] == "done" and len(api.session.calls) == 2
