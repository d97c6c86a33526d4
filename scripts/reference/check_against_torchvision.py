#!/usr/bin/env python3
"""Optional cross-check of torch_models.py against torchvision's own model code (not needed by the fixtures).

    pip download --no-deps torchvision -d /tmp/tv && unzip -q /tmp/tv/torchvision-*.whl -d /tmp/tv/site
    $VIZLAB_HOME/venv-ref/bin/python scripts/reference/check_against_torchvision.py /tmp/tv/site

PyPI torchvision's compiled ops do not load with the local torch; its pure-Python model definitions do once
torchvision._meta_registrations (meta kernels for those ops) is stubbed out. For each architecture: the
state-dict keys, their order, shapes and dtypes must be identical, and torchvision's model loaded with our
random_init state dict must give the same logits on the same input (max abs diff printed; 0 expected).
"""
import os, sys, types

import torch

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "/tmp/tv/site")
sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
import torchvision  # noqa: E402
from torchvision import models as tvm  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402

torch.set_num_threads(2)
ok = True
for arch, build in torch_models.ARCHS.items():
    ours = torch_models.random_init(build(), 1)
    theirs = getattr(tvm, arch)().eval()
    a, b = ours.state_dict(), theirs.state_dict()
    same = list(a) == list(b) and all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)
    theirs.load_state_dict(a, strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (ours(x) - theirs(x)).abs().max().item()
    print(f"{arch}: torchvision {torchvision.__version__}: {len(a)} keys, keys/order/shapes "
          f"{'identical' if same else 'DIFFER'}, max |logit diff| {diff:g}")
    ok &= same and diff == 0.0
sys.exit(0 if ok else 1)
