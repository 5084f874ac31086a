//! Parsing text-format P4Info (`.txtpb`, as written by p4c
//! `--p4runtime-files x.txtpb`) through prost-reflect.

use std::sync::OnceLock;

use miette::Diagnostic as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use umbra_proto::p4::config::v1::P4Info;

use crate::error::{P4InfoError, Result};

const P4INFO_MESSAGE: &str = "p4.config.v1.P4Info";

/// The descriptor of `p4.config.v1.P4Info`, decoded from umbra-proto's
/// descriptor set on first use.
fn p4info_descriptor() -> Result<MessageDescriptor> {
    static DESCRIPTOR: OnceLock<MessageDescriptor> = OnceLock::new();
    if let Some(descriptor) = DESCRIPTOR.get() {
        return Ok(descriptor.clone());
    }
    let pool = DescriptorPool::decode(umbra_proto::FILE_DESCRIPTOR_SET)
        .map_err(P4InfoError::Descriptors)?;
    let descriptor = pool
        .get_message_by_name(P4INFO_MESSAGE)
        .ok_or(P4InfoError::MissingDescriptor(P4INFO_MESSAGE))?;
    Ok(DESCRIPTOR.get_or_init(|| descriptor).clone())
}

/// Parses a text-format `p4.config.v1.P4Info`.
///
/// Only the syntax and the schema are checked here; use
/// [`P4InfoIndex::new`](crate::P4InfoIndex::new) to check that the P4Info is
/// consistent.
///
/// # Errors
///
/// [`P4InfoError::TextFormat`] when the text is not valid text-format
/// P4Info, with the line and column of the problem where the parser gives
/// one; [`P4InfoError::Descriptors`], [`P4InfoError::MissingDescriptor`] or
/// [`P4InfoError::Transcode`] on a broken build of umbra-proto.
pub fn parse_text(text: &str) -> Result<P4Info> {
    let descriptor = p4info_descriptor()?;
    let message = DynamicMessage::parse_text_format(descriptor, text).map_err(|source| {
        // prost-reflect gives a span for every error but two: running out of
        // input (which is at the end, so say so) and a bad map key.
        let offset = source
            .labels()
            .and_then(|mut labels| labels.next())
            .map(|label| label.offset())
            .or_else(|| {
                source
                    .to_string()
                    .ends_with("reached end of input")
                    .then_some(text.len())
            });
        let (line, column) = match offset.map(|o| line_column(text, o)) {
            Some((line, column)) => (Some(line), Some(column)),
            None => (None, None),
        };
        P4InfoError::TextFormat {
            line,
            column,
            source,
        }
    })?;
    message.transcode_to().map_err(P4InfoError::Transcode)
}

/// 1-based line and column (in characters) of a byte offset into `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 1), (1, 2));
        assert_eq!(line_column(text, 3), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(line_column(text, 7), (2, 4));
        assert_eq!(line_column(text, 8), (3, 1));
        assert_eq!(line_column(text, 100), (3, 2));
    }

    #[test]
    fn parses_minimal_p4info() {
        let p4info = parse_text(
            "tables { preamble { id: 33554433 name: \"C.t\" alias: \"t\" } size: 4 }\n\
             actions { preamble { id: 16777217 name: \"C.a\" } params { id: 1 name: \"p\" bitwidth: 9 } }",
        )
        .expect("parses");
        assert_eq!(p4info.tables.len(), 1);
        assert_eq!(p4info.tables[0].preamble.as_ref().unwrap().name, "C.t");
        assert_eq!(p4info.tables[0].size, 4);
        assert_eq!(p4info.actions[0].params[0].bitwidth, 9);
    }

    #[test]
    fn unknown_field_is_reported_with_its_position() {
        let err = parse_text("tables {\n  preamble { id: 1 }\n  sise: 4\n}\n").unwrap_err();
        let P4InfoError::TextFormat { line, column, .. } = &err else {
            panic!("unexpected error {err:?}");
        };
        assert_eq!((*line, *column), (Some(3), Some(3)), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with("invalid P4Info text at line 3, column 3: "),
            "{text}"
        );
        assert!(text.contains("sise"), "{text}");
    }

    #[test]
    fn syntax_error_is_reported_with_its_position() {
        let err = parse_text("tables {\n  size: 4\n").unwrap_err();
        assert!(
            matches!(
                err,
                P4InfoError::TextFormat {
                    line: Some(3),
                    column: Some(1),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("end of input"), "{err}");
    }

    #[test]
    fn wrong_value_type_is_rejected() {
        let err = parse_text("tables { size: \"big\" }").unwrap_err();
        assert!(
            matches!(
                err,
                P4InfoError::TextFormat {
                    line: Some(1),
                    column: Some(16),
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
