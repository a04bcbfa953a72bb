"""The Reptile paper's CNN, written functionally over a *group* of independent models.

Parameters are a flat list of tensors; every tensor has a leading group axis G, so one call
runs G models (one per task) through the same kernels: the convolutions are grouped
convolutions with G groups, and BatchNorm over the [n, G*F, H, W] layout computes batch
statistics per task and channel, exactly as G separate models would. G = 1 is the plain model.
"""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

BN_EPS = 1e-3  # TensorFlow's default, as in the reference code


@dataclass(frozen=True)
class ModelSpec:
    ways: int = 5
    filters: int = 64
    layers: int = 4
    channels: int = 1
    image_size: int = 28
    max_pool: bool = False  # Mini-ImageNet variant: stride-1 convs, each followed by a 2x2 max-pool

    def block_shapes(self) -> list:
        """Each conv block's output shape for one image: [filters, side, side]."""
        shapes, side = [], self.image_size
        for _ in range(self.layers):
            side = (side + 1) // 2  # stride 2 with padding 1, or a ceil-mode 2x2 pool
            shapes.append([self.filters, side, side])
        return shapes

    def feature_size(self) -> int:
        filters, side, _ = self.block_shapes()[-1]
        return filters * side * side

    def to_dict(self) -> dict:
        return asdict(self)

    def param_names(self) -> list:
        names = []
        for layer in range(self.layers):
            names += [f"conv{layer}.weight", f"bn{layer}.weight", f"bn{layer}.bias"]
        return names + ["fc.weight", "fc.bias"]


PRESET_MODELS = {
    "omniglot": dict(filters=64, channels=1, image_size=28, max_pool=False),
    "miniimagenet": dict(filters=32, channels=3, image_size=84, max_pool=True),
}


def init_params(spec: ModelSpec, generator: torch.Generator, dtype=torch.float32) -> list:
    """One model's parameters (no group axis): Glorot-uniform weights, BN scale 1 / shift 0."""

    def glorot(shape, fan_in, fan_out):
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1).mul_(bound).to(dtype)

    params = []
    in_channels = spec.channels
    for _ in range(spec.layers):
        params.append(glorot((spec.filters, in_channels, 3, 3), in_channels * 9, spec.filters * 9))
        params.append(torch.ones(spec.filters, dtype=dtype))
        params.append(torch.zeros(spec.filters, dtype=dtype))
        in_channels = spec.filters
    features = spec.feature_size()
    params.append(glorot((spec.ways, features), features, spec.ways))
    params.append(torch.zeros(spec.ways, dtype=dtype))
    return params


def conv_block(
    spec: ModelSpec, h: torch.Tensor, weight, scale, shift, groups: int = 1, batches: int = 1
) -> torch.Tensor:
    """One layer: conv 3x3 (no bias), BatchNorm with batch statistics, [max-pool,] ReLU. h [n, G*C, H, W],
    weight [G*F, C, 3, 3], scale and shift [G*F]. Also the exported single model's layer (G = 1).

    batches > 1: the n rows are that many independent batches interleaved (row i * batches + j is
    image i of batch j), each with its own statistics, so batches sharing weights share the convolution."""
    h = F.conv2d(h, weight, stride=1 if spec.max_pool else 2, padding=1, groups=groups)
    if batches == 1:  # training and the exported graphs: no reshape or repeated scale in the hot path
        h = F.batch_norm(h, None, None, scale, shift, training=True, eps=BN_EPS)
    else:  # [n, F, ...] viewed as [n / batches, batches * F, ...]: statistics per batch and channel
        shape = h.shape
        h = F.batch_norm(
            h.reshape(shape[0] // batches, batches * shape[1], *shape[2:]),
            None,
            None,
            scale.repeat(batches),
            shift.repeat(batches),
            training=True,
            eps=BN_EPS,
        ).reshape(shape)
    if spec.max_pool:
        h = F.max_pool2d(h, 2, ceil_mode=True)
    return F.relu(h)


def forward(spec: ModelSpec, params: list, images: torch.Tensor, batches: int = 1) -> torch.Tensor:
    """params with group axis G, images [G, n, C, H, W] -> logits [G, n, ways]. batches > 1: each
    group's n images are that many interleaved batches with their own BatchNorm statistics (conv_block)."""
    groups, n = images.shape[:2]
    h = images.transpose(0, 1).reshape(n, groups * images.shape[2], *images.shape[3:])
    for layer in range(spec.layers):
        weight, scale, shift = params[3 * layer : 3 * layer + 3]
        h = conv_block(
            spec, h, weight.reshape(-1, *weight.shape[2:]), scale.reshape(-1), shift.reshape(-1), groups, batches
        )
    features = h.reshape(n, groups, -1)
    fc_weight, fc_bias = params[-2:]
    return torch.einsum("ngd,gcd->gnc", features, fc_weight) + fc_bias[:, None, :]


def task_losses(spec: ModelSpec, params: list, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over each group's examples -> [G] (the reference minimises the sum)."""
    logits = forward(spec, params, images)
    per_example = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    return per_example.reshape(labels.shape).sum(dim=1)
