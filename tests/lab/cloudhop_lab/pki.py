"""The lab's certificate authority (API servers, OpenVPN server and clients)."""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class CA:
    def __init__(self, key, cert):
        self.key = key
        self.cert = cert

    @classmethod
    def create(cls, cn="cloudhop-lab-ca"):
        key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                             False), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    @classmethod
    def load(cls, cert_path, key_path):
        with open(cert_path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
        with open(key_path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
        return cls(key, cert)

    def save(self, cert_path, key_path):
        _write(cert_path, _pem_cert(self.cert), 0o644)
        _write(key_path, _pem_key(self.key))

    @property
    def cert_pem(self):
        return _pem_cert(self.cert)

    def issue(self, cn, server=False, client=False, sans=()):
        """Return (cert_pem, key_pem) for a leaf certificate."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.KeyUsage(True, False, False, False, True, False, False,
                                                False, False), critical=True))
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if sans:
            names = []
            for san in sans:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(san)))
                except ValueError:
                    names.append(x509.DNSName(san))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return _pem_cert(cert), _pem_key(key)


def write_pair(directory, stem, cert_pem, key_pem):
    cert_path = os.path.join(directory, stem + ".crt")
    key_path = os.path.join(directory, stem + ".key")
    _write(cert_path, cert_pem, 0o644)
    _write(key_path, key_pem)
    return cert_path, key_path


def fake_ingress_certificate():
    """PEM (certificate + key) standing for ingress-nginx's default certificate, CN "Kubernetes
    Ingress Controller Fake Certificate", served for a name no TLS Secret covers. ingress-nginx's
    is self-signed; this one comes from a throwaway CA nobody trusts: a client's check fails the
    same way."""
    leaf = CA.create("Kubernetes Ingress Controller Fake Certificate").issue(
        "Kubernetes Ingress Controller Fake Certificate", server=True, sans=["ingress.local"])
    return leaf[0] + leaf[1]
