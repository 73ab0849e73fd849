"""Controller loop shared by the lab's simulated controllers.

Each controller is level-triggered, like a real one: it wakes when its API's store changes (or
after ``resync`` seconds) and reconciles everything it owns. Writes go through ``Api`` so they get
resourceVersions, conflicts and watch events exactly as HTTP clients do.
"""

import contextlib
import hashlib
import json
import logging
import math
import threading
import time

from .. import errors
from ..podutil import dc

LOG = logging.getLogger("cloudhop_lab")


class Controller:
    name = "controller"
    resync = 1.0
    debounce = 0.02
    slow_pass = 1.0  # seconds: a longer pass is logged (labd.log), to explain a late reaction

    def __init__(self, api):
        self.api = api
        self._stop = threading.Event()
        self._thread = None
        self.errors = 0

    def start(self):
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()

    def _run(self):
        seen = 0
        while not self._stop.is_set():
            seen = self.api.wait_change(seen, self.resync)
            if self._stop.is_set():
                return
            time.sleep(self.debounce)
            seen = self.api.rv
            began = time.monotonic()
            try:
                self.reconcile()
            except errors.ApiError as exc:
                # conflicts and not-found races are normal for controllers: retry next pass
                if exc.code not in (404, 409):
                    self.errors += 1
                    LOG.warning("%s: %s %s", self.name, exc.code, exc.message)
            except Exception:  # pylint: disable=broad-except
                self.errors += 1
                LOG.exception("%s: reconcile failed", self.name)
            took = time.monotonic() - began
            if took > self.slow_pass:
                LOG.warning("%s: a pass took %.2f s", self.name, took)

    def reconcile(self):
        raise NotImplementedError

    @contextlib.contextmanager
    def isolated(self, obj):
        """One object's failure must not stop the pass for the others (work is per key)."""
        try:
            yield
        except errors.ApiError as exc:
            if exc.code not in (403, 404, 409):
                self.errors += 1
                LOG.warning("%s: %s: %s %s", self.name, _describe(obj), exc.code, exc.message)
        except Exception:  # pylint: disable=broad-except
            self.errors += 1
            LOG.exception("%s: %s failed", self.name, _describe(obj))

    # -------------------------------------------------------------- helpers

    def rt(self, group, version, plural):
        return self.api.rt(group, version, plural)

    def set_status(self, rt, obj, status):
        """Write ``status`` through the status subresource, as a controller's status updater
        does, when it differs from what ``obj`` has; True when it wrote."""
        if status == (obj.get("status") or {}):
            return False
        cur = dc(obj)
        cur["status"] = status
        self.api.update(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], cur,
                        sub="status")
        return True

    def ls(self, group, version, plural, ns=None, copy_objs=False):
        rt = self.rt(group, version, plural)
        if rt is None:
            return []
        return self.api.list(rt, ns, copy_objs=copy_objs)[0]


def _describe(obj):
    if isinstance(obj, dict) and "metadata" in obj:
        meta = obj["metadata"]
        return "%s %s/%s" % (obj.get("kind", ""), meta.get("namespace", ""), meta.get("name"))
    return str(obj)


def template_hash(template):
    data = json.dumps(template, sort_keys=True).encode()
    return str(int(hashlib.sha256(data).hexdigest()[:8], 16) % 10**10)


def owner_ref(obj, controller=True, block=True):
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": controller, "blockOwnerDeletion": block}


def owned_by(obj, owner):
    return any(r.get("uid") == owner["metadata"]["uid"] and r.get("controller")
               for r in obj["metadata"].get("ownerReferences") or [])


def resolve(value, total, round_up):
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        pct = int(value[:-1]) * total / 100.0
        return int(math.ceil(pct)) if round_up else int(math.floor(pct))
    return int(value or 0)


def rollout_plan(desired, strategy, new_count, new_ready, old_children):
    """One step of a RollingUpdate (or Recreate), as the Deployment controller computes it.

    old_children: list of (child, replicas, ready). Returns (new_replicas, {child_name:
    replicas}) - the new child's wanted replicas and the wanted replicas of old children.
    """
    old_total = sum(r for _c, r, _rd in old_children)
    old_ready = sum(rd for _c, _r, rd in old_children)
    if (strategy or {}).get("type") == "Recreate":
        if old_total > 0:
            return 0, {c["metadata"]["name"]: 0 for c, _r, _rd in old_children}
        return desired, {}
    ru = (strategy or {}).get("rollingUpdate") or {}
    surge = resolve(ru.get("maxSurge", "25%"), desired, True)
    unavail = resolve(ru.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavail == 0:
        unavail = 1
    # scale up the new child within the surge budget
    max_total = desired + surge
    new_target = min(desired, max(new_count, max_total - old_total))
    new_target = max(new_target, new_count if new_count <= desired else desired)
    # scale down old children while keeping desired - unavail available
    min_available = desired - unavail
    can_remove = max(0, (old_ready + new_ready) - min_available)
    # unready old replicas can always go first
    plan = {}
    for child, replicas, ready in sorted(old_children, key=lambda t: t[0]["metadata"]
                                         ["creationTimestamp"]):
        unready = replicas - ready
        target = replicas - unready
        step = min(target, can_remove)
        target -= step
        can_remove -= step
        plan[child["metadata"]["name"]] = max(0, target)
    return new_target, plan
