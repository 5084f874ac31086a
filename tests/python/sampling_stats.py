#!/usr/bin/env python3
"""Traffic for the sampling-statistics test: programs `umbra switch` through
the official P4Runtime bindings, sends mixed flows and frame sizes through
it on raw AF_PACKET sockets, and counts what arrives on the device legs (the
full traffic) and on the shadow's monitor leg (the mirrored sample).

Usage: sampling_stats.py --grpc ADDR --p4info PATH --mode per-packet|per-flow
           [--packets N] [--flows F] [--one-in-n N] [--threshold T] [--seed S]

Runs in the lab namespace (ports: 1 client=ptf1, 2 server=ptf2, 3/4 the
active device's legs=ptf3/ptf4, 7 monitor=ptf7). The sender is flow
controlled: it sends a window of frames, then waits until every one of them
has come out of the switch, so it never outruns the switch and no frame is
dropped for lack of buffer; any frame that does not arrive is an error.

It checks integrity itself (exit 1 with a message on any failure): every
frame sent arrives exactly once on the right egress port, every clone is a
truncated copy of a frame sent, port_rx/port_tx read over P4Runtime equal
what was sent and received. The statistics are judged by the Rust test
from what it prints:

    sent N
    mirrored N
    flow I PROTO CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT FULL_C2S FULL_S2C MIRR_C2S MIRR_S2C
    size CLASS FULL MIRRORED
    position BIN FULL MIRRORED     (BIN: tenth of the run the frame was sent in)
"""

import argparse
import random
import select
import socket
import struct
import sys
import time

import umbra_p4rt

CLIENT, SERVER, LEG_C, LEG_S, MONITOR = 1, 2, 3, 4, 7
IFNAME = {port: f"ptf{port}" for port in (CLIENT, SERVER, LEG_C, LEG_S, MONITOR)}
SERVICE, DEVICE, SESSION = 10, 1, 100
C2S, S2C = 0, 1
MIN_LEN, MAX_LEN = 64, 1400
SIZE_CLASSES = 8
POSITION_BINS = 10
MIRROR_LENGTH = 128
WINDOW = 64
WINDOW_DEADLINE = 5.0
MAGIC = b"UB"
TAG = struct.Struct("!2sIHBB")  # magic, sequence, flow, direction, size class (10 bytes:
# a minimal TCP frame, 54 header bytes, holds it)
CLIENT_MAC = bytes.fromhex("02c612000001")
SERVER_MAC = bytes.fromhex("02c612000002")
ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33
SOL_PACKET, PACKET_STATISTICS = 263, 6


def fail(message):
    print(f"FAIL {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def ip_checksum(header):
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def size_class(length):
    return (length - MIN_LEN) * SIZE_CLASSES // (MAX_LEN - MIN_LEN + 1)


class Flow:
    def __init__(self, index, proto, client_ip, client_port, server_ip, server_port):
        self.index, self.proto = index, proto
        self.client_ip, self.client_port = client_ip, client_port
        self.server_ip, self.server_port = server_ip, server_port
        self.full = [0, 0]
        self.mirrored = [0, 0]

    def frame(self, direction, length, sequence):
        if direction == C2S:
            src_mac, dst_mac = CLIENT_MAC, SERVER_MAC
            src, dst = self.client_ip, self.server_ip
            sport, dport = self.client_port, self.server_port
        else:
            src_mac, dst_mac = SERVER_MAC, CLIENT_MAC
            src, dst = self.server_ip, self.client_ip
            sport, dport = self.server_port, self.client_port
        if self.proto == 6:
            l4 = struct.pack("!HHIIBBHHH", sport, dport, sequence, 0, 5 << 4, 0x10, 65535, 0, 0)
        else:
            l4 = struct.pack("!HHHH", sport, dport, length - 34, 0)
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, length - 14, sequence & 0xFFFF, 0,
                                   64, self.proto, 0, src.to_bytes(4, "big"),
                                   dst.to_bytes(4, "big")))
        ip[10:12] = struct.pack("!H", ip_checksum(bytes(ip)))
        tag = TAG.pack(MAGIC, sequence, self.index, direction, size_class(length))
        head = dst_mac + src_mac + b"\x08\x00" + bytes(ip) + l4 + tag
        return head + bytes(length - len(head))


def make_flows(count, rng):
    flows, seen = [], set()
    while len(flows) < count:
        proto = rng.choice((6, 17))
        client_ip = (198 << 24) | (18 << 16) | rng.randrange(1, 1 << 16)
        server_ip = (198 << 24) | (19 << 16) | rng.randrange(1, 1 << 16)
        client_port = rng.randrange(1024, 65536)
        server_port = rng.choice((80, 443, 53, 5432, 8080))
        key = (proto, client_ip, client_port, server_ip, server_port)
        if key in seen:
            continue
        seen.add(key)
        flows.append(Flow(len(flows), proto, client_ip, client_port, server_ip, server_port))
    return flows


