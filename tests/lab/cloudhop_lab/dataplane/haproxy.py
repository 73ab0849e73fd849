"""A real HAProxy in a namespace, reloaded gracefully (master-worker, SIGUSR2) on config change."""

import os
import signal
import time

from . import netns as nsx

HAPROXY = "/usr/sbin/haproxy"
LOAD_TIMEOUT = 5.0  # seconds to wait for a start or reload to finish


class HAProxy:
    def __init__(self, netns, directory):
        self.netns = netns
        self.dir = directory
        self.cfg = os.path.join(directory, "haproxy.cfg")
        self.log = os.path.join(directory, "haproxy.log")
        self.proc = None
        self.text = None

    def apply(self, text):
        """Run with this configuration (start, or reload when it changed) and return once the
        master has loaded it. Waiting matters: a SIGUSR2 that reaches the master before it has
        set up its signal handlers is lost, and two that arrive during one reload make one."""
        if self.alive() and text == self.text:
            return
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        with open(self.cfg + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(self.cfg + ".tmp", self.cfg)
        self.text = text
        loaded = self._loads()  # the log is appended to across restarts
        if self.alive():
            self.proc.send_signal(signal.SIGUSR2)  # master re-execs workers, no dropped conns
        else:
            self.proc = nsx.spawn(self.netns, [HAPROXY, "-W", "-db", "-f", self.cfg], self.log)
        deadline = time.monotonic() + LOAD_TIMEOUT
        while self._loads() <= loaded and self.alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _loads(self):
        """Loads the master has finished: it logs one line for each, success or failure."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as fh:
                return sum(1 for line in fh if "Loading success" in line or
                           "Loading failure" in line)
        except OSError:
            return 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        nsx.terminate(self.proc)
        self.proc = None
        self.text = None


GLOBAL = """global
  maxconn 4096
  log stderr format short local0 warning
defaults
  log global
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch
"""
