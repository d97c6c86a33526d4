"""Lucent's `render_vis` on EfficientNet-Lite0, timed: the reference for `vizlab channel blocks.8:10` (issue 17's
end-to-end line "512-step `vizlab channel blocks.8:10` ≤ 0.33× Lucent's render_vis on the same model and settings").

    lucent_channel.py WEIGHTS [--layer _blocks_8] [--channel 10] [--steps 512] [--threads 2] [--out PNG]

Same model (the efficientnet-lite-pytorch module with the .pth vizlab reads), the same settings as vizlab's
defaults but for vizlab's total-variation penalty (Lucent's render_vis has none): a 224² FFT image with decorrelated colour (`param.image(224, fft=True, decorrelate=True)`), Lucent's
`standard_transforms` (pad 12, jitter 8, scale 0.90–1.10, rotate −10…10°, jitter 4), Adam lr 0.05, the channel's
mean activation over space. Lucent's `_blocks_8` hooks the output of the module `_blocks.8`, whose forward includes
the residual add: vizlab's `blocks.8`. Lite0's own input normalization ((x − 0.5) / (128/255)) is appended to the
transforms, with `preprocess=False` (Lucent's own preprocessing is torchvision's ImageNet mean/std).

torch-lucent 0.1.8 imports `torchvision.transforms.Normalize` (only that) at import time; torchvision's compiled part
does not load with this machine's torch, so the script registers a stand-in module with the same Normalize before
importing Lucent (and an empty `IPython.display`, which Lucent imports for notebooks). Prints one JSON line: seconds for the render (after one warm-up step), and the final objective.
Install: pip install --no-deps torch-lucent==0.1.8 kornia==0.4.1 tqdm decorator (in the reference venv).
"""
import argparse
import json
import sys
import time
import types

import torch


def install_torchvision_normalize_stub():
    class Normalize(torch.nn.Module):
        def __init__(self, mean, std):
            super().__init__()
            self.mean = torch.tensor(mean).view(-1, 1, 1)
            self.std = torch.tensor(std).view(-1, 1, 1)

        def forward(self, x):
            return (x - self.mean) / self.std

    # lucent.misc.io.showing imports IPython.display for notebooks; nothing here shows an image.
    ipy = types.ModuleType("IPython")
    ipy.display = types.ModuleType("IPython.display")
    sys.modules.setdefault("IPython", ipy)
    sys.modules.setdefault("IPython.display", ipy.display)
    tv = types.ModuleType("torchvision")
    tvt = types.ModuleType("torchvision.transforms")
    tvt.Normalize = Normalize
    tv.transforms = tvt
    sys.modules.setdefault("torchvision", tv)
    sys.modules.setdefault("torchvision.transforms", tvt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--layer", default="_blocks_8")
    ap.add_argument("--channel", type=int, default=10)
    ap.add_argument("--steps", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    install_torchvision_normalize_stub()
    from efficientnet_lite_pytorch import EfficientNet
    from lucent.optvis import param, render, transform

    m = EfficientNet.from_name("efficientnet-lite0")
    m.load_state_dict(torch.load(a.weights, map_location="cpu"))
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)

    def normalize(x):
        return (x - 0.5) / (128 / 255)

    transforms = transform.standard_transforms + [normalize]
    objective = f"{a.layer}:{a.channel}"

    def param_f():
        return param.image(224, fft=True, decorrelate=True)

    # Warm-up (one step), then the timed render.
    render.render_vis(m, objective, param_f, transforms=transforms, thresholds=(1,), show_image=False,
                      progress=False, preprocess=False)
    start = time.perf_counter()
    images = render.render_vis(m, objective, param_f, transforms=transforms, thresholds=(a.steps,),
                               show_image=False, progress=False, preprocess=False)
    seconds = time.perf_counter() - start
    if a.out:
        from PIL import Image
        import numpy as np
        Image.fromarray((np.clip(images[-1][0], 0, 1) * 255).astype("uint8")).save(a.out)
    print(json.dumps({"reference": "lucent", "lucent": "0.1.8", "torch": torch.__version__, "objective": objective,
                      "steps": a.steps, "threads": a.threads, "seconds": round(seconds, 3)}))


if __name__ == "__main__":
    main()
