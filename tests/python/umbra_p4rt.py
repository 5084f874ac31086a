"""A small P4Runtime controller over the OFFICIAL p4runtime 1.6.0 Python
bindings (grpc + p4.v1.p4runtime_pb2), for Umbra's PTF and sampling tests.

It resolves every id by name through the P4Info parsed from
umbra.p4info.txtpb, as any controller should, and talks to the switch the
way the spec describes: arbitration on StreamChannel, then
SetForwardingPipelineConfig, Write, Read, PacketOut/PacketIn.

Import it with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python (the generated
code of p4runtime 1.6.0 needs it with protobuf >= 5).
"""

import queue
import threading
import zlib

import grpc
from google.protobuf import text_format
from google.rpc import code_pb2, status_pb2
from p4.config.v1 import p4info_pb2
from p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc

CPU_PORT = 255


def encode(value, bitwidth):
    """The canonical P4Runtime bytestring of `value` (shortest big-endian,
    at least one byte)."""
    if not 0 <= value < (1 << bitwidth):
        raise ValueError(f"{value} does not fit in bit<{bitwidth}>")
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def decode(data):
    return int.from_bytes(data, "big")


class WriteError(Exception):
    """A failed Write: the gRPC status and one p4.v1.Error per update."""

    def __init__(self, rpc_error):
        self.code = rpc_error.code()
        self.details = rpc_error.details()
        self.errors = []
        for key, value in rpc_error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status()
                status.ParseFromString(value)
                for detail in status.details:
                    error = p4runtime_pb2.Error()
                    detail.Unpack(error)
                    self.errors.append(error)
        super().__init__(
            f"Write failed: {self.code.name}: {self.details}; per update: "
            + ", ".join(code_pb2.Code.Name(e.canonical_code) for e in self.errors)
        )


class P4Info:
    """The P4Info and name -> id lookups (by alias or full name)."""

    def __init__(self, path):
        self.proto = p4info_pb2.P4Info()
        with open(path) as f:
            text_format.Parse(f.read(), self.proto)

    @staticmethod
    def _find(items, name, kind):
        for item in items:
            if name in (item.preamble.name, item.preamble.alias):
                return item
        raise KeyError(f"no {kind} named {name!r} in the P4Info")

    def table(self, name):
        return self._find(self.proto.tables, name, "table")

    def action(self, name):
        return self._find(self.proto.actions, name, "action")

    def counter(self, name):
        return self._find(self.proto.counters, name, "counter")

    def direct_counter(self, name):
        return self._find(self.proto.direct_counters, name, "direct counter")

    def packet_metadata(self, name):
        return self._find(self.proto.controller_packet_metadata, name, "controller header")


