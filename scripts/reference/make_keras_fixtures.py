#!/usr/bin/env python3
"""Keras-format parity fixtures made by Keras itself: `make_keras_fixtures.py OUT [ARCH...]` (see README.md here).

Runs Keras 3 on the torch backend (KERAS_BACKEND=torch is forced). For each arch in vgg16, vgg19, resnet50,
mobilenet_v2 it builds `keras.applications.<X>(weights=None)` (224x224x3, 1000 classes, softmax head), gives it
random but input-sensitive weights (fixed seed per arch), and writes OUT/<arch>/:

  keras1.h5          Keras-1 layout of the official VGG16 file, written with h5py (`<layer>/<layer>_W_1:0` ...)
  tfkeras2.h5        tf.keras 2 layout, written with h5py (`<layer>/<layer>/kernel:0` ...)
  legacy.h5          Keras 3's own legacy writer legacy_h5_format.save_weights_to_hdf5_group
  full.h5            model.save("full.h5"): legacy full-model file (model_weights/ + model_config)
  model.weights.h5   model.save_weights(...): Keras 3 layout layers/<snake_case class>[_N]/vars/<i>
  model.keras        model.save(...): zip of metadata.json, config.json, model.weights.h5
  pixels.bin         float32 [N,224,224,3] RGB 0..255 (rounded uint8 values), NHWC
  logits.bin         float32 [N,1000] pre-softmax logits (sibling model with classifier_activation=None)
  probs.bin          float32 [N,1000] the softmax model's output
  grad.bin           float32 [224,224,3] d logits[0, top1(0)] / d preprocessed input 0 (torch autograd)
  block3_conv2.bin   vgg16 only: float32 [N,56,56,256] output of block3_conv2 (after its ReLU)
  meta.json          versions, seed, inputs, layer names, top-5, file sha256s, verifying loaders, dataset paths

Every file is proved to be a real Keras file: a fresh keras.applications model loads it (load_weights, or
keras.models.load_model for full.h5 / model.keras) and its predictions must equal the original's bit for bit.
Every check that fails raises SystemExit. Logs go to stderr. Run with the reference venv's python
(scripts/parity-fixtures creates it).
"""
import os

os.environ["KERAS_BACKEND"] = "torch"

import gc, io, math, sys, time, zipfile  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import keras  # noqa: E402
from keras.src.layers.normalization.batch_normalization import BatchNormalization  # noqa: E402
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity_fixtures import write_bin, write_json, sha256  # noqa: E402  (one copy of the fixture writers)

SAMPLES = os.path.join(os.environ.get("VIZLAB_HOME") or os.path.expanduser("~/.cache/vizlab"), "samples")
PHOTOS = ["chelsea.png", "coffee.png"]
OPTIONAL_PHOTOS = ["chicky_512.png"]
# arch -> (keras.applications constructor, keras.applications module holding preprocess_input, seed, mode)
ARCHS = {
    "vgg16": ("VGG16", "vgg16", 16, "caffe"),
    "vgg19": ("VGG19", "vgg19", 19, "caffe"),
    "resnet50": ("ResNet50", "resnet50", 50, "caffe"),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2", 2, "tf"),
}
CAFFE_INPUT_STD = 64.0   # caffe-preprocessed pixels (BGR minus mean, no scaling) have std ~ 64, not ~ 1
KERAS1_VERSION = "1.2.2"
TFKERAS2_VERSION = "2.15.0"
# Keras 3 variable name -> Keras-1 weight-name stem (`<layer>_<stem>_1:0`)
KERAS1_STEM = {"kernel": "W", "bias": "b", "gamma": "gamma", "beta": "beta", "moving_mean": "running_mean",
               "moving_variance": "running_std", "depthwise_kernel": "depthwise_kernel"}


def log(msg):
    print("make_keras_fixtures: " + msg, file=sys.stderr, flush=True)


def fail(msg):
    raise SystemExit("make_keras_fixtures: error: " + msg)


# ------------------------------------------------------------------------------------------------ inputs

