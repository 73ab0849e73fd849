"""SCRAM-SHA-256 (RFC 5802, RFC 7677) as mongod speaks it: ``saslStart`` / ``saslContinue``
with mechanism SCRAM-SHA-256, ``skipEmptyExchange``, ``saslSupportedMechs`` in hello.

Users come from a JSON file (``{"admin": {"app": "password"}}``: database -> user -> password);
members authenticate to each other as ``__system@local`` with the key file's content as the
password (mongod's keyFile, whitespace removed). Credentials are kept as mongod keeps them
(salt, iteration count, StoredKey, ServerKey), never as the password."""

import base64
import hashlib
import hmac
import os

ITERATIONS = 15000  # mongod's scramSHA256IterationCount default


def _h(data):
    return hashlib.sha256(data).digest()


def _hmac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def credentials(password, salt=None, iterations=ITERATIONS):
    salt = salt or os.urandom(28)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return {"salt": salt, "i": iterations, "stored": _h(_hmac(salted, b"Client Key")),
            "server": _hmac(salted, b"Server Key")}


def key_file_password(path):
    with open(path, encoding="utf-8") as fh:
        return "".join(fh.read().split())


def _attrs(text):
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


class ServerConversation:
    """One authentication on one connection."""

    def __init__(self, users):
        self.users = users  # (db, user) -> credentials
        self.cred = None
        self.first_bare = self.server_first = None
        self.nonce = None
        self.user = None

    def start(self, db, payload):
        """client-first -> server-first; None when the user is unknown (answered like a wrong
        password, at the end, as mongod does not tell them apart)."""
        text = bytes(payload).decode()
        if not text.startswith(("n,,", "y,,")):
            raise ValueError("channel binding is not supported")
        self.first_bare = text[3:]
        attrs = _attrs(self.first_bare)
        self.user = (db, attrs.get("n", "").replace("=2C", ",").replace("=3D", "="))
        self.cred = self.users.get(self.user) or credentials(os.urandom(16).hex())
        self.nonce = attrs["r"] + base64.b64encode(os.urandom(24)).decode()
        self.server_first = "r=%s,s=%s,i=%d" % (self.nonce, base64.b64encode(
            self.cred["salt"]).decode(), self.cred["i"])
        return self.server_first.encode()

    def finish(self, payload):
        """client-final -> (ok, server-final)."""
        text = bytes(payload).decode()
        without_proof, _sep, proof = text.rpartition(",p=")
        attrs = _attrs(without_proof)
        if attrs.get("r") != self.nonce or self.user not in self.users:
            return False, b""
        auth_message = ",".join((self.first_bare, self.server_first, without_proof)).encode()
        signature = _hmac(self.cred["stored"], auth_message)
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
        if not hmac.compare_digest(_h(client_key), self.cred["stored"]):
            return False, b""
        return True, ("v=" + base64.b64encode(_hmac(self.cred["server"], auth_message))
                      .decode()).encode()


def client_authenticate(command, db, user, password):
    """Authenticate a connection (``command(db, doc)`` runs one command) as ``user``."""
    from bson.binary import Binary  # pylint: disable=import-outside-toplevel
    cnonce = base64.b64encode(os.urandom(24)).decode()
    first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
    reply = command(db, {"saslStart": 1, "mechanism": "SCRAM-SHA-256",
                         "payload": Binary(("n,," + first_bare).encode()),
                         "options": {"skipEmptyExchange": True}})
    if not reply.get("ok"):
        raise PermissionError(reply.get("errmsg", "authentication failed"))
    server_first = bytes(reply["payload"]).decode()
    attrs = _attrs(server_first)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = _hmac(salted, b"Client Key")
    without_proof = "c=biws,r=" + attrs["r"]
    auth_message = ",".join((first_bare, server_first, without_proof)).encode()
    proof = bytes(a ^ b for a, b in zip(client_key, _hmac(_h(client_key), auth_message)))
    reply = command(db, {"saslContinue": 1, "conversationId": reply["conversationId"],
                         "payload": Binary((without_proof + ",p=" + base64.b64encode(
                             proof).decode()).encode())})
    if not reply.get("ok"):
        raise PermissionError(reply.get("errmsg", "authentication failed"))
    want = "v=" + base64.b64encode(_hmac(_hmac(salted, b"Server Key"), auth_message)).decode()
    if bytes(reply["payload"]).decode() != want:
        raise PermissionError("the server's signature is wrong")