def open_sockets():
    send = {}
    for port in (CLIENT, SERVER):
        # Protocol 0: a send-only socket that queues no received frame.
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.bind((IFNAME[port], 0))
        send[port] = s
    recv = {}
    for port in (LEG_C, LEG_S, MONITOR):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
        s.bind((IFNAME[port], ETH_P_ALL))
        s.setblocking(False)
        recv[port] = s
    return send, recv


def program(ctl, mode, one_in_n, threshold):
    ctl.set_pipeline()
    te = ctl.table_entry
    if mode == "per-packet":
        sampling = [te("mirror_sampling", {"ingress_port": p}, "sample_per_packet",
                       {"one_in_n": one_in_n, "session": SESSION}) for p in (CLIENT, SERVER)]
    else:
        sampling = [te("mirror_sampling", {"ingress_port": p}, "sample_per_flow",
                       {"threshold": threshold, "session": SESSION}) for p in (CLIENT, SERVER)]
    ctl.insert(
        te("port_classify", {"ingress_port": CLIENT}, "set_service",
           {"service_id": SERVICE, "direction": C2S}),
        te("port_classify", {"ingress_port": SERVER}, "set_service",
           {"service_id": SERVICE, "direction": S2C}),
        te("service_selector", {"service_id": SERVICE}, "set_active_device", {"device": DEVICE}),
        te("device_portmap", {"device": DEVICE, "direction": C2S}, "steer_to_port",
           {"port": LEG_C}),
        te("device_portmap", {"device": DEVICE, "direction": S2C}, "steer_to_port",
           {"port": LEG_S}),
        ctl.clone_session(SESSION, [MONITOR]),
        te("mirror_truncate", {"egress_port": MONITOR}, "truncate_mirror",
           {"length": MIRROR_LENGTH}),
        *sampling,
    )