def load_pixels():
    """RGB 0..255 as float32 [N,224,224,3]: PIL open, convert("RGB") (alpha dropped, as keras.utils.load_img
    does), resize((224, 224), BILINEAR) (a squash, no crop), uint8 values stored as float."""
    names = list(PHOTOS)
    for p in PHOTOS:
        if not os.path.isfile(os.path.join(SAMPLES, p)):
            fail(f"missing sample photo {os.path.join(SAMPLES, p)} (run scripts/setup)")
    names += [p for p in OPTIONAL_PHOTOS if os.path.isfile(os.path.join(SAMPLES, p))]
    arrs = []
    for n in names:
        im = Image.open(os.path.join(SAMPLES, n)).convert("RGB").resize((224, 224), Image.BILINEAR)
        arrs.append(np.asarray(im, dtype=np.uint8).astype(np.float32))
    return names, np.stack(arrs)


def calibration_pixels(rng, n=8, size=224):
    """n smooth random 'photos' in pixel space: bicubic-upsampled N(0,1) noise at size/8, 127.5 + 64 * noise,
    clipped to 0..255, NHWC float32."""
    x = torch.from_numpy(rng.standard_normal((n, 3, size // 8, size // 8)).astype(np.float32))
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return np.clip(127.5 + 64.0 * x.numpy().transpose(0, 2, 3, 1), 0.0, 255.0).astype(np.float32)


# ------------------------------------------------------------------------------------------------ weights

def random_weights(model, arch, rng):
    """He-normal kernels over the fan-in (Conv2D kh*kw*in, DepthwiseConv2D kh*kw, Dense in), biases N(0,0.05),
    BN gamma U(0.8,1.2) (ResNet's conv*_block*_3_bn: 0.2x), beta and moving_mean N(0,0.05), moving_variance
    U(0.8,1.2). For caffe-preprocessed archs the first conv kernel is also divided by 64 (the input's std), so
    activations start near unit scale (VGG has no BN to absorb it)."""
    first_conv = True
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        name = layer.name
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, _, _ = ws[0].shape
            new = [rng.standard_normal(ws[0].shape, dtype=np.float32) * math.sqrt(2.0 / (kh * kw))]
            new += [rng.standard_normal(w.shape, dtype=np.float32) * 0.05 for w in ws[1:]]
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, _ = ws[0].shape
            std = math.sqrt(2.0 / (kh * kw * cin))
            if first_conv and ARCHS[arch][3] == "caffe":
                std /= CAFFE_INPUT_STD
            first_conv = False
            new = [rng.standard_normal(ws[0].shape, dtype=np.float32) * std]
            new += [rng.standard_normal(w.shape, dtype=np.float32) * 0.05 for w in ws[1:]]
        elif isinstance(layer, keras.layers.Dense):
            new = [rng.standard_normal(ws[0].shape, dtype=np.float32) * math.sqrt(2.0 / ws[0].shape[0]),
                   rng.standard_normal(ws[1].shape, dtype=np.float32) * 0.05]
        elif isinstance(layer, BatchNormalization):
            if len(ws) != 4:
                fail(f"{name}: BN with {len(ws)} weights")
            scale = 0.2 if (arch == "resnet50" and name.endswith("_3_bn")) else 1.0
            c = ws[0].shape
            new = [rng.uniform(0.8 * scale, 1.2 * scale, c).astype(np.float32),
                   (rng.standard_normal(c) * 0.05).astype(np.float32),
                   (rng.standard_normal(c) * 0.05).astype(np.float32),
                   rng.uniform(0.8, 1.2, c).astype(np.float32)]
        else:
            fail(f"{name}: no init rule for {type(layer).__name__} with weights")
        for a, b in zip(ws, new):
            if a.shape != b.shape:
                fail(f"{name}: init shape {b.shape} != {a.shape}")
        layer.set_weights(new)


def center_head(model, x, rng):
    """Classifier-bias calibration: the last layer's (Dense `predictions`) bias becomes -mean(features) @ W +
    N(0,0.05), the mean taken over the calibration images. Post-ReLU features have a large input-independent
    mean, which otherwise puts the same classes on top for every input. Returns max |new bias|."""
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.name != "predictions":
        fail(f"last layer is {head.name} ({type(head).__name__}), want Dense predictions")
    feat = keras.Model(model.inputs, model.layers[-2].output)
    with torch.no_grad():
        f = keras.ops.convert_to_numpy(feat(torch.from_numpy(x), training=False)).astype(np.float64)
    w, b = head.get_weights()
    nb = -(f.mean(0) @ w.astype(np.float64)) + rng.standard_normal(b.shape) * 0.05
    head.set_weights([w, nb.astype(np.float32)])
    return float(np.abs(nb).max())


def calibrate_bn(model, x, rng):
    """Like torch_models.calibrate_bn: every BatchNormalization's moving statistics become those of its own
    input on calibration_pixels (one inference pass in which each BN already uses its new statistics),
    jittered: var = batch var * U(0.8,1.2), mean = batch mean + N(0,0.05) * sqrt(var). Done by patching
    BatchNormalization.call for the one pass. Returns the number of BN layers calibrated."""
    x = torch.from_numpy(x)
    orig = BatchNormalization.call
    seen = []

    def call(self, inputs, training=None, mask=None):
        t = inputs.detach().float()
        axes = tuple(i for i in range(t.ndim) if i != (self.axis % t.ndim))
        var = t.var(dim=axes, unbiased=True).cpu().numpy().astype(np.float64)
        mean = t.mean(dim=axes).cpu().numpy().astype(np.float64)
        var = var * rng.uniform(0.8, 1.2, var.shape)
        mean = mean + rng.standard_normal(var.shape) * 0.05 * np.sqrt(var)
        self.moving_mean.assign(mean.astype(np.float32))
        self.moving_variance.assign(var.astype(np.float32))
        seen.append(self.name)
        return orig(self, inputs, training=False, mask=mask)

    BatchNormalization.call = call
    try:
        with torch.no_grad():
            model(x, training=False)
    finally:
        BatchNormalization.call = orig
    n_bn = sum(isinstance(l, BatchNormalization) for l in model.layers)
    if len(seen) != n_bn or len(set(seen)) != n_bn:
        fail(f"calibration saw {len(seen)} BN calls ({len(set(seen))} distinct), model has {n_bn}")
    return n_bn


# ------------------------------------------------------------------------------------------------ writers

def write_named_h5(path, model, weight_name, keras_version, backend):
    """A legacy weight file (root layer_names/backend/keras_version, one group per layer with weight_names,
    dataset at <layer>/<weight name>), weights in Keras' legacy order (trainable then non-trainable)."""
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_attributes_to_hdf5_group(f, "layer_names", [l.name.encode("utf8") for l in model.layers])
        f.attrs["backend"] = backend.encode("utf8")
        f.attrs["keras_version"] = keras_version.encode("utf8")
        for layer in model.layers:
            g = f.create_group(layer.name)
            ws = layer.trainable_weights + layer.non_trainable_weights
            names = [weight_name(layer, w) for w in ws]
            legacy_h5_format.save_attributes_to_hdf5_group(g, "weight_names", [n.encode("utf8") for n in names])
            for n, w in zip(names, ws):
                g.create_dataset(n, data=np.asarray(keras.ops.convert_to_numpy(w), dtype=np.float32),
                                 track_times=False)  # no timestamps: byte-identical reruns


def keras1_name(layer, w):
    if w.name not in KERAS1_STEM:
        fail(f"{layer.name}: no Keras-1 name for variable {w.name}")
    return f"{layer.name}_{KERAS1_STEM[w.name]}_1:0"


def tfkeras2_name(layer, w):
    return f"{layer.name}/{w.name}:0"


def write_legacy(path, model):
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def dataset_paths(h5obj, limit=3):
    out = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and len(out) < limit:
            out.append(name)
    h5obj.visititems(visit)
    return out


def describe(path):
    """The first dataset paths (h5py's name order) and root attributes/keys of a written file."""
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as z:
            members = z.namelist()
            inner = z.read("model.weights.h5")
        with h5py.File(io.BytesIO(inner), "r") as f:
            return {"zip_members": members, "first_datasets": dataset_paths(f), "root_keys": sorted(f.keys())}
    with h5py.File(path, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else (v if isinstance(v, str) else "<%d values>" % len(v)))
                 for k, v in f.attrs.items() if k != "model_config"}
        if "model_config" in f.attrs:
            attrs["model_config"] = "<json, %d chars>" % len(f.attrs["model_config"])
        d = {"root_keys_first": sorted(f.keys())[:5], "n_root_keys": len(f.keys()), "root_attrs": attrs,
             "first_datasets": dataset_paths(f)}
        if "model_weights" in f:
            d["model_weights_attrs"] = sorted(f["model_weights"].attrs.keys())
        g = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in g.attrs or "layer_names0" in g.attrs:
            # what a reader following layer_names -> weight_names sees first (file order, not h5py's sorted order)
            ordered = []
            for ln in legacy_h5_format.load_attributes_from_hdf5_group(g, "layer_names"):
                for wn in legacy_h5_format.load_attributes_from_hdf5_group(g[ln], "weight_names"):
                    ordered.append(f"{g.name.strip('/') + '/' if g.name != '/' else ''}{ln}/{wn}")
            d["first_weights_in_layer_order"] = ordered[:3]
            d["n_weights"] = len(ordered)
        return d


# ------------------------------------------------------------------------------------------------ per arch

def top5(logits):
    return [[int(j) for j in np.argsort(-row, kind="stable")[:5]] for row in logits]


def preprocessor(arch):
    """The arch's own keras.applications.<module>.preprocess_input on a copy, as a contiguous float32 array."""
    prep_fn = getattr(keras.applications, ARCHS[arch][1]).preprocess_input
    return lambda px: np.ascontiguousarray(prep_fn(np.array(px, dtype=np.float32, copy=True)), dtype=np.float32)


def make_models(arch):
    """The arch's softmax model with its deterministic fixture weights, and the logits sibling
    (classifier_activation=None) with the same weights. Returns (model, sibling, prep, n_bn, max |head bias|)."""
    ctor_name, _, seed, _ = ARCHS[arch]
    ctor = getattr(keras.applications, ctor_name)
    prep = preprocessor(arch)
    # fresh name counters: the layers get the same names whatever was built before (else `input_layer_7` ...)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = ctor(weights=None)
    random_weights(model, arch, rng)
    xcal = prep(calibration_pixels(rng))
    if model.layers[0].name != "input_layer":
        fail(f"{arch}: first layer is {model.layers[0].name}, want input_layer")
    n_bn = calibrate_bn(model, xcal, rng) if any(isinstance(l, BatchNormalization) for l in model.layers) else 0
    head_bias = center_head(model, xcal, rng)
    sib = ctor(weights=None, classifier_activation=None)
    sib.set_weights(model.get_weights())
    return model, sib, prep, n_bn, head_bias


def build_arch(arch, out, names, pixels):
    t0 = time.time()
    ctor_name, mod_name, seed, mode = ARCHS[arch]
    ctor = getattr(keras.applications, ctor_name)
    folder = os.path.join(out, arch)
    os.makedirs(folder)
    model, sib, prep, n_bn, head_bias = make_models(arch)
    x = prep(pixels)
    n = len(names)
    probs = np.asarray(model.predict(x, batch_size=n, verbose=0), dtype=np.float32)
    logits = np.asarray(sib.predict(x, batch_size=n, verbose=0), dtype=np.float32)
    if not (np.isfinite(logits).all() and np.isfinite(probs).all()):
        fail(f"{arch}: non-finite outputs")
    sm = np.exp(logits - logits.max(1, keepdims=True))
    sm /= sm.sum(1, keepdims=True)
    if np.abs(sm - probs).max() > 1e-5:
        fail(f"{arch}: softmax(logits) differs from probs by {np.abs(sm - probs).max()}")
    t5 = top5(logits)
    if any(t5[i] == t5[j] for i in range(n) for j in range(i + 1, n)):
        fail(f"{arch}: two inputs share the same top-5 {t5}: the logits ignore the input")
    spread = float(logits.std(0).mean() / logits.std(1).mean())
    log(f"{arch}: init+calibration ({n_bn} BN, head bias max {head_bias:.3g}) {time.time() - t0:.1f} s, max|logit| {np.abs(logits).max():.4g}, "
        f"std across inputs / across classes {spread:.3f}")
    for nm, t in zip(names, t5):
        log(f"{arch}:   top-5 {nm}: {t}")
    write_bin(os.path.join(folder, "pixels.bin"), pixels)
    write_bin(os.path.join(folder, "logits.bin"), logits)
    write_bin(os.path.join(folder, "probs.bin"), probs)

    # gradient of the top-1 logit of input 0 w.r.t. the preprocessed input 0, through the Keras model
    grad_note = None
    c0 = int(np.argmax(logits[0]))
    try:
        xt = torch.tensor(x[0:1], requires_grad=True)
        o = sib(xt, training=False)
        if int(torch.argmax(o[0])) != c0:
            log(f"{arch}: warning: argmax alone {int(torch.argmax(o[0]))} != batched {c0}")
        o[0, c0].backward()
        grad = xt.grad[0].detach().cpu().numpy().astype(np.float32)
        if not np.isfinite(grad).all() or not np.abs(grad).max() > 0:
            fail(f"{arch}: bad gradient (max |g| {np.abs(grad).max()})")
        write_bin(os.path.join(folder, "grad.bin"), grad)
        grad_note = {"file": "grad.bin", "shape": list(grad.shape), "class": c0, "norm": float(np.linalg.norm(grad))}
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        log(f"{arch}: gradient skipped: {type(e).__name__}: {e}")
        grad_note = {"skipped": f"{type(e).__name__}: {e}"}
    del sib

    extra_files = []
    if arch == "vgg16":
        sub = keras.Model(model.inputs, model.get_layer("block3_conv2").output)
        act = np.asarray(sub.predict(x, batch_size=n, verbose=0), dtype=np.float32)
        if act.shape != (n, 56, 56, 256) or act.min() < 0:
            fail(f"block3_conv2 output {act.shape}, min {act.min()}")
        write_bin(os.path.join(folder, "block3_conv2.bin"), act)
        extra_files.append("block3_conv2.bin")
        del sub

    # ---- the weight files
    t1 = time.time()
    files = {
        "keras1.h5": lambda p: write_named_h5(p, model, keras1_name, KERAS1_VERSION, "tensorflow"),
        "tfkeras2.h5": lambda p: write_named_h5(p, model, tfkeras2_name, TFKERAS2_VERSION, "tensorflow"),
        "legacy.h5": lambda p: write_legacy(p, model),
        "full.h5": lambda p: model.save(p),
        "model.weights.h5": lambda p: model.save_weights(p),
        "model.keras": lambda p: model.save(p),
    }
    file_meta = {}
    for fname, writer in files.items():
        p = os.path.join(folder, fname)
        writer(p)
        # proof: a fresh model (or load_model) reproduces the original's predictions exactly
        loaders = []
        if fname in ("full.h5", "model.keras"):
            m2 = keras.models.load_model(p, compile=False)
            check_same(arch, fname, "keras.models.load_model", m2, x, probs)
            loaders.append("keras.models.load_model(compile=False)")
            del m2
        if fname != "model.keras":
            m2 = ctor(weights=None)
            m2.load_weights(p)
            check_same(arch, fname, "load_weights", m2, x, probs)
            loaders.append(f"keras.applications.{ctor_name}(weights=None).load_weights")
            del m2
        gc.collect()
        d = describe(p)
        file_meta[fname] = {"bytes": os.path.getsize(p), "sha256": sha256(p), "verified_by": loaders,
                            "identical_predictions": True, **d}
        log(f"{arch}: {fname} {os.path.getsize(p) / 1e6:.1f} MB, verified by {', '.join(loaders)}; "
            f"first datasets {d['first_datasets']}")
    for f in ["pixels.bin", "logits.bin", "probs.bin"] + (["grad.bin"] if "file" in grad_note else []) + extra_files:
        file_meta[f] = {"bytes": os.path.getsize(os.path.join(folder, f)),
                        "sha256": sha256(os.path.join(folder, f))}

    meta = {
        "arch": arch, "keras_application": f"keras.applications.{ctor_name}(weights=None)",
        "keras": keras.__version__, "keras_backend": keras.backend.backend(), "h5py": h5py.__version__,
        "torch": torch.__version__, "numpy": np.__version__, "seed": seed, "n": n, "inputs": names,
        "input_size": 224, "preprocess": f"keras.applications.{mod_name}.preprocess_input ({mode})",
        "pixels": "PIL open, convert('RGB') (alpha dropped), resize((224,224), BILINEAR), uint8 -> float32, NHWC RGB 0..255",
        "weights": ("numpy default_rng(seed): He-normal kernels over fan-in (depthwise kh*kw)"
                    + ("; first conv / 64 (caffe input std)" if mode == "caffe" else "")
                    + "; biases N(0,0.05); BN gamma U(0.8,1.2)"
                    + (" (conv*_block*_3_bn 0.2x)" if arch == "resnet50" else "")
                    + "; beta N(0,0.05)"
                    + ("; BN moving stats calibrated on 8 smooth random images (var*U(0.8,1.2), mean+N(0,0.05)*std)"
                       if n_bn else "")
                    + "; predictions bias = -mean(calibration features) @ W + N(0,0.05) (centred head)"),
        "max_abs_head_bias": head_bias,
        "n_bn_calibrated": n_bn,
        "layer_names": [l.name for l in model.layers],
        "weight_layers": [l.name for l in model.layers if l.weights],
        "top5": t5, "top1": [t[0] for t in t5], "max_abs_logit": float(np.abs(logits).max()),
        "logit_spread": spread,
        "shapes": {"pixels": list(pixels.shape), "logits": list(logits.shape), "probs": list(probs.shape)},
        "dtype": "float32 little-endian, C order, no header",
        "logits_from": "keras.applications.<X>(weights=None, classifier_activation=None) with the same weights, "
                       "predict(preprocess_input(pixels)), one batch",
        "grad": grad_note,
        "keras1_naming": "conv/dense <layer>_W_1:0, <layer>_b_1:0; BN <layer>_gamma_1:0, _beta_1:0, _running_mean_1:0, "
                         "_running_std_1:0 (the _running_std slot holds Keras 3's moving_variance, unchanged); "
                         "depthwise <layer>_depthwise_kernel_1:0; datasets directly at <layer>/<weight name>",
        "files": file_meta,
    }
    if arch == "vgg16":
        meta["block3_conv2"] = {"file": "block3_conv2.bin", "shape": [n, 56, 56, 256],
                                "what": "output of layer block3_conv2 (after its ReLU), NHWC, all inputs"}
    write_json(os.path.join(folder, "meta.json"), meta)
    log(f"{arch}: done in {time.time() - t0:.1f} s (files {time.time() - t1:.1f} s)")
    del model
    gc.collect()
    return meta


def check_same(arch, fname, how, m2, x, want):
    got = np.asarray(m2.predict(x, batch_size=x.shape[0], verbose=0), dtype=np.float32)
    if got.shape != want.shape or not np.array_equal(got, want):
        fail(f"{arch}/{fname}: {how}: predictions differ (max |d| "
             f"{np.abs(got - want).max() if got.shape == want.shape else got.shape})")


def main():
    if len(sys.argv) < 2 or any(a not in ARCHS for a in sys.argv[2:]):
        raise SystemExit("usage: make_keras_fixtures.py OUT [ARCH...]   (default: all of %s)" % " ".join(ARCHS))
    out = sys.argv[1]
    archs = sys.argv[2:] or list(ARCHS)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    if keras.backend.backend() != "torch":
        fail(f"Keras backend is {keras.backend.backend()}, want torch")
    names, pixels = load_pixels()
    log(f"keras {keras.__version__} (backend {keras.backend.backend()}), h5py {h5py.__version__}, "
        f"torch {torch.__version__}; inputs {names}")
    t0 = time.time()
    index = {"version": 1, "keras": keras.__version__, "h5py": h5py.__version__, "torch": torch.__version__,
             "archs": archs, "inputs": names, "files": {}}
    for arch in archs:
        build_arch(arch, out, names, pixels)
        for f in sorted(os.listdir(os.path.join(out, arch))):
            index["files"][f"{arch}/{f}"] = os.path.getsize(os.path.join(out, arch, f))
    write_json(os.path.join(out, "index.json"), index)
    log(f"done in {time.time() - t0:.1f} s, {sum(index['files'].values()) / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
