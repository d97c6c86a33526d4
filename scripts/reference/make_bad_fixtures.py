#!/usr/bin/env python3
"""Bad-input fixtures for the Keras and ONNX readers, written by the real libraries: `make_bad_fixtures.py OUT`.

OUT/huge_declared.h5   a Keras-1-layout VGG16-named file whose first kernel declares (70000, 70000) float32
                       (19.6 GB) but stores nothing (h5py's unallocated dataset): refused before allocating.
OUT/lambda.keras       a Keras 3 model with a Lambda layer (Keras' own .keras writer).
OUT/unknown_op.onnx    an ONNX graph with an Erf node (an op vizlab does not run).
OUT/escape/model.onnx  an initializer whose external data location is ../outside.bin (outside the model's folder).
OUT/huge.onnx          an initializer declaring [1048576, 1048576] float32 with 16 bytes of data.
"""
import os, sys
os.environ.setdefault("KERAS_BACKEND", "torch")
import h5py, numpy as np, onnx
from onnx import TensorProto, helper

out = sys.argv[1]
os.makedirs(os.path.join(out, "escape"), exist_ok=True)

with h5py.File(os.path.join(out, "huge_declared.h5"), "w") as f:
    f.attrs["layer_names"] = np.array([b"block1_conv1"])
    f.attrs["keras_version"] = b"1.2.2"
    g = f.create_group("block1_conv1")
    g.attrs["weight_names"] = np.array([b"block1_conv1_W_1:0"])
    g.create_dataset("block1_conv1_W_1:0", shape=(70000, 70000), dtype="float32")  # never written: no storage

import keras
inp = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(4, 3, name="conv")(inp)
x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
x = keras.layers.GlobalAveragePooling2D()(x)
keras.Model(inp, keras.layers.Dense(10, name="predictions")(x)).save(os.path.join(out, "lambda.keras"))

def model(nodes, inits, name="g"):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph(nodes, name, [x], [y], inits), opset_imports=[helper.make_opsetid("", 17)])

onnx.save(model([helper.make_node("Erf", ["input"], ["y"], name="/features/erf/Erf")], []), os.path.join(out, "unknown_op.onnx"))

w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 1, 1], [0.0] * 12)
w.ClearField("float_data")
w.data_location = TensorProto.EXTERNAL
for k, v in (("location", "../outside.bin"), ("offset", "0"), ("length", "48")):
    e = w.external_data.add(); e.key = k; e.value = v
with open(os.path.join(out, "outside.bin"), "wb") as f:
    f.write(b"\0" * 48)
onnx.save(model([helper.make_node("Conv", ["input", "w"], ["y"], name="conv")], [w]), os.path.join(out, "escape", "model.onnx"))

h = TensorProto(name="h", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20], raw_data=b"\0" * 16)  # helper checks the size
onnx.save(model([helper.make_node("Add", ["input", "h"], ["y"], name="add")], [h]), os.path.join(out, "huge.onnx"))
print("make_bad_fixtures: wrote", out, file=sys.stderr)
