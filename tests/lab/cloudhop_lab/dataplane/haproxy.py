"""A real HAProxy in a namespace, in master-worker mode, reloaded gracefully on config change.

Reloads go through the master CLI (``-S <dir>/master.sock``, command ``reload``), not SIGUSR2.
HAProxy 2.6 loses a SIGUSR2 that arrives in a short window right after it logs "Loading
success." (measured: a signal sent as soon as that line appears never gives a second load), and
kills itself on one that arrives before its handlers are set. The master CLI is refused in that
window instead, which the sender sees and retries; a command it accepts is never lost (measured:
30 back-to-back reloads, also with the CPUs busy, 30 loads). Every reload is confirmed by the master's
next "Loading success"/"Loading failure" line; an unconfirmed one is retried on the next apply,
so the running configuration always converges on the last one asked for.
"""

import logging
import os
import socket
import time

from . import netns as nsx

LOG = logging.getLogger("cloudhop_lab")
HAPROXY = "/usr/sbin/haproxy"
LOAD_TIMEOUT = 5.0  # seconds to wait for a start or reload to finish


class HAProxy:
    def __init__(self, netns, directory):
        self.netns = netns
        self.dir = directory
        self.cfg = os.path.join(directory, "haproxy.cfg")
        self.log = os.path.join(directory, "haproxy.log")
        self.sock = os.path.join(directory, "master.sock")
        self.proc = None
        self.text = None     # what the configuration file holds
        self.loaded = None   # what the master has confirmed loading
        self.expect = None   # (load counts before, text, when): a load asked for, unconfirmed
        self.failed = None   # a text that failed to load: not asked for again

    def apply(self, text):
        """Run with this configuration (start, or reload when it changed) and return once the
        master has loaded it, or after LOAD_TIMEOUT (then the next call checks and retries)."""
        deadline = time.monotonic() + LOAD_TIMEOUT
        if text != self.text:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            with open(self.cfg + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(self.cfg + ".tmp", self.cfg)
            self.text = text
        spawned = False
        while True:
            self._settle()
            if not self.alive():
                if spawned:
                    return  # it exited while starting; the next apply starts it again
                if os.path.exists(self.sock):
                    os.unlink(self.sock)
                self.loaded, self.failed = None, None
                self.expect = (self._loads(), text, time.monotonic())  # the log is appended to
                self.proc = nsx.spawn(self.netns, [HAPROXY, "-W", "-db", "-S", self.sock,
                                                   "-f", self.cfg], self.log)
                spawned = True
            elif text in (self.loaded, self.failed):
                return
            elif self.expect is None or time.monotonic() - self.expect[2] > LOAD_TIMEOUT:
                # a load still under way reads the file as it is now or later: wait for it;
                # otherwise (none, or it was never confirmed) ask for one
                if self.expect is not None:
                    LOG.warning("haproxy in %s: no load confirmed %.0f s after asking; asking "
                                "again", self.netns, LOAD_TIMEOUT)
                before = self._loads()
                if self._command("reload"):
                    self.expect = (before, text, time.monotonic())
                # else the master is not listening yet (it logs its load before it opens its
                # CLI) or is between processes: ask again in a moment
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)

    def _settle(self):
        """Account for the load asked for, once the master has logged its outcome."""
        if self.expect is None:
            return
        (ok, failed), text, _when = self.expect
        now = self._loads()
        if now[0] > ok:
            self.loaded, self.expect = text, None
        elif now[1] > failed:
            self.failed, self.expect = text, None
            LOG.warning("haproxy in %s: a new configuration failed to load, the previous one "
                        "still serves; see %s", self.netns, self.log)

    def _command(self, command):
        """Send one master CLI command; False when the master does not take it."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(LOAD_TIMEOUT)
                s.connect(self.sock)
                s.sendall(command.encode() + b"\n")
                while s.recv(4096):
                    pass
            return True
        except OSError:
            return False

    def _loads(self):
        """(successful, failed) loads the master has logged in this directory's log file."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            return (0, 0)
        return (text.count("Loading success"), text.count("Loading failure"))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        nsx.terminate(self.proc)
        self.proc = None
        self.text = None
        self.loaded = None
        self.expect = None
        self.failed = None


# Sessions that did not go normally (an error, a timeout, a retry or redispatch, a 5xx) are
# logged with their timers (wait/connect/total ms), server and retries, so a lost or slow request
# can be traced to the proxy and the server it tried; normal ones are not (dontlog-normal).
GLOBAL = """global
  maxconn 4096
  log stderr format short local0 info
defaults
  log global
  option dontlog-normal
  log-format "%t %ci:%cp %ft %b/%s %Tw/%Tc/%Tt %ST %ts %ac/%fc/%bc/%sc/%rc"
  timeout client 30s
  timeout server 30s
"""
