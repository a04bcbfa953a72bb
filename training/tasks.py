"""N-way K-shot task sampling from in-memory uint8 images, and the inner loop's mini-batch order."""

import numpy as np


class TaskSampler:
    """Samples tasks from uint8 images [classes, drawings, C, H, W]."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def sample(self, rng: np.random.Generator, tasks: int, ways: int, shots: int):
        """-> images uint8 [tasks, ways, shots, ...], class ids [tasks, ways]."""
        num_classes, num_drawings = self.images.shape[:2]
        classes = np.argsort(rng.random((tasks, num_classes)), axis=1)[:, :ways]
        drawings = np.argsort(rng.random((tasks, ways, num_drawings)), axis=2)[:, :, :shots]
        return self.images[classes[:, :, None], drawings], classes


def with_rotations(images: np.ndarray) -> np.ndarray:
    """[C, D, H, W] -> [4C, D, H, W]: each class rotated by 0/90/180/270 degrees as its own class."""
    rotated = np.stack([np.rot90(images, k, axes=(-2, -1)) for k in range(4)], axis=1)
    return np.ascontiguousarray(rotated.reshape(-1, *images.shape[1:]))


def to_tensor(images: np.ndarray, dtype=None):
    """uint8 images -> float tensor in [0, 1] (ink = 1), float32 unless `dtype` says otherwise."""
    import torch  # here, not at the top: evaluate-bundle samples tasks without torch

    return torch.from_numpy(np.ascontiguousarray(images)).to(dtype or torch.float32).div_(255.0)


def flatten_task(images: np.ndarray):
    """[tasks, ways, shots, ...] -> images [tasks, ways*shots, ...], labels int64 [tasks, ways*shots]."""
    tasks, ways, shots = images.shape[:3]
    labels = np.tile(np.repeat(np.arange(ways), shots), (tasks, 1))  # writable, also for one task
    return images.reshape(tasks, ways * shots, *images.shape[3:]), labels


def minibatch_order(
    rng: np.random.Generator,
    tasks: int,
    samples: int,
    batch: int,
    iters: int,
    separate_final: bool = False,
    replacement: bool = False,
) -> np.ndarray:
    """[iters, tasks, batch] indices: each task walks through fresh shuffles of its samples,
    batch after batch, as the reference's sampling without replacement does.

    replacement: each batch is instead `batch` distinct samples drawn afresh, as the reference's
    --replacement does (random.sample per batch): no sample twice within a batch, any sample in
    any number of batches.

    separate_final: the last batch (FOMAML's and MAML's final batch) is `batch` samples that no
    earlier batch uses, set aside by a first shuffle; the other iters - 1 batches are drawn from
    the rest. The reference's --foml-tail N sets aside N samples of each class instead: a batch the
    size of the others keeps the separate and shared variants apart by the overlap alone."""
    draw = _draws if replacement else _walk
    if not separate_final:
        return draw(rng, np.broadcast_to(np.arange(samples), (tasks, samples)), batch, iters)
    if samples <= batch:
        raise ValueError(f"a separate final batch of {batch} leaves none of the {samples} samples for the inner loop")
    shuffled = np.argsort(rng.random((tasks, samples)), axis=1)
    rest = draw(rng, shuffled[:, batch:], batch, iters - 1)
    return np.concatenate([rest, shuffled[None, :, :batch]])


def _walk(rng: np.random.Generator, pool: np.ndarray, batch: int, iters: int) -> np.ndarray:
    """[iters, tasks, batch] entries of pool [tasks, m]: fresh shuffles of each task's row, in batches."""
    tasks, samples = pool.shape
    epochs = -(-batch * iters // samples)
    keys = rng.random((tasks, epochs, samples))
    picks = np.argsort(keys, axis=2).reshape(tasks, epochs * samples)[:, : batch * iters]
    order = np.take_along_axis(pool, picks, axis=1)
    return np.ascontiguousarray(order.reshape(tasks, iters, batch).transpose(1, 0, 2))


def _draws(rng: np.random.Generator, pool: np.ndarray, batch: int, iters: int) -> np.ndarray:
    """[iters, tasks, batch] entries of pool [tasks, m]: each batch `batch` distinct entries of its
    task's row, drawn independently of the other batches."""
    tasks, samples = pool.shape
    if batch > samples:
        raise ValueError(f"a mini-batch of {batch} drawn with replacement needs {batch} samples, not {samples}")
    picks = np.argsort(rng.random((iters, tasks, samples)), axis=2)[:, :, :batch]
    return np.take_along_axis(np.broadcast_to(pool, (iters, tasks, samples)), picks, axis=2)
