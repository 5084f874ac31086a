#!/usr/bin/env python3
"""Checks Umbra's P4Info with the OFFICIAL p4runtime bindings.

Usage: check_p4info.py P4INFO_TXTPB P4_SOURCE

Parses the text-format P4Info into p4.config.v1.p4info_pb2.P4Info with
google.protobuf.text_format (so the official schema decides what is valid)
and checks it against the P4 source:

  - every id's top byte is the P4Runtime prefix of its kind;
  - ids are unique across the whole P4Info;
  - every table, action, counter and direct_counter declared in a control of
    the P4 source is in the P4Info under its control-qualified name, with the
    id its @id annotation gives, and nothing else is;
  - every @controller_header header is in controller_packet_metadata with
    the same fields and bitwidths;
  - match field, action param and controller metadata ids count 1, 2, 3...;
  - every action_ref, default action, direct_resource_id and direct counter
    table resolves (and direct counters and their tables agree).

Prints every problem and exits 1 if there is any, 0 otherwise. Run it in the
venv made by scripts/setup-python.sh with
PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python.
"""

import re
import sys

from google.protobuf import text_format
from p4.config.v1 import p4info_pb2

PREFIX = {
    "action": 0x01,
    "table": 0x02,
    "value set": 0x03,
    "controller packet metadata": 0x04,
    "action profile": 0x11,
    "counter": 0x12,
    "direct counter": 0x13,
    "meter": 0x14,
    "direct meter": 0x15,
    "register": 0x16,
    "digest": 0x17,
}

# P4 source kinds that the P4Info lists, and the P4Info field listing them.
SOURCE_KINDS = {
    "table": "tables",
    "action": "actions",
    "counter": "counters",
    "direct counter": "direct_counters",
}

ANNOTATIONS = r"((?:@\w+(?:\([^()]*\))?\s*)*)"


def strip_comments(text):
    """Blanks out comments, keeping offsets (and so line numbers) intact."""

    def blank(match):
        return re.sub(r"[^\n]", " ", match.group(0))

    return re.sub(r"//[^\n]*|/\*.*?\*/", blank, text, flags=re.S)


