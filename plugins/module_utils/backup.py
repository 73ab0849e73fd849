# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of API objects before they change: a 0700 directory, 0600 files, never overwritten."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import json
import os
import tempfile

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError


def check_backup_dir(path, option="backup_dir"):
    """Fail early (also in check mode) when backups cannot be written to ``path``."""
    if not path:
        raise MigrationError("%s is empty; set it to a directory for backups of changed objects"
                             % option)
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe.rstrip("/")) or "/"
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise MigrationError("%s %s: %s is not a directory; choose a directory for backups"
                             % (option, path, probe))
    # os.access() says yes to root everywhere; only creating a file tells (read-only mounts,
    # pseudo file systems), so create one and remove it again
    try:
        fd, tmp = tempfile.mkstemp(prefix=".cloudhop-probe-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise MigrationError("%s %s is not writable (%s: %s); choose a writable directory or fix "
                             "its permissions" % (option, path, probe, exc.strerror))


def write_backup(directory, stem, obj):
    """Write ``obj`` as JSON to ``directory/stem-<UTC time>.json`` (0600); return the path."""
    try:
        os.makedirs(directory, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise MigrationError("cannot create backup_dir %s: %s" % (directory, exc.strerror))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    path = os.path.join(directory, "%s-%s.json" % (stem, stamp))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
    except OSError as exc:
        raise MigrationError("cannot write the backup %s: %s; nothing was changed"
                             % (path, exc.strerror))
    return path


def read_backup(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (IOError, OSError) as exc:
        raise MigrationError("cannot read the backup %s: %s; give the backup_path a previous "
                             "run returned" % (path, exc.strerror))
    except ValueError as exc:
        raise MigrationError("the backup %s is not JSON (%s)" % (path, exc))
