"""The random affine warp augment.py and tta.py share: rotation, scale, shear and shift drawn
uniformly within the given bounds (shift in grid units, 1 = half the image)."""
import torch
import torch.nn.functional as F


def warp(images, gen, rot, scale, shear, shift):
    """images [m, 1, 28, 28] -> random affine copies"""
    m = len(images)
    u = lambda lo, hi: torch.rand(m, generator=gen) * (hi - lo) + lo
    a, s, sh = u(-rot, rot), u(1 - scale, 1 + scale), u(-shear, shear)
    tx, ty = u(-shift, shift), u(-shift, shift)
    c, si = torch.cos(a), torch.sin(a)
    theta = torch.stack([torch.stack([c / s, (-si + sh) / s, tx], -1), torch.stack([si / s, c / s, ty], -1)], 1)
    grid = F.affine_grid(theta, images.shape, align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