def matching(text, open_at, open_ch, close_ch):
    """Index of the bracket closing the one at open_at."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == open_ch:
            depth += 1
        elif text[i] == close_ch:
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced {open_ch} at offset {open_at}")


def annotation_id(annotations):
    match = re.search(r"@id\(\s*(0x[0-9a-fA-F]+|\d+)\s*\)", annotations)
    return int(match.group(1), 0) if match else None


def parse_p4(text):
    """Declarations of the P4 source: (kind, qualified name, @id, line)."""
    text = strip_comments(text)
    line_of = lambda offset: text.count("\n", 0, offset) + 1

    controls = []  # (name, body start, body end)
    for match in re.finditer(r"\bcontrol\s+(\w+)\s*(?:<[^>]*>)?\s*\(", text):
        params_end = matching(text, match.end() - 1, "(", ")")
        rest = text[params_end + 1 :].lstrip()
        if not rest.startswith("{"):
            continue  # a control type declaration, without a body
        body_start = text.index("{", params_end)
        controls.append((match.group(1), body_start, matching(text, body_start, "{", "}")))

    def qualify(name, offset):
        for control, start, end in controls:
            if start < offset < end:
                return f"{control}.{name}"
        return name

    declarations = []
    patterns = [
        ("table", ANNOTATIONS + r"\btable\s+(\w+)\s*\{"),
        ("action", ANNOTATIONS + r"\baction\s+(\w+)\s*\("),
        ("counter", ANNOTATIONS + r"\bcounter\s*\([^;{}]*\)\s*(\w+)\s*;"),
        ("direct counter", ANNOTATIONS + r"\bdirect_counter\s*\([^;{}]*\)\s*(\w+)\s*;"),
    ]
    for kind, pattern in patterns:
        for match in re.finditer(pattern, text):
            name = qualify(match.group(2), match.start(2))
            declarations.append((kind, name, annotation_id(match.group(1)), line_of(match.start(2))))

    headers = []  # (controller header name, @id, [(field, bitwidth)], line)
    pattern = ANNOTATIONS + r"\bheader\s+(\w+)\s*\{([^}]*)\}"
    for match in re.finditer(pattern, text):
        annotations = match.group(1)
        name = re.search(r'@controller_header\(\s*"(\w+)"\s*\)', annotations)
        if not name:
            continue
        fields = [
            (field, int(width))
            for width, field in re.findall(r"\bbit\s*<\s*(\d+)\s*>\s+(\w+)\s*;", match.group(3))
        ]
        headers.append((name.group(1), annotation_id(annotations), fields, line_of(match.start(2))))
    return declarations, headers


def all_objects(p4info):
    """(kind, preamble) of every object of the P4Info."""
    lists = [
        ("table", p4info.tables),
        ("action", p4info.actions),
        ("action profile", p4info.action_profiles),
        ("counter", p4info.counters),
        ("direct counter", p4info.direct_counters),
        ("meter", p4info.meters),
        ("direct meter", p4info.direct_meters),
        ("controller packet metadata", p4info.controller_packet_metadata),
        ("value set", p4info.value_sets),
        ("register", p4info.registers),
        ("digest", p4info.digests),
    ]
    for kind, objects in lists:
        for obj in objects:
            yield kind, obj.preamble
    for extern in p4info.externs:
        for instance in extern.instances:
            yield f"extern {extern.extern_type_name}", instance.preamble


def check_member_ids(owner, label, members, problems):
    ids = [m.id for m in members]
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"{owner}: {label} ids are {ids}, expected {list(range(1, len(ids) + 1))}")


def check(p4info, declarations, headers):
    problems = []

    # Prefixes and uniqueness.
    seen = {}
    for kind, preamble in all_objects(p4info):
        what = f'{kind} "{preamble.name}" (id {preamble.id:#010x})'
        expected = PREFIX.get(kind)
        if kind.startswith("extern "):
            if preamble.id >> 24 < 0x80:
                problems.append(f"{what}: extern ids must have a prefix of 0x80 or above")
        elif preamble.id >> 24 != expected:
            problems.append(f"{what}: top byte is {preamble.id >> 24:#04x}, expected {expected:#04x}")
        if preamble.id in seen:
            problems.append(f"{what}: id already used by {seen[preamble.id]}")
        else:
            seen[preamble.id] = f'{kind} "{preamble.name}"'

    # Source declarations against the P4Info, both ways.
    by_kind = {
        kind: {obj.preamble.name: obj.preamble for obj in getattr(p4info, field)}
        for kind, field in SOURCE_KINDS.items()
    }
    declared = {kind: set() for kind in SOURCE_KINDS}
    for kind, name, at_id, line in declarations:
        declared[kind].add(name)
        preamble = by_kind[kind].get(name)
        if preamble is None:
            problems.append(f'{kind} "{name}" (P4 line {line}) is not in the P4Info')
            continue
        if at_id is not None:
            expected = (PREFIX[kind] << 24) | at_id
            if preamble.id != expected:
                problems.append(
                    f'{kind} "{name}": id {preamble.id:#010x}, but @id({at_id:#x}) '
                    f"(P4 line {line}) gives {expected:#010x}"
                )
    for kind, objects in by_kind.items():
        for name in objects:
            if name not in declared[kind]:
                problems.append(f'{kind} "{name}" is in the P4Info but not declared in the P4 source')

    cpm = {c.preamble.name: c for c in p4info.controller_packet_metadata}
    for name, at_id, fields, line in headers:
        header = cpm.pop(name, None)
        if header is None:
            problems.append(f'controller header "{name}" (P4 line {line}) is not in the P4Info')
            continue
        actual = [(m.name, m.bitwidth) for m in header.metadata]
        if actual != fields:
            problems.append(f'controller header "{name}": fields {actual}, P4 source has {fields}')
        if at_id is not None and header.preamble.id != (PREFIX["controller packet metadata"] << 24) | at_id:
            problems.append(
                f'controller header "{name}": id {header.preamble.id:#010x} does not match @id({at_id:#x})'
            )
    for name in cpm:
        problems.append(f'controller header "{name}" is in the P4Info but not declared in the P4 source')

    # Member ids.
    for table in p4info.tables:
        check_member_ids(f'table "{table.preamble.name}"', "match field", table.match_fields, problems)
    for action in p4info.actions:
        check_member_ids(f'action "{action.preamble.name}"', "param", action.params, problems)
    for header in p4info.controller_packet_metadata:
        check_member_ids(f'controller header "{header.preamble.name}"', "metadata", header.metadata, problems)

    # References.
    actions = {a.preamble.id for a in p4info.actions}
    tables = {t.preamble.id: t for t in p4info.tables}
    direct = {c.preamble.id: c for c in p4info.direct_counters}
    direct_meters = {m.preamble.id for m in p4info.direct_meters}
    profiles = {p.preamble.id for p in p4info.action_profiles}
    for table in p4info.tables:
        owner = f'table "{table.preamble.name}"'
        refs = [r.id for r in table.action_refs]
        for ref in refs:
            if ref not in actions:
                problems.append(f"{owner}: action_ref {ref:#010x} is not an action")
        defaults = []
        if table.const_default_action_id:
            defaults.append(table.const_default_action_id)
        if table.HasField("initial_default_action"):
            defaults.append(table.initial_default_action.action_id)
        for default in defaults:
            if default not in refs:
                problems.append(f"{owner}: default action {default:#010x} is not one of its action_refs")
        for resource in table.direct_resource_ids:
            if resource in direct:
                if direct[resource].direct_table_id != table.preamble.id:
                    problems.append(
                        f'{owner}: direct counter "{direct[resource].preamble.name}" '
                        f"is attached to table {direct[resource].direct_table_id:#010x}"
                    )
            elif resource not in direct_meters:
                problems.append(f"{owner}: direct_resource_id {resource:#010x} does not resolve")
        if table.implementation_id and table.implementation_id not in profiles:
            problems.append(f"{owner}: implementation_id {table.implementation_id:#010x} does not resolve")
    for counter in p4info.direct_counters:
        owner = f'direct counter "{counter.preamble.name}"'
        table = tables.get(counter.direct_table_id)
        if table is None:
            problems.append(f"{owner}: direct_table_id {counter.direct_table_id:#010x} is not a table")
        elif counter.preamble.id not in table.direct_resource_ids:
            problems.append(f'{owner}: table "{table.preamble.name}" does not list it in direct_resource_ids')
    return problems


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    p4info_path, p4_path = sys.argv[1], sys.argv[2]
    p4info = p4info_pb2.P4Info()
    with open(p4info_path, encoding="utf-8") as f:
        try:
            text_format.Parse(f.read(), p4info)
        except text_format.ParseError as e:
            print(f"{p4info_path}: not a valid text-format P4Info: {e}", file=sys.stderr)
            return 1
    with open(p4_path, encoding="utf-8") as f:
        declarations, headers = parse_p4(f.read())
    if not declarations:
        print(f"{p4_path}: no table, action or counter found in the P4 source", file=sys.stderr)
        return 1

    problems = check(p4info, declarations, headers)
    if problems:
        print(f"{p4info_path}: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    counts = {kind: sum(1 for d in declarations if d[0] == kind) for kind in SOURCE_KINDS}
    summary = ", ".join(f"{n} {kind}(s)" for kind, n in counts.items())
    print(f"{p4info_path}: ok ({summary}, {len(headers)} controller header(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