class Receiver:
    def __init__(self, recv, flows, sent_frames, total):
        self.total = total
        self.positions_full = [0] * POSITION_BINS
        self.positions_mirrored = [0] * POSITION_BINS
        self.recv = recv
        self.flows = flows
        self.sent_frames = sent_frames  # sequence -> (flow, direction, length)
        self.poller = select.poll()
        self.by_fd = {}
        for port, s in recv.items():
            self.poller.register(s.fileno(), select.POLLIN)
            self.by_fd[s.fileno()] = port
        self.originals = 0
        self.clones = 0
        self.seen_original = set()
        self.seen_clone = set()
        self.sizes_full = [0] * SIZE_CLASSES
        self.sizes_mirrored = [0] * SIZE_CLASSES
        self.buffer = bytearray(65536)

    def poll(self, timeout_ms):
        for fd, _ in self.poller.poll(timeout_ms):
            port = self.by_fd[fd]
            s = self.recv[port]
            while True:
                try:
                    n, address = s.recvfrom_into(self.buffer)
                except BlockingIOError:
                    break
                if address[2] == socket.PACKET_OUTGOING:
                    continue
                self.handle(port, bytes(self.buffer[:n]))

    def handle(self, port, frame):
        tag_at = 14 + 20 + (20 if frame[23] == 6 else 8)
        if len(frame) < tag_at + TAG.size or frame[tag_at:tag_at + 2] != MAGIC:
            fail(f"port {port}: a frame that was not sent by this test: {frame[:64].hex()}")
        magic, sequence, flow_index, direction, cls = TAG.unpack_from(frame, tag_at)
        if sequence not in self.sent_frames:
            fail(f"port {port}: frame with unknown sequence {sequence}")
        sent_flow, sent_direction, length = self.sent_frames[sequence]
        if (flow_index, direction) != (sent_flow, sent_direction):
            fail(f"port {port}: frame {sequence} carries another flow's tag")
        flow = self.flows[flow_index]
        # Frames are a function of (flow, direction, length, sequence): build
        # the original again rather than keep 100k frames in memory.
        original = flow.frame(direction, length, sequence)
        if port == MONITOR:
            if sequence in self.seen_clone:
                fail(f"clone of frame {sequence} arrived twice")
            self.seen_clone.add(sequence)
            expected = original[:MIRROR_LENGTH]
            if frame != expected:
                fail(f"clone of frame {sequence} is not its first {MIRROR_LENGTH} bytes: "
                     f"{len(frame)} bytes")
            self.clones += 1
            flow.mirrored[direction] += 1
            self.sizes_mirrored[cls] += 1
            self.positions_mirrored[sequence * POSITION_BINS // self.total] += 1
        else:
            wanted = LEG_C if direction == C2S else LEG_S
            if port != wanted:
                fail(f"frame {sequence} (direction {direction}) left port {port}, not {wanted}")
            if sequence in self.seen_original:
                fail(f"frame {sequence} arrived twice")
            self.seen_original.add(sequence)
            if frame != original:
                fail(f"frame {sequence} was changed in flight")
            self.originals += 1
            flow.full[direction] += 1
            self.sizes_full[cls] += 1
            self.positions_full[sequence * POSITION_BINS // self.total] += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--p4info", required=True)
    parser.add_argument("--mode", choices=("per-packet", "per-flow"), required=True)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--one-in-n", type=int, default=50)
    parser.add_argument("--threshold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--election-id", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    flows = make_flows(args.flows, rng)
    # Unequal flows (weights 1..10), so that a sampler that picks flows
    # rather than packets would skew the flow distribution of the sample.
    weights = [rng.uniform(1.0, 10.0) for _ in flows]

    ctl = umbra_p4rt.Controller(args.grpc, args.p4info, election_id=args.election_id)
    try:
        program(ctl, args.mode, args.one_in_n, args.threshold)
        send, recv = open_sockets()
        if args.mode == "per-flow":
            # Every flow, both directions, the same number of frames each.
            per_direction = max(1, args.packets // (2 * len(flows)))
            schedule = [(f.index, d) for f in flows for d in (C2S, S2C)
                        for _ in range(per_direction)]
            rng.shuffle(schedule)
        else:
            chosen = rng.choices(range(len(flows)), weights=weights, k=args.packets)
            schedule = [(i, rng.randrange(2)) for i in chosen]

        sent_frames = {}
        receiver = Receiver(recv, flows, sent_frames, len(schedule))
        started = time.monotonic()
        sent = 0
        sent_bytes = {CLIENT: 0, SERVER: 0}
        while sent < len(schedule):
            window = schedule[sent:sent + WINDOW]
            for flow_index, direction in window:
                length = rng.randint(MIN_LEN, MAX_LEN)
                frame = flows[flow_index].frame(direction, length, sent)
                sent_frames[sent] = (flow_index, direction, length)
                port = CLIENT if direction == C2S else SERVER
                send[port].send(frame)
                sent_bytes[port] += length
                sent += 1
            deadline = time.monotonic() + WINDOW_DEADLINE
            while receiver.originals < sent:
                if time.monotonic() > deadline:
                    fail(f"after {sent} frames sent only {receiver.originals} came out of the "
                         f"switch within {WINDOW_DEADLINE}s")
                receiver.poll(50)
        # Every original is in; the clones are counted by port_tx[7]. Wait
        # (bounded) until they are all here too.
        tx_monitor = ctl.counter("port_tx", MONITOR)[0]
        deadline = time.monotonic() + WINDOW_DEADLINE
        while receiver.clones < tx_monitor and time.monotonic() < deadline:
            receiver.poll(50)
        elapsed = time.monotonic() - started
        receiver.poll(0)

        rx = ctl.counter("port_rx")
        tx = ctl.counter("port_tx")
        sent_c2s = sum(1 for _, d in schedule if d == C2S)
        checks = [
            ("port_rx[1] (packets, bytes)", rx[CLIENT], (sent_c2s, sent_bytes[CLIENT])),
            ("port_rx[2] (packets, bytes)", rx[SERVER],
             (len(schedule) - sent_c2s, sent_bytes[SERVER])),
            ("port_tx[3] (packets, bytes)", tx[LEG_C], (sent_c2s, sent_bytes[CLIENT])),
            ("port_tx[4] (packets, bytes)", tx[LEG_S],
             (len(schedule) - sent_c2s, sent_bytes[SERVER])),
            ("port_tx[7] packets vs clones received", tx[MONITOR][0], receiver.clones),
            ("frames received on the device legs", receiver.originals, len(schedule)),
        ]
        for what, got, expected in checks:
            if got != expected:
                fail(f"{what}: {got}, expected {expected}")
        for port in (LEG_C, LEG_S, MONITOR):
            drops = recv[port].getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            _, dropped = struct.unpack("II", drops)
            if dropped:
                fail(f"the test's own socket on ptf{port} dropped {dropped} frames")

        print(f"sent {len(schedule)}")
        print(f"mirrored {receiver.clones}")
        print(f"elapsed {elapsed:.3f}")
        for f in flows:
            print(f"flow {f.index} {f.proto} {f.client_ip} {f.client_port} {f.server_ip} "
                  f"{f.server_port} {f.full[C2S]} {f.full[S2C]} {f.mirrored[C2S]} "
                  f"{f.mirrored[S2C]}")
        for cls in range(SIZE_CLASSES):
            print(f"size {cls} {receiver.sizes_full[cls]} {receiver.sizes_mirrored[cls]}")
        for b in range(POSITION_BINS):
            print(f"position {b} {receiver.positions_full[b]} {receiver.positions_mirrored[b]}")
    finally:
        ctl.close()


if __name__ == "__main__":
    main()
