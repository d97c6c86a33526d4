#!/usr/bin/env python3
"""Optional: how far float32 itself is from the truth for each fixture, to pick parity tolerances.

    $VIZLAB_HOME/venv-ref/bin/python scripts/reference/noise_floor.py $VIZLAB_HOME/parity/v1

Rebuilds every model from its fixture weights, recomputes logits and gradients in float64 from the same float32
inputs and prints: max |logits.bin - f64 logits|, and per input the relative L2 error and cosine of grad.bin
against the f64 gradient. A ReLU network's input gradient is piecewise constant: units whose pre-activation sits
within rounding of 0 (or of 6 for ReLU6) flip between implementations, so gradient errors of 1e-3..1e-2 (relative
L2) are float32's floor, not a bug. (~1-2 min: float64 VGG is slow.)
"""
import json, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def load(folder, arch):
    if arch.startswith("lite"):
        from efficientnet_lite_pytorch import EfficientNet
        model = EfficientNet.from_name("efficientnet-" + arch)
    else:
        model = torch_models.ARCHS[arch]()
    model.load_state_dict(torch.load(os.path.join(folder, "weights.pth"), map_location="cpu", weights_only=True))
    return model.eval().double()


def main():
    out = sys.argv[1]
    torch.set_num_threads(2)
    for arch in json.load(open(os.path.join(out, "index.json")))["archs"]:
        folder = os.path.join(out, arch)
        meta = json.load(open(os.path.join(folder, "meta.json")))
        n, s = meta["n"], meta["input_size"]
        x = np.fromfile(os.path.join(folder, "inputs.bin"), "<f4").reshape(n, 3, s, s)
        l32 = np.fromfile(os.path.join(folder, "logits.bin"), "<f4").reshape(n, -1).astype(np.float64)
        g32 = np.fromfile(os.path.join(folder, "grad.bin"), "<f4").reshape(n, 3, s, s).astype(np.float64)
        model = load(folder, arch)
        x64 = torch.from_numpy(x).double()
        with torch.no_grad():
            l64 = model(x64).numpy()
        parts = [f"{arch}: logits max|f32-f64| {np.abs(l32 - l64).max():.2e} (max|logit| {np.abs(l64).max():.3g})"]
        for i, c in enumerate(meta["grad_classes"]):
            xi = x64[i:i + 1].clone().requires_grad_(True)
            model(xi)[0, c].backward()
            g64 = xi.grad[0].numpy()
            rel = np.linalg.norm(g32[i] - g64) / np.linalg.norm(g64)
            cos = float((g32[i] * g64).sum() / (np.linalg.norm(g32[i]) * np.linalg.norm(g64)))
            parts.append(f"grad[{i}] rel-L2 {rel:.1e} cos {cos:.6f} |g| {np.linalg.norm(g64):.3g}")
        print("; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
