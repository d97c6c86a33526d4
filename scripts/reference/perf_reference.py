"""PyTorch and ONNX Runtime timings of a network vizlab benchmarks, for scripts/bench/side-by-side.

usage: perf_reference.py MODEL WEIGHTS --threads N --runs R [--passes forward,backward,ort] [--onnx-cache DIR]

MODEL: lite0 | vgg16 | resnet50 | mobilenet_v2; WEIGHTS: the .pth file vizlab reads too (the same numbers).
Batch 1 at the model's input size. Each figure is the median of R timed runs after 3 warm-ups (seconds):
  forward            torch.no_grad() forward
  forward+backward   forward, then d logit[281] / d input (parameters frozen: no weight gradients, as in vizlab)
  pgd                20-step targeted PGD L∞ (ε = 4/255, step 1/255) on a [0,1] image through the model's own
                     normalization: torchattacks.PGD's loop (random start, sign step, projection, clamp) re-stated in
                     plain torch (torchattacks imports torchvision, whose compiled part does not load with this torch)
  ort forward        onnxruntime InferenceSession of torch.onnx.export of the same module (opset 17, all graph
                     optimizations, intra_op_num_threads=N, inter_op 1, sequential execution)
Prints one JSON object on stdout.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def build(model, weights):
    if model == "lite0":
        from efficientnet_lite_pytorch import EfficientNet
        m = EfficientNet.from_name("efficientnet-lite0")
        size = int(m.input_image_size)
    else:
        import torch_models
        m = torch_models.ARCHS[model]()
        size = 224
    sd = torch.load(weights, map_location="cpu", weights_only=True)
    m.load_state_dict(sd, strict=True)
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m, size


def median_time(fn, runs):
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2], times[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("weights")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--passes", default="forward,backward,ort,pgd")
    ap.add_argument("--onnx-cache", default=None, help="folder for the exported .onnx (reused when present)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m, size = build(a.model, a.weights)
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32))
    passes = a.passes.split(",")
    out = {"model": a.model, "threads": a.threads, "runs": a.runs, "size": size, "torch": torch.__version__}

    if "forward" in passes:
        def fwd():
            with torch.no_grad():
                m(x)
        out["torch_forward"] = median_time(fwd, a.runs)

    if "backward" in passes:
        def fwd_bwd():
            xi = x.clone().requires_grad_(True)
            m(xi)[0, 281].backward()
            assert xi.grad is not None
        out["torch_forward_backward"] = median_time(fwd_bwd, a.runs)

    if "pgd" in passes:
        target = torch.tensor([281])
        mean = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1) if a.model == "lite0" else torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([128 / 255] * 3).view(1, 3, 1, 1) if a.model == "lite0" else torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        image = torch.from_numpy(np.random.default_rng(1).uniform(40 / 255, 215 / 255, (1, 3, size, size)).astype(np.float32))
        eps, alpha, steps = 4 / 255, 1 / 255, 20
        loss_fn = torch.nn.CrossEntropyLoss()

        def pgd():
            adv = (image + torch.empty_like(image).uniform_(-eps, eps)).clamp(0, 1).detach()
            for _ in range(steps):
                adv.requires_grad_(True)
                cost = -loss_fn(m((adv - mean) / std), target)
                grad, = torch.autograd.grad(cost, adv)
                adv = adv.detach() + alpha * grad.sign()
                adv = (image + (adv - image).clamp(-eps, eps)).clamp(0, 1).detach()
            with torch.no_grad():
                m((adv - mean) / std)
        out["torch_pgd20"] = median_time(pgd, max(3, a.runs // 4))

    if "ort" in passes:
        import onnxruntime as ort
        cache = a.onnx_cache or os.path.join(os.path.expanduser("~/.cache/vizlab"), "perf-onnx")
        os.makedirs(cache, exist_ok=True)
        st = os.stat(a.weights)
        path = os.path.join(cache, f"{a.model}-{st.st_size}-{int(st.st_mtime)}.onnx")
        if not os.path.isfile(path):
            tmp = path + ".partial"
            torch.onnx.export(m, (x,), tmp, opset_version=17, input_names=["input"], output_names=["logits"],
                              dynamo=False)
            os.replace(tmp, path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        xn = x.numpy()
        with torch.no_grad():
            ref = m(x).numpy()
        got = sess.run(None, {"input": xn})[0]
        out["ort_max_abs_diff_vs_torch"] = float(np.abs(got - ref).max())
        out["ort_forward"] = median_time(lambda: sess.run(None, {"input": xn}), a.runs)
        out["onnxruntime"] = ort.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
