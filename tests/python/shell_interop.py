#!/usr/bin/env python3
"""p4runtime-shell (0.0.6, built on p4runtime 1.4.1 bindings) against
`umbra switch`: pipeline push, table entries and a clone session written and
read back, and the ALREADY_EXISTS error of a duplicate insert.

Usage: shell_interop.py GRPC_ADDR P4INFO_TXTPB

Prints one "PASS <check>" line per check and exits 0, or raises (exit 1).
Run it in the venv with p4runtime-shell (.venv-shell).
"""

import sys
import tempfile

import p4runtime_sh.shell as sh
from google.rpc import code_pb2
from p4.v1 import p4runtime_pb2
from p4runtime_sh.p4runtime import P4RuntimeWriteException


def normalized(entry):
    """A TableEntry as plain values: bytestrings compare by value, because
    the spec lets a server answer in canonical form what a client wrote
    byte-padded (p4runtime-shell pads; Umbra's switch answers canonically)."""
    match = [(m.field_id, int.from_bytes(m.exact.value, "big")) for m in entry.match]
    action = entry.action.action
    params = [(p.param_id, int.from_bytes(p.value, "big")) for p in action.params]
    return entry.table_id, sorted(match), action.action_id, params


def canonical(data):
    """True if `data` is a canonical P4Runtime bytestring."""
    return len(data) == 1 or (len(data) > 1 and data[0] != 0)


def passed(check):
    print(f"PASS {check}", flush=True)


def expect_already_exists(write, what):
    try:
        write()
    except P4RuntimeWriteException as error:
        codes = [e.canonical_code for _, e in error.errors]
        assert codes == [code_pb2.ALREADY_EXISTS], f"{what}: {error}"
        return
    raise AssertionError(f"inserting {what} a second time succeeded")


def main():
    grpc_addr, p4info_path = sys.argv[1:3]
    with tempfile.NamedTemporaryFile(suffix=".json") as device_config:
        # Umbra's switch stores the device config as given (bmv2 would parse
        # it as its JSON); a recognisable blob shows it comes back intact.
        blob = b'{"program": "umbra.p4", "note": "opaque to umbra switch"}'
        device_config.write(blob)
        device_config.flush()
        sh.setup(device_id=1, grpc_addr=grpc_addr, election_id=(0, 1),
                 config=sh.FwdPipeConfig(p4info_path, device_config.name), verbose=False)
    try:
        run_checks(blob)
    finally:
        sh.teardown()


def run_checks(blob):
    # The pipeline took: GetForwardingPipelineConfig returns what was pushed.
    request = p4runtime_pb2.GetForwardingPipelineConfigRequest(
        device_id=1, response_type=p4runtime_pb2.GetForwardingPipelineConfigRequest.ALL)
    config = sh.client.stub.GetForwardingPipelineConfig(request).config
    assert config.p4_device_config == blob, config.p4_device_config
    assert {t.preamble.alias for t in config.p4info.tables} == {
        "port_classify", "service_selector", "device_portmap", "mirror_sampling",
        "mirror_truncate"}
    passed("pipeline pushed and read back")

    # service_selector: insert, read back with identical match and action.
    te = sh.TableEntry("service_selector")(action="set_active_device")
    te.match["service_id"] = "7"
    te.action["device"] = "2"
    te.insert()
    written = te.msg()
    read = [e.msg() for e in sh.TableEntry("service_selector").read()]
    assert len(read) == 1, read
    assert normalized(read[0]) == normalized(written), (read[0], written)
    assert normalized(read[0]) == (written.table_id, [(1, 7)], written.action.action.action_id,
                                   [(1, 2)]), read[0]
    values = [m.exact.value for m in read[0].match]
    values += [p.value for p in read[0].action.action.params]
    assert all(map(canonical, values)), read[0]
    passed("service_selector entry read back identical")

    # The same entry again: ALREADY_EXISTS, and the entry is unchanged.
    expect_already_exists(te.insert, "the service_selector entry")
    assert [normalized(e.msg()) for e in sh.TableEntry("service_selector").read()] == [
        normalized(r) for r in read]
    passed("duplicate service_selector insert raises ALREADY_EXISTS")

    # The failover flip through the shell: MODIFY, read back.
    te.action["device"] = "1"
    te.modify()
    read = [e.msg() for e in sh.TableEntry("service_selector").read()]
    assert [normalized(r)[3] for r in read] == [[(1, 1)]], read
    passed("service_selector modify read back")

    # device_portmap: two match fields.
    entries = []
    for device, direction, port in ((1, 0, 3), (1, 1, 4), (2, 0, 5), (2, 1, 6)):
        e = sh.TableEntry("device_portmap")(action="steer_to_port")
        e.match["device"] = str(device)
        e.match["direction"] = str(direction)
        e.action["port"] = str(port)
        e.insert()
        entries.append(e.msg())
    read = [e.msg() for e in sh.TableEntry("device_portmap").read()]
    assert sorted(map(normalized, read)) == sorted(map(normalized, entries)), read
    # A read filtered on both fields returns exactly that entry.
    one = sh.TableEntry("device_portmap")
    one.match["device"] = "2"
    one.match["direction"] = "1"
    read_one = [e.msg() for e in one.read()]
    assert [normalized(r) for r in read_one] == [
        (entries[3].table_id, [(1, 2), (2, 1)], entries[3].action.action.action_id, [(1, 6)])
    ], read_one
    passed("device_portmap entries (two match fields) read back identical")

    # Clone session: replica port and packet_length_bytes come back.
    cs = sh.CloneSessionEntry(100)
    cs.add(7, 1)
    cs.packet_length_bytes = 128
    cs.insert()
    sessions = list(sh.CloneSessionEntry(100).read())
    assert len(sessions) == 1
    got = sessions[0]
    assert got.session_id == 100
    assert [(r.egress_port, r.instance) for r in got.replicas] == [(7, 1)]
    assert got.packet_length_bytes == 128
    assert [s.session_id for s in sh.CloneSessionEntry().read()] == [100]
    passed("clone session read back (replica port 7, packet_length_bytes 128)")
    expect_already_exists(cs.insert, "clone session 100")
    passed("duplicate clone session insert raises ALREADY_EXISTS")

    # Counters through the shell: a wildcard read of port_rx has every index.
    cells = list(sh.CounterEntry("port_rx").read())
    assert len(cells) == 512, len(cells)
    assert all(c.packet_count == 0 for c in cells)
    passed("port_rx wildcard counter read")


if __name__ == "__main__":
    main()
