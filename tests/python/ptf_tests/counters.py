"""port_rx/port_tx and the steer_hits direct counter, read over P4Runtime,
equal what was sent."""

import ptf.testutils as tu

from umbra_ptf import (
    CLIENT, CLIENT_IP, CLIENT_MAC, PRIMARY, PRIMARY_C, PRIMARY_S, SERVER, SERVER_IP, SERVER_MAC,
    SHADOW, C2S, S2C, UmbraTest, tcp_packet, udp_packet,
)


class Counters(UmbraTest):
    def runTest(self):
        self.program_steering(active=PRIMARY)
        c2s = [tcp_packet(length=n, sport=42000 + n) for n in (64, 100, 333, 1000, 1514, 77, 512)]
        s2c = [udp_packet(src_ip=SERVER_IP, dst_ip=CLIENT_IP, src_mac=SERVER_MAC,
                          dst_mac=CLIENT_MAC, sport=53, dport=42000, length=n)
               for n in (90, 1400, 66, 250, 128)]
        from_device = [tcp_packet(length=n) for n in (70, 700, 1200)]

        for packet in c2s:
            tu.send_packet(self, CLIENT, packet)
            self.receive_exact(PRIMARY_C, bytes(packet))
        for packet in s2c:
            tu.send_packet(self, SERVER, packet)
            self.receive_exact(PRIMARY_S, bytes(packet))
        for packet in from_device:
            tu.send_packet(self, PRIMARY_S, packet)
            self.receive_exact(SERVER, bytes(packet))
        tu.verify_no_other_packets(self)

        def total(packets):
            return (len(packets), sum(len(p) for p in packets))

        rx = self.ctl.counter("port_rx")
        tx = self.ctl.counter("port_tx")
        self.assertEqual(len(rx), 512, "a wildcard read returns every index")
        self.assertEqual(len(tx), 512, "a wildcard read returns every index")
        expected_rx = {CLIENT: total(c2s), SERVER: total(s2c), PRIMARY_S: total(from_device)}
        expected_tx = {PRIMARY_C: total(c2s), PRIMARY_S: total(s2c), SERVER: total(from_device)}
        for index in range(512):
            self.assertEqual(rx[index], expected_rx.get(index, (0, 0)), f"port_rx[{index}]")
            self.assertEqual(tx[index], expected_tx.get(index, (0, 0)), f"port_tx[{index}]")
        # A read of one index agrees with the wildcard read.
        self.assertEqual(self.ctl.counter("port_rx", CLIENT), total(c2s))

        # steer_hits counts the service's packets per (device, direction)
        # entry; the device legs' traffic does not go through device_portmap.
        self.assertEqual(
            self.ctl.direct_counter("device_portmap", {"device": PRIMARY, "direction": C2S}),
            total(c2s))
        self.assertEqual(
            self.ctl.direct_counter("device_portmap", {"device": PRIMARY, "direction": S2C}),
            total(s2c))
        for direction in (C2S, S2C):
            self.assertEqual(
                self.ctl.direct_counter("device_portmap",
                                        {"device": SHADOW, "direction": direction}), (0, 0))

        # A fresh pipeline commit zeroes every counter.
        self.ctl.set_pipeline()
        self.assertEqual(self.ctl.counter("port_rx", CLIENT), (0, 0))
