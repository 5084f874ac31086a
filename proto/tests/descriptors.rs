//! Compares umbra-proto's descriptors with those of the official
//! `p4runtime==1.6.0` Python package, both ways, so that any message, field,
//! enum value, oneof, service or method that differs in shape is caught.
//!
//! The official descriptors are dumped by `tests/python/dump_official_descriptors.py`
//! running in the venv made by `scripts/setup-python.sh` (found through
//! `UMBRA_VENV`, default `<workspace>/.venv`). A missing venv fails the test.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use prost::Message as _;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};

/// Shape of a descriptor set, flattened: one entry per file, message, oneof,
/// field, enum, enum value, service and method, keyed by kind and full name,
/// valued by everything that must match for wire (and API) compatibility.
type Shape = BTreeMap<String, String>;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("umbra-proto lives one level below the workspace root")
        .to_path_buf()
}

/// Runs the dump script in the venv and returns the official descriptor set.
fn official_descriptor_set() -> FileDescriptorSet {
    let root = workspace_root();
    let venv = std::env::var_os("UMBRA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv"));
    let python = venv.join("bin").join("python");
    assert!(
        python.exists(),
        "no Python venv at {} (python {} missing): run scripts/setup-python.sh \
         (or point UMBRA_VENV at a venv it made) to install the official p4runtime bindings",
        venv.display(),
        python.display(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("official.fds");
    let script = root.join("tests/python/dump_official_descriptors.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&out)
        .env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "{} failed ({}); if the bindings are missing run scripts/setup-python.sh\n\
         stdout:\n{}\nstderr:\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    let bytes = std::fs::read(&out).expect("dump written");
    FileDescriptorSet::decode(bytes.as_slice()).expect("official set decodes")
}

fn ours() -> FileDescriptorSet {
    FileDescriptorSet::decode(umbra_proto::FILE_DESCRIPTOR_SET).expect("our set decodes")
}

fn shape(set: &FileDescriptorSet) -> Shape {
    let mut shape = Shape::new();
    // Well-known types are imports (prost-types provides them), not ours.
    for file in set
        .file
        .iter()
        .filter(|f| !f.name().starts_with("google/protobuf/"))
    {
        file_shape(file, &mut shape);
    }
    shape
}

fn file_shape(file: &FileDescriptorProto, shape: &mut Shape) {
    let mut deps = file.dependency.clone();
    deps.sort();
    shape.insert(
        format!("file {}", file.name()),
        format!(
            "package {}, syntax {}, imports {deps:?}",
            file.package(),
            file.syntax()
        ),
    );
    let scope = format!(".{}", file.package());
    for message in &file.message_type {
        message_shape(&scope, file.name(), message, shape);
    }
    for e in &file.enum_type {
        enum_shape(&scope, file.name(), e, shape);
    }
    for service in &file.service {
        let name = format!("{scope}.{}", service.name());
        shape.insert(format!("service {name}"), format!("in {}", file.name()));
        for method in &service.method {
            shape.insert(
                format!("method {name}.{}", method.name()),
                format!(
                    "input {}, output {}, client_streaming {}, server_streaming {}",
                    method.input_type(),
                    method.output_type(),
                    method.client_streaming(),
                    method.server_streaming()
                ),
            );
        }
    }
}

fn message_shape(scope: &str, file: &str, message: &DescriptorProto, shape: &mut Shape) {
    let name = format!("{scope}.{}", message.name());
    let map_entry = message.options.as_ref().is_some_and(|o| o.map_entry());
    shape.insert(
        format!("message {name}"),
        format!("in {file}, map_entry {map_entry}"),
    );
    for oneof in &message.oneof_decl {
        shape.insert(format!("oneof {name}.{}", oneof.name()), String::new());
    }
    for field in &message.field {
        let oneof = field
            .oneof_index
            .and_then(|i| message.oneof_decl.get(usize::try_from(i).ok()?))
            .map_or("-", |o| o.name());
        let deprecated = field.options.as_ref().is_some_and(|o| o.deprecated());
        shape.insert(
            format!("field {name}.{}", field.name()),
            format!(
                "number {}, type {}, type_name {:?}, label {}, oneof {oneof}, \
                 proto3_optional {}, deprecated {deprecated}",
                field.number(),
                Type::try_from(field.r#type.unwrap_or_default()).map_or("?", |t| t.as_str_name()),
                field.type_name(),
                Label::try_from(field.label.unwrap_or_default()).map_or("?", |l| l.as_str_name()),
                field.proto3_optional(),
            ),
        );
    }
    for nested in &message.nested_type {
        message_shape(&name, file, nested, shape);
    }
    for e in &message.enum_type {
        enum_shape(&name, file, e, shape);
    }
}

fn enum_shape(scope: &str, file: &str, e: &EnumDescriptorProto, shape: &mut Shape) {
    let name = format!("{scope}.{}", e.name());
    shape.insert(format!("enum {name}"), format!("in {file}"));
    for value in &e.value {
        let deprecated = value.options.as_ref().is_some_and(|o| o.deprecated());
        shape.insert(
            format!("enum value {name}.{}", value.name()),
            format!("number {}, deprecated {deprecated}", value.number()),
        );
    }
}

/// Every difference between two shapes, one line each, both ways.
fn differences(ours: &Shape, official: &Shape) -> Vec<String> {
    let mut diffs = Vec::new();
    for (key, value) in ours {
        match official.get(key) {
            None => diffs.push(format!("only in umbra-proto: {key} ({value})")),
            Some(theirs) if theirs != value => diffs.push(format!(
                "differs: {key}: umbra-proto has {value}; official has {theirs}"
            )),
            Some(_) => {}
        }
    }
    for (key, value) in official {
        if !ours.contains_key(key) {
            diffs.push(format!("missing from umbra-proto: {key} ({value})"));
        }
    }
    diffs
}

#[test]
fn descriptors_match_official_p4runtime_1_6_0() {
    let official = shape(&official_descriptor_set());
    let ours = shape(&ours());

    // Guard against comparing two empty sets: the official package must have
    // brought the objects we know it defines.
    for key in [
        "file p4/v1/p4runtime.proto",
        "file google/rpc/status.proto",
        "method .p4.v1.P4Runtime.StreamChannel",
        "field .p4.v1.Replica.port",
        "enum value .p4.v1.SdnPort.SDN_PORT_CPU",
        "message .p4.config.v1.P4TypeInfo.StructsEntry",
    ] {
        assert!(official.contains_key(key), "official dump lacks {key}");
    }

    let diffs = differences(&ours, &official);
    let mut report = String::new();
    for d in &diffs {
        writeln!(report, "  {d}").unwrap();
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s) between umbra-proto and p4runtime 1.6.0:\n{report}",
        diffs.len()
    );
    // 5 files, and every one of them non-trivial.
    assert_eq!(ours.keys().filter(|k| k.starts_with("file ")).count(), 5);
    assert!(ours.len() > 500, "suspiciously small shape: {}", ours.len());
}

/// The comparison itself reports every kind of change, both ways, all at
/// once; without this the main test could pass by comparing nothing.
#[test]
fn comparison_reports_every_difference() {
    let original = ours();
    let mut changed = original.clone();
    let runtime = changed
        .file
        .iter_mut()
        .find(|f| f.name() == "p4/v1/p4runtime.proto")
        .expect("p4runtime.proto in our set");
    let replica = runtime
        .message_type
        .iter_mut()
        .find(|m| m.name() == "Replica")
        .expect("Replica");
    // Renumber a field, drop it out of its oneof, and remove another field.
    let port = replica
        .field
        .iter_mut()
        .find(|f| f.name() == "port")
        .expect("Replica.port");
    port.number = Some(30);
    port.oneof_index = None;
    replica.field.retain(|f| f.name() != "instance");
    // Make a method unary.
    runtime.service[0]
        .method
        .iter_mut()
        .find(|m| m.name() == "Read")
        .expect("Read")
        .server_streaming = Some(false);
    // Add an enum value.
    let sdn_port = runtime
        .enum_type
        .iter_mut()
        .find(|e| e.name() == "SdnPort")
        .expect("SdnPort");
    let mut extra = sdn_port.value[0].clone();
    extra.name = Some("SDN_PORT_EXTRA".into());
    extra.number = Some(42);
    sdn_port.value.push(extra);

    let diffs = differences(&shape(&changed), &shape(&original));
    let text = diffs.join("\n");
    assert_eq!(diffs.len(), 4, "{text}");
    assert!(
        text.contains("differs: field .p4.v1.Replica.port: umbra-proto has number 30")
            && text.contains("oneof -")
            && text.contains("missing from umbra-proto: field .p4.v1.Replica.instance")
            && text.contains("differs: method .p4.v1.P4Runtime.Read")
            && text.contains("only in umbra-proto: enum value .p4.v1.SdnPort.SDN_PORT_EXTRA"),
        "{text}"
    );
}
