"""Mirroring to the shadow's monitor leg: per packet with truncation, and
per flow by the CRC-32 of the direction-free 5-tuple."""

import random

import ptf.testutils as tu

from umbra_p4rt import flow_hash
from umbra_ptf import (
    CLIENT, CLIENT_MAC, MONITOR, PRIMARY_C, PRIMARY_S, SERVER, SERVER_MAC, SESSION, UmbraTest,
    ip_to_int, tcp_packet, udp_packet,
)


class PerPacketSamplingTruncation(UmbraTest):
    """one_in_n = 1 clones every packet of both directions to the monitor
    leg; mirror_truncate cuts clones to its length, and without it the clone
    session's packet_length_bytes does. The original is never cut."""

    def sampling(self, one_in_n):
        return [
            self.te("mirror_sampling", {"ingress_port": port}, "sample_per_packet",
                    one_in_n=one_in_n, session=SESSION)
            for port in (CLIENT, SERVER)
        ]

    def runTest(self):
        self.program_steering()
        self.ctl.insert(
            self.ctl.clone_session(SESSION, [MONITOR]),
            *self.sampling(1),
            self.te("mirror_truncate", {"egress_port": MONITOR}, "truncate_mirror", length=64),
        )

        # mirror_truncate 64: every packet, both directions, first 64 bytes.
        for i, length in enumerate((64, 65, 200, 1000, 1514)):
            request = tcp_packet(length=length, sport=41000 + i)
            tu.send_packet(self, CLIENT, request)
            self.expect_only([(request, PRIMARY_C), (bytes(request)[:64], MONITOR)])
            response = udp_packet(src_ip="198.18.0.2", dst_ip="198.18.0.1", sport=53,
                                  dport=41000 + i, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC,
                                  length=length)
            tu.send_packet(self, SERVER, response)
            self.expect_only([(response, PRIMARY_S), (bytes(response)[:64], MONITOR)])

        # No mirror_truncate entry, packet_length_bytes = 100 on the session.
        self.ctl.write(
            ("DELETE", self.te("mirror_truncate", {"egress_port": MONITOR})),
            ("MODIFY", self.ctl.clone_session(SESSION, [MONITOR], packet_length_bytes=100)),
        )
        for length in (99, 100, 101, 700):
            request = tcp_packet(length=length)
            tu.send_packet(self, CLIENT, request)
            self.expect_only([(request, PRIMARY_C), (bytes(request)[:100], MONITOR)])

        # Neither: the clone is the whole packet.
        self.ctl.write(("MODIFY", self.ctl.clone_session(SESSION, [MONITOR])))
        request = tcp_packet(length=700)
        tu.send_packet(self, CLIENT, request)
        self.expect_only([(request, PRIMARY_C), (request, MONITOR)])

        # one_in_n = 0 disables sampling; no_sampling too.
        self.ctl.write(*(("MODIFY", e) for e in self.sampling(0)))
        for _ in range(20):
            tu.send_packet(self, CLIENT, request)
            self.receive_exact(PRIMARY_C, bytes(request))
        tu.verify_no_other_packets(self)
        self.ctl.write(("MODIFY", self.te("mirror_sampling", {"ingress_port": CLIENT},
                                          "no_sampling")))
        tu.send_packet(self, CLIENT, request)
        self.expect_only([(request, PRIMARY_C)])


class PerFlowSampling(UmbraTest):
    """Flows whose hash (computed here from the CRC-32 formula) is below the
    threshold are mirrored in both directions; the others, including the
    flow whose hash equals the threshold, are not."""

    def runTest(self):
        rng = random.Random(20240601)
        flows = []
        for i in range(24):
            # Some clients above the server's address, so that both orderings
            # of the endpoints are exercised.
            client = f"198.18.{rng.choice((0, 1, 7))}.{rng.randrange(1, 255)}"
            server = f"198.19.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}" if i % 3 else \
                "198.18.0.9"
            proto = 6 if i % 2 else 17
            cport, sport = rng.randrange(1024, 65536), rng.choice((80, 443, 53, 5432))
            h = flow_hash(ip_to_int(client), ip_to_int(server), proto, cport, sport)
            flows.append((h, client, server, proto, cport, sport))
        hashes = sorted(f[0] for f in flows)
        threshold = hashes[len(hashes) // 2]
        self.assertEqual(len(set(hashes)), len(hashes), "pick flows with distinct hashes")

        self.program_steering()
        self.ctl.insert(
            self.ctl.clone_session(SESSION, [MONITOR]),
            *[self.te("mirror_sampling", {"ingress_port": port}, "sample_per_flow",
                      threshold=threshold, session=SESSION) for port in (CLIENT, SERVER)],
        )

        mirrored = 0
        for h, client, server, proto, cport, sport in flows:
            build = tcp_packet if proto == 6 else udp_packet
            request = build(src_ip=client, dst_ip=server, sport=cport, dport=sport, length=140)
            response = build(src_ip=server, dst_ip=client, sport=sport, dport=cport,
                             src_mac=SERVER_MAC, dst_mac=CLIENT_MAC, length=260)
            sampled = h < threshold
            mirrored += sampled
            for _ in range(2):
                # One direction at a time, so that the monitor leg's frames
                # have a known order; one negative check per round trip.
                for packet, ingress, egress in ((request, CLIENT, PRIMARY_C),
                                                (response, SERVER, PRIMARY_S)):
                    tu.send_packet(self, ingress, packet)
                    self.receive_exact(egress, bytes(packet))
                    if sampled:
                        self.receive_exact(MONITOR, bytes(packet))
                tu.verify_no_other_packets(self)
        self.assertEqual(mirrored, len(flows) // 2)
