# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pieces every cloudhop module shares: the one domain exception and small pure helpers.

Standard library only, so that node-side code may import it too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import traceback

COLLECTION_VERSION = "0.1.0"


class MigrationError(Exception):
    """The one exception modules turn into ``fail_json`` (in ``main()``).

    ``msg`` says what is wrong, with which object, and what to do; ``details`` are extra
    structured return values (never secrets).
    """

    def __init__(self, msg, **details):
        super(MigrationError, self).__init__(msg)
        self.msg = msg
        self.details = details


class ModuleWrapper(object):
    """What the collection's module wrappers (KubeModule, GoogleModule) share: the wrapped
    AnsibleModule as ``module`` and its params, check mode and diff mode."""

    module = None

    @property
    def params(self):
        return self.module.params

    @property
    def check_mode(self):
        return self.module.check_mode

    @property
    def diff_mode(self):
        return self.module._diff


def run_module(module, func):
    """``func(module)`` -> result dict, then ``exit_json`` or ``fail_json`` exactly once: a
    MigrationError with its message and details, anything else as an unexpected error with its
    traceback. The one way the modules that are not Kubernetes modules end."""
    try:
        result = func(module)
    except MigrationError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="unexpected error: %s" % exc, exception=traceback.format_exc())
    module.exit_json(**result)


def redo_on_conflict(attempt, is_conflict, retries, reread=None):
    """``attempt()`` computes a change from what it read and writes it; when the write fails with
    an error ``is_conflict`` recognises (another writer changed the object in between),
    ``reread(error)`` is called and the attempt made again, up to ``retries`` times; the last
    conflict is raised. client-go's RetryOnConflict, for any API."""
    for count in range(retries + 1):
        try:
            return attempt()
        except MigrationError as exc:
            if not is_conflict(exc) or count == retries:
                raise
            if reread is not None:
                reread(exc)
    return None  # not reached


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dig(obj, *path, **kw):
    """obj[path[0]][path[1]]... or ``default`` when any step is missing or not a dict."""
    cur = obj
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return kw.get("default")
        cur = cur[key]
    return cur


def merge_patch_apply(target, patch):
    """RFC 7386: what the server computes for a JSON merge patch (for diffs and dry checks)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch_apply(out.get(key), value)
    return out
