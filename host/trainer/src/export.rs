//! ONNX export of a trained [`GruWeights`]: a standard model any ONNX runtime loads.
//!
//! Graph (opset 17, IR version 8):
//!
//! ```text
//! window [batch, W, F] --Transpose(1,0,2)--> [W, batch, F]
//!   --GRU(hidden H, linear_before_reset=1)--> Y_h [1, batch, H]
//!   --Squeeze(axes 0)--> [batch, H] --Gemm(head, transB)--> [batch, 1]
//!   --Sigmoid--> p_fail [batch, 1]
//! ```
//!
//! The transpose exists because ONNX Runtime's GRU kernel accepts only the
//! sequence-major layout (`layout = 0`). ONNX orders the gates z, r, h where
//! candle and PyTorch order them r, z, n; the weights are reordered here.

use prost::Message;

use crate::model::GruWeights;
use crate::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_proto::DataType, tensor_shape_proto, type_proto,
};

/// The ONNX IR version written.
pub const IR_VERSION: i64 = 8;
/// The default-domain opset imported. GRU last changed in opset 14 and
/// Squeeze took its axes as an input from opset 13; ONNX Runtime runs 17.
pub const OPSET: i64 = 17;

/// What to name the graph's input and output and how to describe the model.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Input name (the manifest's `input`).
    pub input: String,
    /// Output name (the manifest's `output`).
    pub output: String,
    /// Window length, written as the input's fixed second dimension.
    pub window: usize,
    /// Model version string, stored in the model's metadata.
    pub model_version: String,
}

/// Reorders `[3 * hidden, ...]` rows from r, z, n (candle) to z, r, n (ONNX).
fn rzn_to_zrn(rows: &[f32], hidden: usize) -> Vec<f32> {
    let block = rows.len() / 3;
    debug_assert_eq!(block % hidden, 0);
    let (r, rest) = rows.split_at(block);
    let (z, n) = rest.split_at(block);
    [z, r, n].concat()
}

fn tensor(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    debug_assert_eq!(dims.iter().product::<usize>(), data.len());
    TensorProto {
        name: Some(name.to_owned()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

fn int_attr(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

fn ints_attr(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: Some(format!(
            "{op}_{}",
            outputs.iter().find(|o| !o.is_empty()).unwrap_or(&op)
        )),
        op_type: Some(op.to_owned()),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        attribute,
        ..Default::default()
    }
}

/// A dimension: `Ok(n)` fixed, `Err(name)` symbolic (dynamic).
fn float_tensor_info(name: &str, dims: &[Result<usize, &str>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Ok(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
                Err(s) => tensor_shape_proto::dimension::Value::DimParam((*s).to_owned()),
            }),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

/// Builds the ONNX model for `weights`.
#[must_use]
pub fn model(weights: &GruWeights, options: &ExportOptions) -> ModelProto {
    let (h, f) = (weights.hidden, weights.features);
    let mut bias = rzn_to_zrn(&weights.b_ih, h);
    bias.extend(rzn_to_zrn(&weights.b_hh, h));
    let initializer = vec![
        tensor("gru.W", &[1, 3 * h, f], &rzn_to_zrn(&weights.w_ih, h)),
        tensor("gru.R", &[1, 3 * h, h], &rzn_to_zrn(&weights.w_hh, h)),
        tensor("gru.B", &[1, 6 * h], &bias),
        tensor("head.weight", &[1, h], &weights.head_w),
        tensor("head.bias", &[1], &[weights.head_b]),
        TensorProto {
            name: Some("squeeze.axes".to_owned()),
            dims: vec![1],
            data_type: Some(DataType::Int64 as i32),
            int64_data: vec![0],
            ..Default::default()
        },
    ];
    let input = options.input.as_str();
    let output = options.output.as_str();
    let nodes = vec![
        node(
            "Transpose",
            &[input],
            &["x_seq"],
            vec![ints_attr("perm", &[1, 0, 2])],
        ),
        node(
            "GRU",
            &["x_seq", "gru.W", "gru.R", "gru.B"],
            &["", "h_last"],
            vec![
                int_attr("hidden_size", h as i64),
                int_attr("linear_before_reset", 1),
            ],
        ),
        node("Squeeze", &["h_last", "squeeze.axes"], &["h"], vec![]),
        node(
            "Gemm",
            &["h", "head.weight", "head.bias"],
            &["logit"],
            vec![int_attr("transB", 1)],
        ),
        node("Sigmoid", &["logit"], &[output], vec![]),
    ];
    let graph = GraphProto {
        name: Some("umbra_gru".to_owned()),
        node: nodes,
        initializer,
        input: vec![float_tensor_info(
            input,
            &[Err("batch"), Ok(options.window), Ok(f)],
        )],
        output: vec![float_tensor_info(output, &[Err("batch"), Ok(1)])],
        doc_string: Some(
            "Probability that the primary device fails within the manifest's horizon.".to_owned(),
        ),
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("umbra-trainer".to_owned()),
        producer_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        graph: Some(graph),
        metadata_props: vec![StringStringEntryProto {
            key: Some("umbra.model_version".to_owned()),
            value: Some(options.model_version.clone()),
        }],
        ..Default::default()
    }
}

/// The serialised ONNX file for `weights`.
#[must_use]
pub fn to_bytes(weights: &GruWeights, options: &ExportOptions) -> Vec<u8> {
    model(weights, options).encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_are_reordered_from_rzn_to_zrn() {
        // hidden 2, one column: r = [1, 2], z = [3, 4], n = [5, 6].
        let rows = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(rzn_to_zrn(&rows, 2), vec![3.0, 4.0, 1.0, 2.0, 5.0, 6.0]);
    }

    #[test]
    fn encoding_round_trips_and_has_a_dynamic_batch() {
        let w = GruWeights {
            features: 2,
            hidden: 1,
            w_ih: vec![0.0; 6],
            w_hh: vec![0.0; 3],
            b_ih: vec![1.0, 2.0, 3.0],
            b_hh: vec![4.0, 5.0, 6.0],
            head_w: vec![0.5],
            head_b: -1.0,
        };
        let options = ExportOptions {
            input: "window".to_owned(),
            output: "p_fail".to_owned(),
            window: 5,
            model_version: "v1".to_owned(),
        };
        let bytes = to_bytes(&w, &options);
        let decoded = ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded, model(&w, &options));
        let graph = decoded.graph.unwrap();
        let b = graph
            .initializer
            .iter()
            .find(|t| t.name() == "gru.B")
            .unwrap();
        let values: Vec<f32> = b
            .raw_data()
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, vec![2.0, 1.0, 3.0, 5.0, 4.0, 6.0]);
        let Some(type_proto::Value::TensorType(t)) = &graph.input[0].r#type.as_ref().unwrap().value
        else {
            panic!("input is not a tensor");
        };
        let dims = &t.shape.as_ref().unwrap().dim;
        assert_eq!(
            dims[0].value,
            Some(tensor_shape_proto::dimension::Value::DimParam(
                "batch".to_owned()
            ))
        );
        assert_eq!(
            dims[1].value,
            Some(tensor_shape_proto::dimension::Value::DimValue(5))
        );
    }
}
