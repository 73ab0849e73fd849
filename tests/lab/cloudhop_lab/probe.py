"""Traffic probe: HTTP requests to http://app.example.test/ at a fixed rate, from the internet.

Runs in namespace clh-client. Resolves through the lab's DNS server and caches answers for
their TTL, as a caching resolver does (so a DNS change is seen only after the old TTL runs out).
Every request goes to .lab/probe.jsonl; .lab/probe-summary.json is rewritten every second and at
exit: total, failed, longest gap without a success, latency p50/p99, per answering cloud.

Write mode (``--writes``): each request is a ``POST`` of ``{"id": "<run>-<n>"}`` (a new id every
time) to the app's URL (default https://api.example.test/orders); an answer 200/201 means the
app's MongoDB acknowledged the write, anything else is a failed write. ``--verify`` (run by
``probe stop`` in the operator's namespace, which reaches the members) reads every acknowledged
id back from the replica set's current primary and adds to the summary ``acknowledged``,
``failed`` and ``lost`` (acknowledged but not there: a rolled-back or otherwise lost write),
with the first lost ids.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import ssl
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import dns.message
import dns.query
import dns.rdatatype


class Resolver:
    def __init__(self, server, stale=False):
        self.server = server
        self.stale = stale  # keep the first answer for good (a client ignoring the TTL)
        self.cache = {}  # name -> (ip, expires)
        self.lock = threading.Lock()

    def resolve(self, name):
        with self.lock:
            hit = self.cache.get(name)
            if hit and (self.stale or hit[1] > time.monotonic()):
                return hit[0]
        resp = dns.query.udp(dns.message.make_query(name, dns.rdatatype.A), self.server,
                             timeout=1)
        for rrset in resp.answer:
            if rrset.rdtype == dns.rdatatype.A:
                ip = rrset[0].address
                with self.lock:
                    self.cache[name] = (ip, time.monotonic() + rrset.ttl)
                return ip
        raise RuntimeError("no A record for %s" % name)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address resolved beforehand, with the URL's host as SNI and for the
    certificate check."""

    def __init__(self, ip, host, port, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self.ip = ip

    def connect(self):
        sock = socket.create_connection((self.ip, self.port), self.timeout)
        # as http.client's own connect() does: without it Nagle holds the request back until
        # the server ACKs the end of the TLS handshake (up to a delayed ACK, 40 ms: measured)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def request(ip, url, timeout, context=None, body=None):
    """GET ``url`` from address ``ip`` (POST ``body`` when given): (status, headers, body)."""
    if url.scheme == "https":
        conn = PinnedHTTPSConnection(ip, url.hostname, url.port or 443, timeout, context)
    else:
        conn = http.client.HTTPConnection(ip, url.port or 80, timeout=timeout)
    try:
        headers = {"Host": url.hostname, "User-Agent": "cloudhop-lab-probe"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request("GET" if body is None else "POST", url.path or "/", body=body,
                     headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def pct(values, q):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1))))]


