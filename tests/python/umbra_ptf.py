"""The lab topology of Umbra's PTF tests and their base class.

Ports (switch port N is veth swN; PTF owns its peer ptfN):

    1 client            2 server
    3 primary, client leg   4 primary, server leg
    5 shadow, client leg    6 shadow, server leg
    7 shadow monitor leg (mirrored samples only)

Every test starts from a freshly committed pipeline (no entries, no clone
sessions, all counters zero) and programs it through the official P4Runtime
bindings (umbra_p4rt). Test parameters (ptf --test-params):
grpc_addr, p4info.
"""

import itertools

import ptf
import ptf.testutils as tu
from ptf.base_tests import BaseTest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

import umbra_p4rt

CLIENT, SERVER = 1, 2
PRIMARY_C, PRIMARY_S = 3, 4
SHADOW_C, SHADOW_S = 5, 6
MONITOR = 7
ALL_PORTS = (CLIENT, SERVER, PRIMARY_C, PRIMARY_S, SHADOW_C, SHADOW_S, MONITOR)

SERVICE = 10
PRIMARY, SHADOW = 1, 2
C2S, S2C = 0, 1
SESSION = 100

CLIENT_MAC, SERVER_MAC = "02:00:c6:12:00:01", "02:00:c6:12:00:02"
CLIENT_IP, SERVER_IP = "198.18.0.1", "198.18.0.2"

# Each test connects with a higher election id than the one before, so it is
# primary whatever the switch remembers of earlier sessions.
_election_ids = itertools.count(1)


def ip_to_int(address):
    return int.from_bytes(bytes(int(b) for b in address.split(".")), "big")


def tcp_packet(src_ip=CLIENT_IP, dst_ip=SERVER_IP, sport=40000, dport=80, length=100,
               src_mac=CLIENT_MAC, dst_mac=SERVER_MAC, tag=b""):
    """An Ethernet/IPv4/TCP frame of exactly `length` bytes."""
    head = Ether(src=src_mac, dst=dst_mac) / IP(src=src_ip, dst=dst_ip) / TCP(
        sport=sport, dport=dport, flags="A")
    return _padded(head, length, tag)


def udp_packet(src_ip=CLIENT_IP, dst_ip=SERVER_IP, sport=40000, dport=53, length=100,
               src_mac=CLIENT_MAC, dst_mac=SERVER_MAC, tag=b""):
    """An Ethernet/IPv4/UDP frame of exactly `length` bytes."""
    head = Ether(src=src_mac, dst=dst_mac) / IP(src=src_ip, dst=dst_ip) / UDP(
        sport=sport, dport=dport)
    return _padded(head, length, tag)


def arp_packet():
    return Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
        psrc=CLIENT_IP, pdst=SERVER_IP, hwsrc=CLIENT_MAC)


def _padded(head, length, tag):
    fill = length - len(head) - len(tag)
    if fill < 0:
        raise ValueError(f"a frame of {length} bytes cannot hold its headers")
    # A position-dependent filler, so any truncation or offset shows.
    payload = tag + bytes((i * 7 + 3) % 256 for i in range(fill))
    packet = head / Raw(payload)
    assert len(packet) == length
    return packet


class UmbraTest(BaseTest):
    """Connects to the switch as primary and commits a fresh pipeline."""

    def setUp(self):
        BaseTest.setUp(self)
        self.dataplane = ptf.dataplane_instance
        self.dataplane.flush()
        params = tu.test_params_get()
        self.ctl = umbra_p4rt.Controller(
            params["grpc_addr"], params["p4info"], election_id=next(_election_ids))
        self.ctl.set_pipeline()

    def tearDown(self):
        self.ctl.close()
        BaseTest.tearDown(self)

    def te(self, table, match, action=None, **params):
        return self.ctl.table_entry(table, match, action, params)

    def steering_entries(self, active=PRIMARY):
        """The entries of the lab: port roles, the service's active device,
        and both devices' legs."""
        return [
            self.te("port_classify", {"ingress_port": CLIENT}, "set_service",
                    service_id=SERVICE, direction=C2S),
            self.te("port_classify", {"ingress_port": SERVER}, "set_service",
                    service_id=SERVICE, direction=S2C),
            self.te("port_classify", {"ingress_port": PRIMARY_C}, "forward_to_port", port=CLIENT),
            self.te("port_classify", {"ingress_port": PRIMARY_S}, "forward_to_port", port=SERVER),
            self.te("port_classify", {"ingress_port": SHADOW_C}, "forward_to_port", port=CLIENT),
            self.te("port_classify", {"ingress_port": SHADOW_S}, "forward_to_port", port=SERVER),
            self.te("service_selector", {"service_id": SERVICE}, "set_active_device",
                    device=active),
            self.te("device_portmap", {"device": PRIMARY, "direction": C2S}, "steer_to_port",
                    port=PRIMARY_C),
            self.te("device_portmap", {"device": PRIMARY, "direction": S2C}, "steer_to_port",
                    port=PRIMARY_S),
            self.te("device_portmap", {"device": SHADOW, "direction": C2S}, "steer_to_port",
                    port=SHADOW_C),
            self.te("device_portmap", {"device": SHADOW, "direction": S2C}, "steer_to_port",
                    port=SHADOW_S),
        ]

    def program_steering(self, active=PRIMARY):
        self.ctl.insert(*self.steering_entries(active))

    def expect_only(self, expectations):
        """Each (packet, port) of `expectations` arrives, then nothing else
        on any port within ptf's negative timeout."""
        for packet, port in expectations:
            self.receive_exact(port, bytes(packet))
        tu.verify_no_other_packets(self)

    def receive_exact(self, port, expected):
        """The next frame on `port` (within ptf's default timeout) is exactly
        `expected`: same bytes, same length. Stricter than
        tu.verify_packet, which skips non-matching frames on the port and
        ignores trailing bytes after an expected frame shorter than 60."""
        result = tu.dp_poll(self, port_number=port, timeout=ptf.ptfutils.default_timeout)
        if not isinstance(result, self.dataplane.PollSuccess):
            self.fail(f"expected a {len(expected)}-byte frame on port {port}, got nothing")
        got = bytes(result.packet)
        if got != bytes(expected):
            self.fail(
                f"port {port}: expected {len(expected)} bytes {bytes(expected).hex()}\n"
                f"got {len(got)} bytes {got.hex()}")
        return got
