"""The MongoDB wire protocol, as the lab's replica-set double speaks it.

Messages (https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/): a 16-byte header
(messageLength, requestID, responseTo, opCode, little-endian int32), then
- OP_MSG (2013): flagBits, sections (kind 0: one body document; kind 1: a document sequence with
  an identifier), an optional CRC-32C checksum (flag bit 0);
- OP_QUERY (2004, legacy, still used by drivers for the first handshake ``isMaster``): flags,
  fullCollectionName, numberToSkip, numberToReturn, query document; answered by
- OP_REPLY (1): responseFlags, cursorID, startingFrom, numberReturned, documents.
OP_COMPRESSED is not offered (the handshake lists no compressor). BSON comes from pymongo's
``bson`` package.
"""

import socket
import struct
import threading

import bson
from bson.codec_options import CodecOptions

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
CHECKSUM_PRESENT, MORE_TO_COME, EXHAUST_ALLOWED = 1, 2, 1 << 16
MAX_MESSAGE = 48000000
OPTS = CodecOptions(document_class=dict, tz_aware=True)
_ids = iter(range(1, 2 ** 31))
_ids_lock = threading.Lock()


class ProtocolError(Exception):
    """A message that cannot be parsed: the connection is closed, as mongod closes it."""


def next_id():
    with _ids_lock:
        return next(_ids)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return bytes(buf)


def read_message(sock):
    """(request_id, response_to, op_code, body bytes)."""
    header = recv_exact(sock, 16)
    length, request_id, response_to, op_code = struct.unpack("<iiii", header)
    if length < 16 or length > MAX_MESSAGE:
        raise ProtocolError("message length %d out of range" % length)
    return request_id, response_to, op_code, recv_exact(sock, length - 16)


def _cstring(data, pos):
    end = data.index(b"\0", pos)
    return data[pos:end].decode(), end + 1


def parse_msg(body):
    """OP_MSG body -> (flags, command document with kind-1 sequences merged in)."""
    if len(body) < 5:
        raise ProtocolError("OP_MSG too short")
    flags = struct.unpack("<I", body[:4])[0]
    end = len(body) - (4 if flags & CHECKSUM_PRESENT else 0)
    pos, doc, sequences = 4, None, {}
    while pos < end:
        kind = body[pos]
        pos += 1
        if kind == 0:
            size = struct.unpack("<i", body[pos:pos + 4])[0]
            if doc is not None:
                raise ProtocolError("OP_MSG with more than one body section")
            doc = bson.decode(body[pos:pos + size], OPTS)
            pos += size
        elif kind == 1:
            size = struct.unpack("<i", body[pos:pos + 4])[0]
            stop = pos + size
            ident, p = _cstring(body, pos + 4)
            docs = []
            while p < stop:
                dsize = struct.unpack("<i", body[p:p + 4])[0]
                docs.append(bson.decode(body[p:p + dsize], OPTS))
                p += dsize
            sequences[ident] = docs
            pos = stop
        else:
            raise ProtocolError("OP_MSG section kind %d is unknown" % kind)
    if doc is None:
        raise ProtocolError("OP_MSG without a body section")
    for ident, docs in sequences.items():
        if ident in doc:
            raise ProtocolError("duplicate field %s in body and document sequence" % ident)
        doc[ident] = docs
    return flags, doc


def parse_query(body):
    """OP_QUERY body -> (full collection name, query document)."""
    name, pos = _cstring(body, 4)
    pos += 8  # numberToSkip, numberToReturn
    size = struct.unpack("<i", body[pos:pos + 4])[0]
    return name, bson.decode(body[pos:pos + size], OPTS)


def build_msg(doc, response_to=0, flags=0, request_id=None):
    payload = struct.pack("<I", flags) + b"\0" + bson.encode(doc, codec_options=OPTS)
    return struct.pack("<iiii", 16 + len(payload), request_id or next_id(), response_to,
                       OP_MSG) + payload


def build_reply(doc, response_to):
    payload = struct.pack("<iqii", 8, 0, 0, 1) + bson.encode(doc, codec_options=OPTS)
    return struct.pack("<iiii", 16 + len(payload), next_id(), response_to, OP_REPLY) + payload


class Client:
    """A member's connection to another member: one command at a time, OP_MSG."""

    def __init__(self, host, timeout, source=None, auth=None):
        self.host = host
        self.timeout = timeout
        self.source = source  # the member's own address (a pod has one)
        self.auth = auth  # (db, user, password): SCRAM-SHA-256 on every new connection
        self.sock = None
        self.lock = threading.Lock()

    def command(self, db, doc, timeout=None):
        """Run a command; returns the reply document. Network errors close the connection and
        raise OSError / EOFError."""
        with self.lock:
            if self.sock is None:
                name, port = self.host.rsplit(":", 1)
                self.sock = socket.create_connection(
                    (name, int(port)), timeout=self.timeout,
                    source_address=(self.source, 0) if self.source else None)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.auth:
                    from .scram import client_authenticate  # pylint: disable=C0415
                    try:
                        client_authenticate(lambda d, c: self._send(d, c, None),
                                            *self.auth)
                    except Exception:
                        self.close_locked()
                        raise
            try:
                return self._send(db, doc, timeout)
            except Exception:
                self.close_locked()
                raise

    def _send(self, db, doc, timeout):
        self.sock.settimeout(timeout or self.timeout)
        self.sock.sendall(build_msg(dict(doc, **{"$db": db})))
        _rid, _to, op, body = read_message(self.sock)
        if op != OP_MSG:
            raise ProtocolError("unexpected reply op code %d" % op)
        return parse_msg(body)[1]

    def close_locked(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def close(self):
        with self.lock:
            self.close_locked()
