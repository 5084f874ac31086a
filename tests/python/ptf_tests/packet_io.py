"""Packet-out leaves the port the controller names; a punt_to_cpu port
yields a packet-in carrying the frame and its ingress port."""

import ptf.ptfutils
import ptf.testutils as tu

from umbra_p4rt import CPU_PORT
from umbra_ptf import (
    ALL_PORTS, CLIENT, SERVER, SHADOW_C, UmbraTest, tcp_packet, udp_packet,
)

class PacketIo(UmbraTest):
    def runTest(self):
        self.program_steering()
        self.ctl.drain_packet_ins()

        # Packet-out to each dataplane port, bypassing the steering tables
        # (port 1 is a service port whose traffic would go to port 3).
        sent = []
        for port in ALL_PORTS:
            frame = udp_packet(length=80 + port, sport=43000 + port)
            self.ctl.packet_out(bytes(frame), egress_port=port)
            self.expect_only([(frame, port)])
            sent.append(frame)

        # Punt: frames arriving on port 5 (now a CPU-facing port) and port 1.
        self.ctl.write(
            ("MODIFY", self.te("port_classify", {"ingress_port": SHADOW_C}, "punt_to_cpu")),
            ("MODIFY", self.te("port_classify", {"ingress_port": CLIENT}, "punt_to_cpu")),
        )
        punted = []
        for port, frame in ((SHADOW_C, tcp_packet(length=222)), (CLIENT, tcp_packet(length=99))):
            tu.send_packet(self, port, frame)
            packet_in = self.ctl.packet_in(timeout=ptf.ptfutils.default_timeout)
            self.assertIsNotNone(packet_in, f"no packet-in for a frame from port {port}")
            payload, metadata = packet_in
            self.assertEqual(payload, bytes(frame))
            self.assertEqual(metadata.get("ingress_port"), port, metadata)
            self.assertEqual(set(metadata) - {"_pad"}, {"ingress_port"})
            punted.append(frame)
            tu.verify_no_other_packets(self)
        self.assertIsNone(self.ctl.packet_in(timeout=ptf.ptfutils.default_negative_timeout),
                          "one packet-in per punted frame")

        # The CPU port's counters: packet-outs arrive with their 2-byte
        # packet_out header, packet-ins leave with their 2-byte packet_in one.
        self.assertEqual(self.ctl.counter("port_rx", CPU_PORT),
                         (len(sent), sum(len(f) + 2 for f in sent)))
        self.assertEqual(self.ctl.counter("port_tx", CPU_PORT),
                         (len(punted), sum(len(f) + 2 for f in punted)))
        self.assertEqual(self.ctl.counter("port_tx", SERVER)[0], 1)
