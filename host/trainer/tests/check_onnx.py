"""Checks an ONNX file written by umbra-trainer and runs it with Python onnxruntime.

  check_onnx.py MODEL.onnx INPUT.json OUTPUT.json

INPUT.json is {"shape": [batch, window, features], "input": [...]} (row-major
float32 values); OUTPUT.json receives {"output": [...], "opset": N,
"input_dims": [...], "inputs": [...], "outputs": [...]}. Exits non-zero if the
checker (full_check=True, which includes shape inference) rejects the model.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model_path, input_path, output_path = sys.argv[1:4]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    dims = [
        d.dim_param if d.HasField("dim_param") else d.dim_value
        for d in model.graph.input[0].type.tensor_type.shape.dim
    ]
    with open(input_path) as fh:
        data = json.load(fh)
    x = np.asarray(data["input"], dtype=np.float32).reshape(data["shape"])
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    # One row at a time must agree with the batched call (dynamic batch).
    single = [sess.run(None, {sess.get_inputs()[0].name: x[i : i + 1]})[0][0, 0] for i in range(len(x))]
    assert np.allclose(y[:, 0], single, atol=1e-6), "batched and single-row outputs differ"
    with open(output_path, "w") as fh:
        json.dump(
            {
                "output": [float(v) for v in y.ravel()],
                "output_shape": list(y.shape),
                "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                "input_dims": dims,
                "inputs": [i.name for i in sess.get_inputs()],
                "outputs": [o.name for o in sess.get_outputs()],
            },
            fh,
        )


if __name__ == "__main__":
    main()
