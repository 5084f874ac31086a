"""Builds small GRU failure-prediction models with onnx.helper and runs them
with Python onnxruntime, for umbra-model's integration tests.

  gru_model.py build OUT.onnx --window W|dynamic --features F --hidden H --seed S
                     [--input NAME] [--output NAME] [--batch dynamic|N]
  gru_model.py run MODEL.onnx --batch B --seed S [--window W] --out RESULT.json

`run` draws a random input [B, window, features] (window and features read from
the model), runs it and writes {"shape": [...], "input": [...], "output": [...]}
with float32 values written exactly.
"""

import argparse
import json

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def build(args):
    rng = np.random.default_rng(args.seed)
    f, h = args.features, args.hidden
    window = args.window if args.window == "dynamic" else int(args.window)
    batch = args.batch if args.batch == "dynamic" else int(args.batch)

    def init(name, *shape):
        return numpy_helper.from_array(
            rng.normal(0.0, 0.5, size=shape).astype(np.float32), name
        )

    inits = [
        init("W", 1, 3 * h, f),
        init("R", 1, 3 * h, h),
        init("B", 1, 6 * h),
        init("head_w", h, 1),
        init("head_b", 1),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axes0"),
    ]
    nodes = [
        # ONNX Runtime's GRU only supports layout 0 ([seq, batch, features]).
        helper.make_node("Transpose", [args.input], ["x_seq"], perm=[1, 0, 2]),
        helper.make_node(
            "GRU", ["x_seq", "W", "R", "B"], ["", "h_last"],
            hidden_size=h, linear_before_reset=1,
        ),
        helper.make_node("Squeeze", ["h_last", "axes0"], ["h"]),
        helper.make_node("Gemm", ["h", "head_w", "head_b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], [args.output]),
    ]
    graph = helper.make_graph(
        nodes,
        "umbra_test_gru",
        [helper.make_tensor_value_info(args.input, TensorProto.FLOAT, [batch, window, f])],
        [helper.make_tensor_value_info(args.output, TensorProto.FLOAT, [batch, 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, args.out)


def run(args):
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    _, window, features = inp.shape
    if not isinstance(window, int):  # a dynamic window: use the one asked for
        window = args.window
    rng = np.random.default_rng(args.seed)
    x = rng.normal(0.0, 1.0, size=(args.batch, window, features)).astype(np.float32)
    (y,) = sess.run(None, {inp.name: x})
    with open(args.out, "w") as fh:
        json.dump(
            {
                "shape": list(x.shape),
                "input": [float(v) for v in x.ravel()],
                "output": [float(v) for v in y.ravel()],
            },
            fh,
        )


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("out")
    b.add_argument("--window", required=True)
    b.add_argument("--features", type=int, required=True)
    b.add_argument("--hidden", type=int, default=8)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--input", default="window")
    b.add_argument("--output", default="p_fail")
    b.add_argument("--batch", default="dynamic")
    r = sub.add_parser("run")
    r.add_argument("model")
    r.add_argument("--batch", type=int, required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--window", type=int, default=6, help="for models with a dynamic window")
    r.add_argument("--out", required=True)
    args = p.parse_args()
    build(args) if args.cmd == "build" else run(args)


if __name__ == "__main__":
    main()
