"""torchvision's VGG16/19, ResNet50 (V1.5) and MobileNetV2 in plain torch.

PyPI torchvision's compiled part does not load with the local torch build, so these re-state the architectures
with torchvision's exact module names and registration order: `state_dict()` keys, their order and shapes equal
torchvision's (`torchvision.models.vgg16()` etc.), and so does the forward pass. `random_init` gives weights whose
logits still depend on the input (plain random weights collapse deep nets to an input-independent output).
"""
import math

import torch
from torch import nn

# ---------------------------------------------------------------------------------------------------- VGG

VGG_CFG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, cfg, num_classes=1000, dropout=0.5):
        super().__init__()
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def vgg16():
    return VGG(VGG_CFG["vgg16"])


def vgg19():
    return VGG(VGG_CFG["vgg19"])

# ---------------------------------------------------------------------------------------------------- ResNet50


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (V1.5: the stride is on the 3x3 conv2)."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, kernel_size=1, stride=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, groups=1, bias=False, dilation=1)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, kernel_size=1, stride=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        for _ in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def resnet50():
    return ResNet((3, 4, 6, 3))

# ---------------------------------------------------------------------------------------------------- MobileNetV2


def _make_divisible(v, divisor=8, min_value=None):
    """torchvision.models._utils._make_divisible (identity on the width-1.0 channel counts)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    """torchvision.ops.misc.Conv2dNormActivation with BN + ReLU6: indices 0 conv (no bias), 1 BN, 2 ReLU6."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1):
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=1, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = self.stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1))
        layers += [
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


MOBILENET_V2_SETTING = [
    # t, c, n, s
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000, dropout=0.2):
        super().__init__()
        input_channel, last_channel = 32, 1280
        features = [Conv2dNormActivation(3, input_channel, stride=2)]
        for t, c, n, s in MOBILENET_V2_SETTING:
            output_channel = _make_divisible(c)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.last_channel = last_channel
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last_channel, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v2():
    return MobileNetV2()


ARCHS = {"vgg16": vgg16, "vgg19": vgg19, "resnet50": resnet50, "mobilenet_v2": mobilenet_v2}

# Expected state-dict sizes (torchvision 0.29, counted with num_batches_tracked).
EXPECTED_KEYS = {"vgg16": 32, "vgg19": 38, "resnet50": 320, "mobilenet_v2": 314}

# ---------------------------------------------------------------------------------------------------- init


@torch.no_grad()
def random_init(model, seed, calibrate=True):
    """Input-sensitive random weights, deterministic in `seed` (own generator; the global RNG is untouched).

    Conv / Linear kernels He-normal over the fan-in (in/groups * kh * kw: depthwise = kh * kw); biases N(0, 0.05);
    BN gamma U(0.8, 1.2) (0.2x that on each ResNet Bottleneck's bn3, so the residual sum stays near unit scale),
    beta and running_mean N(0, 0.05), running_var U(0.8, 1.2); num_batches_tracked stays 0.

    calibrate=True (the default) then replaces the BN running statistics by ones measured on smooth random
    images (see calibrate_bn): with the plain U(0.8, 1.2) variances every channel keeps an input-independent
    offset that global pooling turns into near-constant logits (MobileNetV2: the same top-4 for a cat, a coffee
    cup and a synthetic pattern). Models without BN (VGG) are unaffected. Returns the model in eval mode.
    """
    g = torch.Generator().manual_seed(seed)

    def normal_(t, std):
        t.copy_(torch.randn(t.shape, generator=g) * std)

    def uniform_(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    last_bn = {id(m.bn3) for m in model.modules() if isinstance(m, Bottleneck)}
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
            normal_(m.weight, math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                normal_(m.bias, 0.05)
        elif isinstance(m, nn.Linear):
            normal_(m.weight, math.sqrt(2.0 / m.in_features))
            normal_(m.bias, 0.05)
        elif isinstance(m, nn.BatchNorm2d):
            scale = 0.2 if id(m) in last_bn else 1.0
            uniform_(m.weight, 0.8 * scale, 1.2 * scale)
            normal_(m.bias, 0.05)
            normal_(m.running_mean, 0.05)
            uniform_(m.running_var, 0.8, 1.2)
            m.num_batches_tracked.zero_()
    if calibrate and any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        calibrate_bn(model, g)
    return model.eval()


def calibration_images(g, n=8, size=224):
    """n smooth random images (bicubic-upsampled N(0, 1) noise at size/8), roughly normalized-photo statistics."""
    x = torch.randn(n, 3, size // 8, size // 8, generator=g)
    return nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)


@torch.no_grad()
def calibrate_bn(model, g):
    """Sets every BN's running_mean / running_var from the statistics of its own input on `calibration_images`,
    in one eval-style pass in which each BN already uses its new statistics (so every later layer is calibrated
    to what it will really see), jittered like the plain init: var = batch var x U(0.8, 1.2), mean = batch mean
    + N(0, 0.05) * sqrt(var). num_batches_tracked stays 0.

    Effect on MobileNetV2 (seed 2, the fixture inputs): logits' std across inputs / std across classes 0.06 -> 0.48;
    ~0.06% of ReLU6 inputs pass 6, and removing the clip would move the logits by up to ~13."""

    def forward(bn, x):
        var = x.var(dim=(0, 2, 3), unbiased=True) * (torch.rand(x.shape[1], generator=g) * 0.4 + 0.8)
        mean = x.mean(dim=(0, 2, 3)) + torch.randn(var.shape, generator=g) * 0.05 * var.sqrt()
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        return nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    model.eval()
    for b in bns:
        b.forward = forward.__get__(b)
    try:
        model(calibration_images(g))
    finally:
        for b in bns:
            del b.forward
