"""A real HAProxy in a namespace, reloaded gracefully (master-worker, SIGUSR2) on config change."""

import os
import signal

from . import netns as nsx

HAPROXY = "/usr/sbin/haproxy"


class HAProxy:
    def __init__(self, netns, directory):
        self.netns = netns
        self.dir = directory
        self.cfg = os.path.join(directory, "haproxy.cfg")
        self.proc = None
        self.text = None

    def apply(self, text):
        """Run with this configuration (start, or reload when it changed)."""
        if self.alive() and text == self.text:
            return
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        with open(self.cfg + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(self.cfg + ".tmp", self.cfg)
        self.text = text
        if self.alive():
            self.proc.send_signal(signal.SIGUSR2)  # master re-execs workers, no dropped conns
        else:
            self.proc = nsx.spawn(self.netns, [HAPROXY, "-W", "-db", "-f", self.cfg],
                                  os.path.join(self.dir, "haproxy.log"))

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
