"""The single model and its backward written in ops that ONNX has and onnxruntime runs fast.

The train-step graphs are traced from these functions (training/onnx_graphs.py): torch.func's
grad_and_value of the summed cross-entropy, under make_fx with the core ATen decompositions plus
hand-written ones of aten.convolution_backward (ONNX has no such op) and aten.threshold_backward,
and InnerAdam's update written out of place with lr, t and eps as tensors.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .model import ModelSpec, conv_block

ADAM_BETA2 = 0.999  # InnerAdam's default; meta-training never changes it
ADAM_EPS = 1e-8

aten = torch.ops.aten


def single_forward(spec: ModelSpec, params, images: torch.Tensor, with_blocks: bool = False):
    """One model (no group axis): params as from init_params, images [B, C, H, W] -> logits [B, classes]
    (with_blocks: and every conv block's output flattened and concatenated, [B, sum of block sizes]).

    training/model.py's layers (conv_block) without its group axis: its grouped forward with G = 1
    traces into ~80 extra reshape/squeeze nodes, which cost onnxruntime more time per step than the
    arithmetic they wrap (tests/test_export.py checks the two agree)."""
    h, blocks = images, []
    for layer in range(spec.layers):
        h = conv_block(spec, h, *params[3 * layer : 3 * layer + 3])
        blocks.append(h.reshape(h.shape[0], -1))
    logits = blocks[-1] @ params[-2].t() + params[-1]
    return (logits, torch.cat(blocks, dim=1)) if with_blocks else logits


def single_loss(spec: ModelSpec, params, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the batch (as training minimises it) -> scalar."""
    return F.cross_entropy(single_forward(spec, params, images), labels, reduction="sum")


def convolution_backward(
    grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed, output_padding, groups, output_mask
):
    """aten.convolution_backward as ops onnxruntime runs well (ONNX has no convolution-backward op).

    input grad: the transposed convolution of grad_output with the same weight (output_padding makes
    it land on the input's size). weight grad: one matrix product of grad_output [Cout, B*Ho*Wo] with
    the input's patches [Cin*k*k, B*Ho*Wo], the patches cut by a depthwise convolution with one-hot
    kernels. (A convolution over the batch with batch and channel axes swapped, as autograd does it,
    is the same sum, but onnxruntime runs it as one small product per input channel, over a dilated
    kernel wider than the weight.) bias grad: a sum (our convolutions have none)."""
    if transposed or groups != 1:
        raise NotImplementedError("only plain (groups=1, not transposed) convolutions are decomposed")
    grad_input = grad_weight = grad_bias = None
    kernel = weight.shape[2:]
    if output_mask[0]:
        extra = [
            input.shape[2 + i]
            - ((grad_output.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel[i] - 1) + 1)
            for i in range(len(kernel))
        ]
        grad_input = aten.convolution(grad_output, weight, None, stride, padding, dilation, True, extra, groups)
    if output_mask[1]:
        out_channels, in_channels = weight.shape[:2]
        taps = int(np.prod(kernel))
        one_hot = torch.eye(taps, dtype=input.dtype).reshape(taps, 1, *kernel).repeat(in_channels, 1, 1, 1)
        patches = aten.convolution(
            input, one_hot, None, stride, padding, dilation, False, [0] * len(kernel), in_channels
        )  # [B, Cin*k*k, Ho, Wo], channel ci*k*k + tap
        rows = patches.permute(0, 2, 3, 1).reshape(-1, in_channels * taps)
        grad_weight = aten.mm(grad_output.transpose(0, 1).reshape(out_channels, -1), rows).reshape(weight.shape)
    if output_mask[2]:
        grad_bias = grad_output.sum([0] + list(range(2, grad_output.dim())))
    return grad_input, grad_weight, grad_bias


def threshold_backward(grad_output, output, threshold):
    """ReLU's backward as a product with the mask: the core decomposition's Where (with a broadcast
    scalar) is onnxruntime's slowest elementwise kernel here."""
    return grad_output * (output > threshold).to(grad_output.dtype)


def decompositions() -> dict:
    """The table make_fx traces the graphs with: the core ATen decompositions plus the two above."""
    table = dict(torch._decomp.core_aten_decompositions())
    table[aten.convolution_backward.default] = convolution_backward
    table[aten.threshold_backward.default] = threshold_backward
    return table


def adam_update(params, grads, v, lr, t, eps, beta2: float = ADAM_BETA2):
    """training.reptile.InnerAdam.step, out of place, with lr/t/eps as tensors (same operation order):
    v <- beta2 v + (1 - beta2) g^2;  theta <- theta - lr sqrt(1 - beta2^t) g / (sqrt(v) + eps).
    The step size lr sqrt(1 - beta2^t) is computed in float64, as InnerAdam computes it in Python."""
    step = (lr.double() * torch.sqrt(1.0 - torch.pow(beta2, t.double()))).float()
    new_v = [x * beta2 + (1.0 - beta2) * g * g for x, g in zip(v, grads, strict=False)]
    new_params = [p + (-step * g) / (torch.sqrt(x) + eps) for p, g, x in zip(params, grads, new_v, strict=False)]
    return new_params, new_v
