"""The fixture's echo app: answers with the pod, its app (the pod's ``app`` label), node, cluster
and cloud that served the request.

Standard library only; runs inside a pod's network namespace.
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
    args = parser.parse_args()
    identity = {"pod": args.pod, "app": args.app, "namespace": args.namespace,
                "node": args.node, "cluster": args.cluster, "cloud": args.cloud}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, fmt, *a):
            return

        def do_GET(self):  # noqa: N802 (http.server API)
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
