"""The rollout wait on a watch: done at the first event that shows the rollout complete, a watch
the server closes opened again from the last version seen, a 410 Gone read afresh, a deletion or
a timeout reported with the progress. The predicate is kubernetes.core's own DaemonSet one."""

import pytest
from kubernetes.dynamic.resource import ResourceInstance

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import rollout
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.waiter import daemonset_ready


def ready(obj):
    return daemonset_ready(ResourceInstance(None, obj))


def ds(rv, generation, observed, updated, ready_pods, desired=3):
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "canal", "namespace": "kube-system", "resourceVersion": str(rv),
                         "generation": generation},
            "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                       "updatedNumberScheduled": updated, "numberReady": ready_pods}}


class FakeWatch:
    """Hands out one scripted stream per call; records the resourceVersion each started from."""

    def __init__(self, *streams):
        self.streams = list(streams)
        self.calls = []

    def __call__(self, resource_version, seconds):
        self.calls.append((resource_version, seconds))
        stream = self.streams.pop(0) if self.streams else []
        for item in stream:
            if item == "GONE":
                raise rollout.Gone()
            yield item


def test_ends_at_the_first_event_showing_the_rollout_complete():
    patched = ds(10, 2, 1, 3, 3)
    watch = FakeWatch([("MODIFIED", ds(11, 2, 2, 1, 2)), ("MODIFIED", ds(12, 2, 2, 2, 2)),
                       ("MODIFIED", ds(13, 2, 2, 3, 3)), ("MODIFIED", ds(14, 2, 2, 3, 3))])
    obj, events, dummy = rollout.wait_rolled_out(watch, None, ready, 60, patched, "DaemonSet x")
    assert obj["metadata"]["resourceVersion"] == "13" and events == 3
    assert watch.calls == [("10", 60)]  # from the patch's version, nothing read before


def test_a_closed_watch_is_opened_again_from_the_last_version_seen():
    watch = FakeWatch([("MODIFIED", ds(11, 2, 2, 1, 2))], [("BOOKMARK", {"metadata": {"resourceVersion": "15"}})],
                      [("MODIFIED", ds(16, 2, 2, 3, 3))])
    obj, events, dummy = rollout.wait_rolled_out(watch, None, ready, 60, ds(10, 2, 1, 3, 3), "x")
    assert [c[0] for c in watch.calls] == ["10", "11", "15"]
    assert obj["metadata"]["resourceVersion"] == "16" and events == 2


def test_gone_reads_the_object_and_watches_from_its_version():
    got = []

    def get():
        got.append(1)
        return ds(40, 2, 2, 2, 2)

    watch = FakeWatch(["GONE"], [("MODIFIED", ds(41, 2, 2, 3, 3))])
    obj, dummy, dummy2 = rollout.wait_rolled_out(watch, get, ready, 60, ds(10, 2, 1, 3, 3), "x")
    assert got == [1] and [c[0] for c in watch.calls] == ["10", "40"]
    assert obj["metadata"]["resourceVersion"] == "41"


def test_an_object_already_rolled_out_needs_no_watch():
    watch = FakeWatch()
    obj, events, waited = rollout.wait_rolled_out(watch, None, ready, 60, ds(10, 2, 2, 3, 3), "x")
    assert watch.calls == [] and events == 0 and waited == 0.0


def test_deletion_during_the_rollout_fails_naming_it():
    watch = FakeWatch([("DELETED", ds(11, 2, 2, 1, 1))])
    with pytest.raises(MigrationError, match="DaemonSet kube-system/canal was deleted"):
        rollout.wait_rolled_out(watch, None, ready, 60, ds(10, 2, 1, 3, 3),
                                "DaemonSet kube-system/canal")


def test_timeout_reports_the_progress():
    now = [0.0]

    def clock():
        now[0] += 1.0
        return now[0]

    watch = FakeWatch(*[[("MODIFIED", ds(11 + i, 2, 2, 1, 2))] for i in range(20)])
    with pytest.raises(MigrationError) as err:
        rollout.wait_rolled_out(watch, None, ready, 5, ds(10, 2, 1, 3, 3),
                                "DaemonSet kube-system/canal", clock=clock)
    assert "did not finish its rollout within 5 s" in err.value.msg
    assert "updatedNumberScheduled=1" in err.value.msg and "numberReady=2" in err.value.msg
    assert err.value.details["progress"]["generation"] == 2
    assert all(seconds <= 5 for dummy, seconds in watch.calls)


def test_restart_patch_and_annotation():
    patch = rollout.restart_patch("2026-12-01T10:00:00Z")
    assert rollout.restarted_at_of(patch) == "2026-12-01T10:00:00Z"
    assert rollout.restarted_at_of({"spec": {}}) is None


def test_a_paced_restart_records_the_objects_own_min_ready_seconds_once():
    unset = {"metadata": {"annotations": {}}, "spec": {}}
    patch = rollout.restart_patch("t1", unset, 2)
    assert patch["spec"]["minReadySeconds"] == 2
    assert patch["metadata"]["annotations"] == {rollout.MIN_READY_BEFORE: ""}
    own = {"metadata": {}, "spec": {"minReadySeconds": 5}}
    assert rollout.restart_patch("t1", own, 2)["metadata"]["annotations"] == {
        rollout.MIN_READY_BEFORE: "5"}
    # a run resumed after a kill finds the record (and the paced value in spec): it keeps the
    # record, so the restore puts back the value from before the first paced run
    resumed = {"metadata": {"annotations": {rollout.MIN_READY_BEFORE: "5"}},
               "spec": {"minReadySeconds": 2}}
    assert "metadata" not in rollout.restart_patch("t2", resumed, 2)
    assert "minReadySeconds" not in rollout.restart_patch("t3", own)["spec"]


@pytest.mark.parametrize("recorded,restored", [("", None), ("5", 5), ("0", 0)])
def test_the_restore_puts_back_the_recorded_value_and_drops_the_record(recorded, restored):
    obj = {"metadata": {"annotations": {rollout.MIN_READY_BEFORE: recorded}},
           "spec": {"minReadySeconds": 2}}
    assert rollout.restore_patch(obj) == {"metadata": {"annotations": {
        rollout.MIN_READY_BEFORE: None}}, "spec": {"minReadySeconds": restored}}
    assert rollout.restore_patch({"metadata": {}, "spec": {"minReadySeconds": 2}}) is None
