"""Steering through the active device, and the failover flip."""

import ptf.testutils as tu

from umbra_ptf import (
    CLIENT, CLIENT_IP, CLIENT_MAC, MONITOR, PRIMARY, PRIMARY_C, PRIMARY_S, SERVER, SERVER_IP,
    SERVER_MAC, SERVICE, SHADOW, SHADOW_C, SHADOW_S, C2S, S2C, UmbraTest, arp_packet,
    tcp_packet, udp_packet,
)


def reply(length=100, sport=80, dport=40000):
    return tcp_packet(src_ip=SERVER_IP, dst_ip=CLIENT_IP, sport=sport, dport=dport,
                      src_mac=SERVER_MAC, dst_mac=CLIENT_MAC, length=length)


class SteeringThroughPrimary(UmbraTest):
    """Both directions of the service go through the primary's legs, and what
    the device sends back on its legs reaches the client and server."""

    def runTest(self):
        # Before any entry: port_classify's default drop() -> nothing leaves.
        tu.send_packet(self, CLIENT, tcp_packet())
        tu.verify_no_other_packets(self)

        self.program_steering(active=PRIMARY)
        request = tcp_packet(length=120)
        response = reply(length=300)

        # client -> primary's client leg; server -> primary's server leg.
        tu.send_packet(self, CLIENT, request)
        self.expect_only([(request, PRIMARY_C)])
        tu.send_packet(self, SERVER, response)
        self.expect_only([(response, PRIMARY_S)])

        # The device forwards: its server leg -> server, client leg -> client.
        tu.send_packet(self, PRIMARY_S, request)
        self.expect_only([(request, SERVER)])
        tu.send_packet(self, PRIMARY_C, response)
        self.expect_only([(response, CLIENT)])

        # Non-TCP and non-IP service traffic is steered all the same.
        dns = udp_packet(length=90)
        tu.send_packet(self, CLIENT, dns)
        self.expect_only([(dns, PRIMARY_C)])
        arp = arp_packet()
        tu.send_packet(self, CLIENT, arp)
        self.expect_only([(arp, PRIMARY_C)])

        # The monitor leg only ever receives clones: frames from it go nowhere.
        tu.send_packet(self, MONITOR, request)
        tu.verify_no_other_packets(self)


class SelectorFlip(UmbraTest):
    """One MODIFY of service_selector moves both directions to the shadow;
    afterwards nothing reaches the primary's legs."""

    def runTest(self):
        self.program_steering(active=PRIMARY)
        request, response = tcp_packet(length=150), reply(length=150)
        tu.send_packet(self, CLIENT, request)
        tu.send_packet(self, SERVER, response)
        self.expect_only([(request, PRIMARY_C), (response, PRIMARY_S)])

        # The failover: exactly one update in one Write.
        self.ctl.write(("MODIFY", self.te("service_selector", {"service_id": SERVICE},
                                          "set_active_device", device=SHADOW)))
        read = self.ctl.read(self.te("service_selector", {"service_id": SERVICE}))
        self.assertEqual(len(read), 1)
        self.assertEqual(read[0].table_entry.action.action.params[0].value, bytes([SHADOW]))

        for i in range(5):
            request = tcp_packet(length=100 + i, sport=40000 + i)
            response = reply(length=200 + i, dport=40000 + i)
            tu.send_packet(self, CLIENT, request)
            self.expect_only([(request, SHADOW_C)])
            tu.send_packet(self, SERVER, response)
            self.expect_only([(response, SHADOW_S)])
        # The shadow's legs forward like the primary's did.
        tu.send_packet(self, SHADOW_S, request)
        tu.send_packet(self, SHADOW_C, response)
        self.expect_only([(request, SERVER), (response, CLIENT)])

        # steer_hits: the primary's entries kept their one packet each, the
        # shadow's counted the five after the flip.
        self.assertEqual(
            self.ctl.direct_counter("device_portmap", {"device": PRIMARY, "direction": C2S})[0], 1)
        self.assertEqual(
            self.ctl.direct_counter("device_portmap", {"device": PRIMARY, "direction": S2C})[0], 1)
        self.assertEqual(
            self.ctl.direct_counter("device_portmap", {"device": SHADOW, "direction": C2S})[0], 5)
        self.assertEqual(
            self.ctl.direct_counter("device_portmap", {"device": SHADOW, "direction": S2C})[0], 5)