class Probe:
    def __init__(self, args):
        self.args = args
        self.resolver = Resolver(args.dns, stale=args.stale)
        self.urls = [urllib.parse.urlsplit(u) for u in args.url or ["http://%s/" % args.host]]
        self.context = ssl.create_default_context(cafile=args.cacert) if args.cacert else \
            ssl.create_default_context()
        self.count = 0
        self.lock = threading.Lock()
        self.records = []
        self.last_success = None
        self.longest_gap = 0.0
        self.started = time.time()
        self.log = open(args.log, "a", encoding="utf-8")  # pylint: disable=consider-using-with
        self.stop = threading.Event()
        self.run_id = "%x" % int(self.started * 1000)

    def one(self, scheduled, url, n=0):
        rec = {"t": round(scheduled, 3)}
        if len(self.urls) > 1:
            rec["url"] = url.geturl()
        post = None
        if self.args.writes:
            rec["id"] = "%s-%d" % (self.run_id, n)
            post = json.dumps({"id": rec["id"]}).encode()
        t0 = time.monotonic()
        try:
            ip = self.resolver.resolve(url.hostname)
            rec["ip"] = ip
            status, _headers, body = request(ip, url, self.args.timeout, self.context, post)
            if post is not None and status in (200, 201):
                status = 200  # acknowledged (201: written now; 200: that id was there)
            rec["status"] = status
            if status == 200:
                try:
                    rec.update({k: v for k, v in json.loads(body).items()
                                if k in ("pod", "node", "cloud", "cluster", "app", "proto")})
                except ValueError:
                    pass
        except Exception as exc:  # pylint: disable=broad-except
            rec["error"] = "%s: %s" % (type(exc).__name__, exc)
        rec["ms"] = round((time.monotonic() - t0) * 1000, 2)
        ok = rec.get("status") == 200
        with self.lock:
            self.records.append(rec)
            self.log.write(json.dumps(rec) + "\n")
            self.log.flush()
            if ok:
                if self.last_success is not None:
                    self.longest_gap = max(self.longest_gap, scheduled - self.last_success)
                self.last_success = max(self.last_success or 0, scheduled)

    def summary(self):
        with self.lock:
            recs = list(self.records)
            gap = self.longest_gap
        ok = [r for r in recs if r.get("status") == 200]
        per = {"cloud": {}, "cluster": {}, "app": {}}
        for r in ok:
            for key, counts in per.items():
                counts[r.get(key, "?")] = counts.get(r.get(key, "?"), 0) + 1
        out = {"total": len(recs), "failed": len(recs) - len(ok),
               "longest_gap_s": round(gap, 3),
               "latency_ms": {"p50": pct([r["ms"] for r in ok], 50),
                              "p99": pct([r["ms"] for r in ok], 99)},
               "per_cloud": per["cloud"], "per_cluster": per["cluster"], "rate": self.args.rate,
               "seconds": round(time.time() - self.started, 1),
               "addresses": sorted({r["ip"] for r in recs if r.get("ip")}),
               "stale": self.args.stale}
        if self.args.writes:
            out.update(mode="writes", acknowledged=len(ok), lost=None)
        if len(self.urls) > 1:
            out["per_app"] = per["app"]
            out["per_url"] = {}
            for r in recs:
                entry = out["per_url"].setdefault(r["url"], {"total": 0, "failed": 0,
                                                             "apps": {}})
                entry["total"] += 1
                if r.get("status") != 200:
                    entry["failed"] += 1
                else:
                    entry["apps"][r.get("app", "?")] = entry["apps"].get(r.get("app", "?"), 0) + 1
        return out

    def write_summary(self):
        tmp = self.args.summary + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.summary(), fh, indent=2)
        os.replace(tmp, self.args.summary)

    def run(self):
        interval = 1.0 / self.args.rate
        nxt = time.time()
        last_summary = 0
        with ThreadPoolExecutor(max_workers=max(4, int(self.args.rate))) as pool:
            while not self.stop.is_set():
                if self.args.duration and time.time() - self.started >= self.args.duration:
                    break
                pool.submit(self.one, nxt, self.urls[self.count % len(self.urls)], self.count)
                self.count += 1
                nxt += interval
                if time.time() - last_summary >= 1:
                    self.write_summary()
                    last_summary = time.time()
                self.stop.wait(max(0, nxt - time.time()))
        self.write_summary()


def verify_writes(log_path, summary_path, uri):
    """Read every acknowledged id of a write probe's log back from the replica set's current
    primary; add acknowledged, failed and lost to its summary."""
    import pymongo  # pylint: disable=import-outside-toplevel
    acked, failed = [], 0
    with open(log_path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("status") == 200 and rec.get("id"):
                acked.append(rec["id"])
            else:
                failed += 1
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=30000)
    try:
        orders = client.get_default_database().orders
        found = set()
        for i in range(0, len(acked), 1000):
            found.update(d["_id"] for d in orders.find({"_id": {"$in": acked[i:i + 1000]}},
                                                       {"_id": 1}))
        primary = "%s:%d" % client.primary if client.primary else None
    finally:
        client.close()
    lost = [i for i in acked if i not in found]
    with open(summary_path, encoding="utf-8") as fh:
        out = json.load(fh)
    out.update(mode="writes", acknowledged=len(acked), failed=failed, lost=len(lost),
               lost_ids=lost[:20], verified_on=primary)
    tmp = summary_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
    os.replace(tmp, summary_path)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="app.example.test")
    parser.add_argument("--url", action="append",
                        help="a URL to probe (repeatable; round robin); default http://HOST/")
    parser.add_argument("--cacert", help="CA bundle for https URLs (the lab's CA)")
    parser.add_argument("--stale", action="store_true",
                        help="resolve each host once and keep the address (ignore the TTL)")
    parser.add_argument("--dns", required=True)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--check", action="store_true",
                        help="one request, not logged: exit 0 when the app answers 200")
    parser.add_argument("--writes", action="store_true",
                        help="POST a new id each time; 200/201 is an acknowledged write")
    parser.add_argument("--verify", metavar="MONGODB_URI",
                        help="read the log's acknowledged ids back from the replica set's "
                             "primary, add acknowledged/failed/lost to the summary, exit")
    args = parser.parse_args(argv)
    if args.verify:
        print(json.dumps(verify_writes(args.log, args.summary, args.verify)))
        return
    if args.check:
        try:
            for raw in args.url or ["http://%s/" % args.host]:
                url = urllib.parse.urlsplit(raw)
                ip = Resolver(args.dns).resolve(url.hostname)
                status = request(ip, url, args.timeout, ssl.create_default_context(
                    cafile=args.cacert))[0]
                if status != 200:
                    raise SystemExit("%s (%s) answered HTTP %d" % (raw, ip, status))
            raise SystemExit(0)
        except (OSError, RuntimeError, http.client.HTTPException) as exc:
            raise SystemExit("%s: %s" % (type(exc).__name__, exc))
    probe = Probe(args)
    signal.signal(signal.SIGTERM, lambda *_: probe.stop.set())
    signal.signal(signal.SIGINT, lambda *_: probe.stop.set())
    probe.run()


if __name__ == "__main__":
    main()
