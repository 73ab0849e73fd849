"""The fixture's echo app: answers with the pod, its app (the pod's ``app`` label), node, cluster
and cloud that served the request.

With ``--mongo-uri`` (the pod's env MONGODB_URI) it is also an app that writes, as a well-behaved
app does: one pymongo client for the pod's life, a seed list of the replica set's members, the
write concern and retryable writes of the URI. ``POST <path>`` with ``{"id": ...}`` (or none: a
new id) inserts ``{_id: id}`` into ``shop.orders`` and answers 201 once MongoDB acknowledged it
(200 if that id exists already: a client's retry of a write that went through); ``GET
/orders/<id>`` reads it from the primary (200 or 404). Any MongoDB error answers 503.

Runs inside a pod's network namespace; the standard library only, and pymongo for MongoDB.
"""

import argparse
import json
import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--pod", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--cloud", required=True)
    parser.add_argument("--cluster", default="")
    parser.add_argument("--app", default="")
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--mongo-uri", default="")
    args = parser.parse_args()
    orders = None
    if args.mongo_uri:
        import pymongo  # pylint: disable=import-outside-toplevel
        orders = pymongo.MongoClient(args.mongo_uri, serverSelectionTimeoutMS=8000,
                                     connectTimeoutMS=2000).get_default_database().orders
    identity = {"pod": args.pod, "app": args.app, "namespace": args.namespace,
                "node": args.node, "cluster": args.cluster, "cloud": args.cloud}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, fmt, *a):
            return

        def reply(self, code, doc):
            body = json.dumps(doc).encode() + b"\n"
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Served-By", "/".join((args.pod, args.node, args.cluster,
                                                      args.cloud)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802 (http.server API)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if orders is None:
                return self.reply(405, dict(identity, error="this app does not write"))
            try:
                doc_id = (json.loads(raw) if raw.strip() else {}).get("id") or os.urandom(
                    12).hex()
            except (ValueError, AttributeError):
                return self.reply(400, dict(identity, error="body: a JSON object, {\"id\": ...}"))
            import pymongo.errors  # pylint: disable=import-outside-toplevel
            try:
                orders.insert_one({"_id": doc_id, "path": self.path, "pod": args.pod})
                code = 201
            except pymongo.errors.DuplicateKeyError:
                code = 200
            except pymongo.errors.PyMongoError as exc:
                return self.reply(503, dict(identity, error="%s: %s" % (type(exc).__name__, exc)))
            return self.reply(code, dict(identity, id=doc_id))

        def do_GET(self):  # noqa: N802 (http.server API)
            if orders is not None and self.path.startswith("/orders/"):
                import pymongo.errors  # pylint: disable=import-outside-toplevel
                try:
                    doc = orders.find_one({"_id": self.path[len("/orders/"):]})
                except pymongo.errors.PyMongoError as exc:
                    why = "%s: %s" % (type(exc).__name__, exc)
                    return self.reply(503, dict(identity, error=why))
                return self.reply(200 if doc else 404, dict(identity, found=bool(doc)))
            if self.path == "/healthz":
                body = b"ok\n"
            else:
                body = json.dumps(dict(identity, path=self.path,
                                       host=self.headers.get("Host", ""),
                                       proto=self.headers.get("X-Forwarded-Proto", ""),
                                       client=self.client_address[0])).encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            served_by = "/".join((args.pod, args.node, args.cluster, args.cloud))
            self.send_header("X-Served-By", served_by)
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET
        allow_reuse_address = True

    httpd = Server(("0.0.0.0", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(args.ready_file, "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    httpd.serve_forever()


if __name__ == "__main__":
    main()
