"""bench/gate_latency.py times the canal gate from the moment the DaemonSet first meets the
condition the roles' wait uses: its predicate must be kubernetes.core's DaemonSet readiness."""

import importlib.util
import itertools
import os

import pytest
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.waiter import daemonset_ready
from kubernetes import client
from kubernetes.dynamic.resource import ResourceInstance

SPEC = importlib.util.spec_from_file_location("gate_latency", os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "..", "bench", "gate_latency.py"))
gate = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gate)

# a rollout in steps: the new generation not yet observed, pods updated one by one, one not
# ready, all done; and a DaemonSet without status
STATES = [dict(zip(("generation", "observed", "desired", "updated", "ready"), v))
          for v in itertools.product((2,), (1, 2), (3,), (1, 3), (2, 3))] + [{"generation": 1}]


@pytest.mark.parametrize("state", STATES)
def test_the_bench_predicate_is_kubernetes_core_daemonset_ready(state):
    status = None
    if "desired" in state:
        status = {"observedGeneration": state["observed"], "desiredNumberScheduled":
                  state["desired"], "updatedNumberScheduled": state["updated"],
                  "numberReady": state["ready"]}
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "canal", "generation": state["generation"]}}
    if status:
        body["status"] = status
    typed = client.V1DaemonSet(
        metadata=client.V1ObjectMeta(name="canal", generation=state["generation"]),
        status=client.V1DaemonSetStatus(
            observed_generation=state["observed"], desired_number_scheduled=state["desired"],
            updated_number_scheduled=state["updated"], number_ready=state["ready"],
            current_number_scheduled=state["desired"], number_misscheduled=0)
        if status else None)
    assert gate.rolled_out(typed) == daemonset_ready(ResourceInstance(None, body))


def test_only_the_finished_rollout_counts():
    done = [s for s in STATES if gate.rolled_out(client.V1DaemonSet(
        metadata=client.V1ObjectMeta(generation=s["generation"]),
        status=client.V1DaemonSetStatus(
            observed_generation=s["observed"], desired_number_scheduled=s["desired"],
            updated_number_scheduled=s["updated"], number_ready=s["ready"],
            current_number_scheduled=s["desired"], number_misscheduled=0))
        if "desired" in s else client.V1DaemonSet(metadata=client.V1ObjectMeta(generation=1)))]
    assert done == [{"generation": 2, "observed": 2, "desired": 3, "updated": 3, "ready": 3}]
