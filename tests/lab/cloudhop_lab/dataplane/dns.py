"""Authoritative DNS for the lab: bind9 for zone example.test on the internet segment.

RFC 2136 updates are accepted when signed with the TSIG key written to .lab/dns/tsig.json
(name, algorithm, secret). The fixture's record app.example.test points at the vSphere load
balancer with the TTL of option dns_ttl (300) once that load balancer has its address.
"""

import base64
import json
import os
import secrets
import time

from . import netns as nsx
from .topology import INET_NS

DNS_NS = nsx.ns_name("dns")
DNS_HOST = 53
ZONE = "example.test"
KEY_NAME = "cloudhop-lab"
ALGORITHM = "hmac-sha256"


class DnsServer:
    def __init__(self, topology, lab_dir):
        self.topology = topology
        self.dir = os.path.join(lab_dir, "dns")
        self.ip = topology.public_ip(DNS_HOST)
        self.proc = None
        self.secret = None

    def build(self):
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        nsx.create(DNS_NS)
        nsx.veth(INET_NS, "dns0", DNS_NS, "eth0")
        nsx.enslave(INET_NS, "dns0", "br-inet")
        nsx.add_addr(DNS_NS, "eth0", self.ip, self.topology.public.prefixlen)
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        key = {"name": KEY_NAME, "algorithm": ALGORITHM, "secret": self.secret,
               "server": self.ip, "zone": ZONE}
        fd = os.open(os.path.join(self.dir, "tsig.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(key, fh)
        zone_file = os.path.join(self.dir, "db." + ZONE)
        with open(zone_file, "w", encoding="utf-8") as fh:
            fh.write("$TTL 300\n"
                     "@ IN SOA ns1.%s. hostmaster.%s. (1 60 60 3600 60)\n"
                     "@ IN NS ns1.%s.\n"
                     "ns1 IN A %s\n" % (ZONE, ZONE, ZONE, self.ip))
        conf = os.path.join(self.dir, "named.conf")
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write('options {\n directory "%s";\n pid-file "%s/named.pid";\n'
                     ' listen-on { %s; };\n listen-on-v6 { none; };\n recursion no;\n'
                     ' allow-query { any; };\n dnssec-validation no;\n};\n'
                     'key "%s" { algorithm %s; secret "%s"; };\n'
                     'zone "%s" { type primary; file "%s"; journal "%s.jnl";\n'
                     ' allow-update { key "%s"; }; };\n'
                     % (self.dir, self.dir, self.ip, KEY_NAME, ALGORITHM, self.secret, ZONE,
                        zone_file, zone_file, KEY_NAME))
        os.chmod(conf, 0o600)
        self.proc = nsx.spawn(DNS_NS, ["/usr/sbin/named", "-g", "-c", conf],
                              os.path.join(self.dir, "named.log"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            out = nsx.run(DNS_NS, "ss", "-Hlun", "sport = :53", check=False).stdout
            if self.ip in out:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("named did not start; see %s/named.log" % self.dir)

    def delete(self, name):
        """RFC 2136 delete of a name's A records."""
        self._send(lambda upd: upd.delete(name, "A"), name)

    def update(self, name, address, ttl):
        """RFC 2136 replace of an A record (one address or a list), TSIG-signed (what an
        operator's nsupdate does)."""
        self._send(lambda upd: upd.replace(
            name, ttl, "A", *([address] if isinstance(address, str) else address)), name)

    def _send(self, fill, name):
        import dns.query  # pylint: disable=import-outside-toplevel
        import dns.tsigkeyring  # pylint: disable=import-outside-toplevel
        import dns.update  # pylint: disable=import-outside-toplevel
        keyring = dns.tsigkeyring.from_text({KEY_NAME: (ALGORITHM, self.secret)})
        upd = dns.update.Update(ZONE, keyring=keyring, keyname=KEY_NAME)
        fill(upd)
        # the lab daemon lives in clh-ctl, which has a leg on the internet segment
        resp = dns.query.tcp(upd, self.ip, timeout=5)
        if resp.rcode() != 0:
            raise RuntimeError("DNS update of %s refused: rcode %d" % (name, resp.rcode()))
