# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One command on many nodes at once, from one task, through Ansible's own connection plugins.

The roles check every node of a cluster from a task of the cluster's play. A loop delegated to
each node runs the nodes one after another: Ansible has no parallel loop, a play over the nodes
cannot sit inside a phase's role, and an action plugin that runs ``raw`` commands cannot run
``async``. At 100 lab nodes such a loop took 30 s where one parallel SSH sweep takes 9 s.

Each node's connection is built as TaskExecutor builds one for a task delegated to that node:
the connection plugin ``ansible_connection`` names (ssh by default), its options from the
node's variables as ``hostvars`` has them (``ansible_host``, ``ansible_port``, ``ansible_user``,
``ansible_ssh_private_key_file``, ``ansible_ssh_common_args``, ...) and from the configuration
(``ansible.cfg``: ``ssh_args`` with ControlPersist, host key checking, the timeout), the shell
plugin's options the same way, and no become (these checks only read). Play and task vars of
the cluster's play are not the node's and do not apply.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shlex
from concurrent.futures import ThreadPoolExecutor

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_text


class NodeError(Exception):
    """A node the command could not run on: ``unreachable`` (SSH) or another failure."""

    def __init__(self, msg, unreachable):
        super(NodeError, self).__init__(msg)
        self.unreachable = unreachable

    def result(self):
        """The node's entry in a ``results`` list. Not Ansible's ``unreachable`` key: Ansible
        reads it in ``results`` and would call the task's own host unreachable."""
        if self.unreachable:
            return dict(ssh_unreachable=True, msg=str(self))
        return dict(failed=True, msg=str(self))


def _plugin_vars(hostvars, plugin_type, name):
    return dict((var, hostvars[var]) for var in C.config.get_plugin_vars(plugin_type, name)
                if var in hostvars)


class NodeFanout:
    """Connections to ``nodes`` for an action plugin; ``run(command, nodes)`` runs one command on
    each at once. Connections are built once and kept for the task (later runs reuse them), then
    ``close()`` closes them."""

    def __init__(self, action, task_vars):
        self._action = action
        self._hostvars = task_vars.get("hostvars") or {}
        self._conns = {}
        self._forks = int(context.CLIARGS.get("forks") or C.DEFAULT_FORKS)

    def unknown(self, nodes):
        """The names in ``nodes`` that are not hosts of the inventory."""
        return [n for n in nodes if n not in self._hostvars]

    def _connection(self, node):
        conn = self._conns.get(node)
        if conn is not None:
            return conn
        hv = self._hostvars[node]
        kind = hv.get("ansible_connection") or "ssh"
        if kind == "smart":
            kind = "ssh"
        action = self._action
        conn = action._shared_loader_obj.connection_loader.get(
            kind, action._play_context, new_stdin=None, task_uuid=action._task._uuid,
            ansible_playbook_pid=to_text(os.getppid()))
        if conn is None:
            raise NodeError("the connection plugin %r (ansible_connection of %s) was not found"
                            % (kind, node), unreachable=False)
        options = _plugin_vars(hv, "connection", conn._load_name)
        options.setdefault("inventory_hostname", node)
        conn.set_options(task_keys={"timeout": action._play_context.timeout},
                         var_options=options)
        conn._shell.set_options(var_options=_plugin_vars(hv, "shell", conn._shell._load_name))
        conn.set_become_plugin(None)
        self._conns[node] = conn
        return conn

    def _one(self, node, command):
        try:
            conn = self._conns[node]
            # the command in /bin/sh whatever the login shell is; no pty (nothing here reads a
            # terminal, and a bare ``ssh node cmd`` gets none either)
            rc, out, err = conn.exec_command("/bin/sh -c %s" % shlex.quote(command),
                                             sudoable=False)
            return (rc, to_text(out, errors="surrogate_then_replace"),
                    to_text(err, errors="surrogate_then_replace"))
        except AnsibleConnectionFailure as exc:
            return NodeError(to_text(exc), unreachable=True)
        except AnsibleError as exc:
            return NodeError(to_text(exc), unreachable=False)

    def run(self, command, nodes):
        """{node: (rc, stdout, stderr) or NodeError}, every node at once (at most ``forks``);
        ``command`` is one command for all, or a function of the node giving its own."""
        out = {}
        for node in nodes:  # plugin loading and option parsing stay on this thread
            try:
                self._connection(node)
            except NodeError as exc:
                out[node] = exc
            except AnsibleError as exc:
                out[node] = NodeError(to_text(exc), unreachable=False)
        todo = [n for n in nodes if n not in out]
        if todo:
            with ThreadPoolExecutor(max_workers=max(1, min(len(todo), self._forks))) as pool:
                out.update(zip(todo, pool.map(lambda n: self._one(
                    n, command(n) if callable(command) else command), todo)))
        return out

    def close(self):
        for conn in self._conns.values():
            try:
                conn.close()
            except AnsibleError:
                pass
        self._conns = {}
