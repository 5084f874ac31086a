#!/usr/bin/env python3
"""Writes the official P4Runtime 1.6.0 descriptors as a serialized
google.protobuf.FileDescriptorSet, for umbra-proto's descriptor comparison.

Usage: dump_official_descriptors.py OUTPUT_PATH

Run it in the venv made by scripts/setup-python.sh, with
PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python. The set holds the p4/v1 and
p4/config/v1 files of the `p4runtime` package and google/rpc/status.proto of
`googleapis-common-protos`, the files umbra-proto transcribes.
"""

import sys

from google.protobuf import descriptor_pb2


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2

    # Imported here so that a usage error needs no bindings.
    from google.rpc import status_pb2
    from p4.config.v1 import p4info_pb2, p4types_pb2
    from p4.v1 import p4data_pb2, p4runtime_pb2

    fds = descriptor_pb2.FileDescriptorSet()
    for module in (status_pb2, p4types_pb2, p4info_pb2, p4data_pb2, p4runtime_pb2):
        module.DESCRIPTOR.CopyToProto(fds.file.add())

    with open(sys.argv[1], "wb") as out:
        out.write(fds.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
