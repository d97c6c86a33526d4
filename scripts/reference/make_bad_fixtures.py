#!/usr/bin/env python3
"""Bad-input fixtures for the Keras and ONNX readers, written by the real libraries: `make_bad_fixtures.py OUT`.

OUT/huge_declared.h5   a Keras-1-layout VGG16-named file whose first kernel declares (70000, 70000) float32
                       (19.6 GB) but stores nothing (h5py's unallocated dataset): refused before allocating.
OUT/declared_exceeds_file.h5  the same with (4000, 4000) float32: 64 MB declared in a file of a few kB.
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

# Declares 64 MB (under 4 GiB) in a file of a few kB: contiguous storage pointing past the end of the file.
with h5py.File(os.path.join(out, "declared_exceeds_file.h5"), "w") as f:
    f.attrs["layer_names"] = np.array([b"block1_conv1"])
    g = f.create_group("block1_conv1")
    g.attrs["weight_names"] = np.array([b"block1_conv1_W_1:0"])
    g.create_dataset("block1_conv1_W_1:0", shape=(4000, 4000), dtype="float32")  # never written: no storage

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

# Small real files to seed the readers' fuzzers (scripts/fuzz-importers): a tiny Keras CNN in the legacy HDF5,
# .weights.h5 and .keras forms, and a tiny ONNX CNN.
from keras.src.legacy.saving import legacy_h5_format
inp = keras.Input((16, 16, 3), name="input_layer")
x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
x = keras.layers.BatchNormalization(name="bn")(x)
x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name="dw")(x)
x = keras.layers.ReLU(6.0, name="relu6")(x)
x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
tiny = keras.Model(inp, keras.layers.Dense(5, activation="softmax", name="predictions")(x), name="tiny")
with h5py.File(os.path.join(out, "tiny.h5"), "w") as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, tiny)
tiny.save_weights(os.path.join(out, "tiny.weights.h5"))
tiny.save(os.path.join(out, "tiny.keras"))

rng = np.random.default_rng(0)
def init(name, *shape):
    return helper.make_tensor(name, TensorProto.FLOAT, list(shape), rng.normal(0, 0.3, shape).astype(np.float32).ravel().tolist())
x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])
y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])
nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="/conv/Conv", pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c1", "g", "be", "m", "v"], ["n1"], name="/bn/BatchNormalization"),
         helper.make_node("Relu", ["n1"], ["r1"], name="/relu/Relu"),
         helper.make_node("MaxPool", ["r1"], ["p1"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
         helper.make_node("GlobalAveragePool", ["p1"], ["gp"], name="/gap/GlobalAveragePool"),
         helper.make_node("Flatten", ["gp"], ["f"], name="/Flatten"),
         helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="/fc/Gemm", transB=1)]
inits = [init("w1", 4, 3, 3, 3), init("b1", 4), init("g", 4), init("be", 4), init("m", 4),
         helper.make_tensor("v", TensorProto.FLOAT, [4], [1.0, 0.9, 1.1, 1.2]), init("wf", 5, 4), init("bf", 5)]
tiny_onnx = helper.make_model(helper.make_graph(nodes, "tiny", [x], [y], inits), opset_imports=[helper.make_opsetid("", 17)])
onnx.checker.check_model(tiny_onnx)
onnx.save(tiny_onnx, os.path.join(out, "tiny.onnx"))
print("make_bad_fixtures: wrote the fuzz seeds", file=sys.stderr)