class Controller:
    """One P4Runtime client session with a device: a StreamChannel that has
    won arbitration, plus unary calls."""

    def __init__(self, grpc_addr, p4info_path, device_id=1, election_id=1, timeout=10.0):
        self.p4info = P4Info(p4info_path)
        self.device_id = device_id
        self.election_id = p4runtime_pb2.Uint128(high=0, low=election_id)
        self.channel = grpc.insecure_channel(grpc_addr)
        # The switch may still be starting: wait for the channel, bounded.
        grpc.channel_ready_future(self.channel).result(timeout=timeout)
        self.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.channel)
        self._requests = queue.Queue()
        self.arbitrations = queue.Queue()
        self.packet_ins = queue.Queue()
        self.stream_errors = queue.Queue()
        self._stream = self.stub.StreamChannel(iter(self._requests.get, None))
        self._reader = threading.Thread(target=self._read_stream, daemon=True)
        self._reader.start()
        request = p4runtime_pb2.StreamMessageRequest()
        request.arbitration.device_id = device_id
        request.arbitration.election_id.CopyFrom(self.election_id)
        self._requests.put(request)
        reply = self.arbitrations.get(timeout=timeout)
        if reply is None or reply.status.code != code_pb2.OK:
            raise RuntimeError(f"not the primary controller: {reply}")

    def _read_stream(self):
        try:
            for response in self._stream:
                kind = response.WhichOneof("update")
                if kind == "arbitration":
                    self.arbitrations.put(response.arbitration)
                elif kind == "packet":
                    self.packet_ins.put(response.packet)
                else:
                    self.stream_errors.put(response)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                self.stream_errors.put(error)
        finally:
            self.arbitrations.put(None)

    def close(self):
        self._requests.put(None)
        self._stream.cancel()
        self._reader.join(timeout=5)
        self.channel.close()

    # ---- pipeline ------------------------------------------------------

    def set_pipeline(self, device_config=b"umbra.p4"):
        """VERIFY_AND_COMMIT of umbra.p4's P4Info: a fresh pipeline (no
        entries, no clone sessions, counters at zero)."""
        request = p4runtime_pb2.SetForwardingPipelineConfigRequest(
            device_id=self.device_id,
            election_id=self.election_id,
            action=p4runtime_pb2.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
        )
        request.config.p4info.CopyFrom(self.p4info.proto)
        request.config.p4_device_config = device_config
        self.stub.SetForwardingPipelineConfig(request)

    # ---- entities ------------------------------------------------------

    def table_entry(self, table, match, action=None, params=None):
        """A TableEntry of `table` with exact `match` {field: int} and
        `action` with `params` {name: int}."""
        t = self.p4info.table(table)
        entry = p4runtime_pb2.TableEntry(table_id=t.preamble.id)
        fields = {f.name: f for f in t.match_fields}
        for name, value in match.items():
            field = fields[name]
            m = entry.match.add(field_id=field.id)
            m.exact.value = encode(value, field.bitwidth)
        if action is not None:
            a = self.p4info.action(action)
            entry.action.action.action_id = a.preamble.id
            given = dict(params or {})
            for p in a.params:
                entry.action.action.params.add(
                    param_id=p.id, value=encode(given.pop(p.name), p.bitwidth)
                )
            if given:
                raise KeyError(f"action {action} has no params {sorted(given)}")
        return entry

    def clone_session(self, session_id, ports, packet_length_bytes=0):
        entry = p4runtime_pb2.CloneSessionEntry(
            session_id=session_id, packet_length_bytes=packet_length_bytes
        )
        for instance, port in enumerate(ports, start=1):
            entry.replicas.add(egress_port=port, instance=instance)
        return entry

    @staticmethod
    def entity(message):
        entity = p4runtime_pb2.Entity()
        if isinstance(message, p4runtime_pb2.TableEntry):
            entity.table_entry.CopyFrom(message)
        elif isinstance(message, p4runtime_pb2.CloneSessionEntry):
            entity.packet_replication_engine_entry.clone_session_entry.CopyFrom(message)
        elif isinstance(message, p4runtime_pb2.CounterEntry):
            entity.counter_entry.CopyFrom(message)
        elif isinstance(message, p4runtime_pb2.DirectCounterEntry):
            entity.direct_counter_entry.CopyFrom(message)
        else:
            raise TypeError(type(message))
        return entity

    def write(self, *updates):
        """One Write RPC with `updates`, each (type, message) with type
        'INSERT', 'MODIFY' or 'DELETE'. Raises WriteError."""
        request = p4runtime_pb2.WriteRequest(
            device_id=self.device_id,
            election_id=self.election_id,
            atomicity=p4runtime_pb2.WriteRequest.CONTINUE_ON_ERROR,
        )
        for kind, message in updates:
            update = request.updates.add(type=p4runtime_pb2.Update.Type.Value(kind))
            update.entity.CopyFrom(self.entity(message))
        try:
            self.stub.Write(request)
        except grpc.RpcError as error:
            raise WriteError(error) from None

    def insert(self, *messages):
        self.write(*(("INSERT", m) for m in messages))

    def read(self, *messages):
        """All entities a Read of `messages` (filters) returns."""
        request = p4runtime_pb2.ReadRequest(device_id=self.device_id)
        for message in messages:
            request.entities.add().CopyFrom(self.entity(message))
        return [e for response in self.stub.Read(request) for e in response.entities]

    def counter(self, name, index=None):
        """(packets, bytes) of `name`[index], or {index: (packets, bytes)}
        of every index when `index` is None (a wildcard read)."""
        entry = p4runtime_pb2.CounterEntry(counter_id=self.p4info.counter(name).preamble.id)
        if index is not None:
            entry.index.index = index
        cells = {}
        for e in self.read(entry):
            c = e.counter_entry
            cells[c.index.index] = (c.data.packet_count, c.data.byte_count)
        if index is None:
            return cells
        return cells[index]

    def direct_counter(self, table, match):
        """(packets, bytes) of the direct counter of `table`'s entry `match`."""
        entry = p4runtime_pb2.DirectCounterEntry()
        entry.table_entry.CopyFrom(self.table_entry(table, match))
        found = self.read(entry)
        if len(found) != 1:
            raise AssertionError(f"expected one direct counter for {table} {match}: {found}")
        data = found[0].direct_counter_entry.data
        return (data.packet_count, data.byte_count)

    # ---- packet I/O ----------------------------------------------------

    def packet_out(self, payload, egress_port):
        md = self.p4info.packet_metadata("packet_out")
        field = next(m for m in md.metadata if m.name == "egress_port")
        request = p4runtime_pb2.StreamMessageRequest()
        request.packet.payload = bytes(payload)
        request.packet.metadata.add(
            metadata_id=field.id, value=encode(egress_port, field.bitwidth)
        )
        self._requests.put(request)

    def packet_in(self, timeout):
        """The next PacketIn as (payload, {metadata name: int}), or None."""
        try:
            packet = self.packet_ins.get(timeout=timeout)
        except queue.Empty:
            return None
        names = {m.id: m.name for m in self.p4info.packet_metadata("packet_in").metadata}
        metadata = {}
        for m in packet.metadata:
            if m.metadata_id not in names:
                raise AssertionError(f"packet-in metadata id {m.metadata_id} is not in the P4Info")
            metadata[names[m.metadata_id]] = decode(m.value)
        return bytes(packet.payload), metadata

    def drain_packet_ins(self):
        while not self.packet_ins.empty():
            self.packet_ins.get_nowait()


def flow_hash(src_addr, dst_addr, protocol, src_port, dst_port):
    """sample_per_flow's hash, computed independently of the switch: IEEE
    CRC-32 of lo_addr(4) hi_addr(4) proto(1) lo_port(2) hi_port(2), the
    endpoints ordered so both directions agree, then v1model's
    `base + h % max` with base 0 and max 0xffffffff. Addresses are ints."""
    if src_addr < dst_addr or (src_addr == dst_addr and src_port <= dst_port):
        lo, hi, lo_port, hi_port = src_addr, dst_addr, src_port, dst_port
    else:
        lo, hi, lo_port, hi_port = dst_addr, src_addr, dst_port, src_port
    data = (
        lo.to_bytes(4, "big")
        + hi.to_bytes(4, "big")
        + bytes([protocol])
        + lo_port.to_bytes(2, "big")
        + hi_port.to_bytes(2, "big")
    )
    return zlib.crc32(data) % 0xFFFFFFFF
