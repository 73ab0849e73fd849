"""endpoint_probe over HTTPS: TCP to resolve_to, TLS server name and Host = the URL's host
(``curl --resolve``), certificate checked against that name. A real TLS server on loopback."""

import datetime
import http.server
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import probe


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.example.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("app.example.test")]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append({"host": self.headers.get("Host"), "sni": self.connection.server_hostname
                         if hasattr(self.connection, "server_hostname") else None})
            body = b'{"cloud": "aws"}' if self.headers.get("Host") == "app.example.test" \
                else b"wrong host"
            self.send_response(200 if body != b"wrong host" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    snis = []
    ctx.sni_callback = lambda sock, server_name, context: snis.append(server_name)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield {"port": srv.server_address[1], "ca": str(d / "cert.pem"), "seen": seen, "snis": snis}
    srv.shutdown()


def _params(port, **kw):
    p = {"url": "https://app.example.test:%d/" % port, "resolve_to": "127.0.0.1",
         "attempts": 3, "interval": 0, "timeout": 5, "min_success_ratio": 1,
         "body_pattern": '"cloud": "aws"'}
    p.update(kw)
    return p


def test_resolve_to_with_sni_and_certificate_check(tls_server):
    req = probe.plan(_params(tls_server["port"]))
    res = probe.evaluate(probe.run_probe(req, 3, 0, probe.ssl_context(True, tls_server["ca"])), 1)
    assert res["passed"] and res["successes"] == 3, res
    assert tls_server["snis"][-1] == "app.example.test"
    assert tls_server["seen"][-1]["host"] == "app.example.test"


def test_certificate_for_another_name_fails_the_check(tls_server):
    req = probe.plan(_params(tls_server["port"], sni="other.example.test",
                             host_header="app.example.test"))
    res = probe.evaluate(probe.run_probe(req, 1, 0, probe.ssl_context(True, tls_server["ca"])), 1)
    assert not res["passed"]
    assert "SSLCertVerificationError" in res["failed_samples"][0]["error"]
    # without verification the same request goes through, with the SNI we chose
    res = probe.evaluate(probe.run_probe(req, 1, 0, probe.ssl_context(False)), 1)
    assert res["passed"] and tls_server["snis"][-1] == "other.example.test"


def test_host_header_override_reaches_the_server(tls_server):
    req = probe.plan(_params(tls_server["port"], host_header="wrong.example.test",
                             sni="app.example.test", body_pattern=None))
    res = probe.evaluate(probe.run_probe(req, 2, 0, probe.ssl_context(True, tls_server["ca"])), 1)
    assert not res["passed"] and res["failed_samples"][0]["status"] == 404


def _plain_plan(port):
    return probe.plan({"url": "http://app.example.test:%d/" % port, "resolve_to": "127.0.0.1",
                       "attempts": 1, "interval": 0, "timeout": 1, "min_success_ratio": 1.0,
                       "wait_timeout": 5})


def test_wait_for_answer_waits_for_a_server_that_comes_up_later():
    """A load balancer whose backends come up after its address: refused at first, then one
    answer ends the wait; the requests refused meanwhile are counted in the wait, not the gate."""
    import socket
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]
    placeholder.close()  # nothing listens: connections are refused

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    servers = []

    def start_later():
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Ok)
        servers.append(srv)
        srv.serve_forever()

    timer = threading.Timer(0.7, start_later)
    timer.start()
    try:
        got = probe.wait_for_answer(_plain_plan(port), 5)
    finally:
        timer.join(0.1)
        for srv in servers:
            srv.shutdown()
    assert got["ok"] is True
    assert got["requests"] >= 3  # refused every 0.2 s for 0.7 s, then the answer
    assert 0.6 <= got["waited_s"] < 3
    assert "ConnectionRefusedError" in got["last_error"]


def test_wait_for_answer_gives_up_at_the_timeout_with_the_last_error(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(probe, "request_once", lambda p, context=None: {
        "ok": False, "status": 503, "error": "HTTP 503, expected [200]", "ms": 1.0})
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    got = probe.wait_for_answer(_plain_plan(1), 1.0, clock=lambda: now[0], sleep=sleep)
    assert got == {"ok": False, "requests": 6, "waited_s": 1.0,
                   "last_error": "HTTP 503, expected [200]"}
    assert abs(sum(slept) - 1.0) < 1e-9 and max(slept) <= probe.WAIT_POLL


def test_wait_timeout_out_of_range_is_refused():
    with pytest.raises(probe.MigrationError, match="wait_timeout -1 is out of range"):
        probe.plan({"url": "http://a.test/", "attempts": 1, "interval": 0, "timeout": 1,
                    "min_success_ratio": 1, "wait_timeout": -1})
