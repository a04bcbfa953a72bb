"""Open-set tasks adapted in torch, many at once: what the "none of these" score is fitted and studied on.

Each task: N characters with K drawings each as the support set, and N + 2 queries: one more drawing
of every in-set character, one drawing of an (N+1)-th character of the same split (*novel*), and one
random *scribble* (SCRIBBLE, rendered with the demo's pen by tools/strokes.py and preprocessed by
preprocessing/ like a drawing on the page). The model is the checkpoint behind a bundle, adapted as
the bundle's model.json says (its steps, lr and eps, full-batch TF-style Adam from the carried
state, the head for N classes built by the head rule), in torch over many tasks at once
(training/reptile.py); each query is then predicted in one batch with the support set, as the
bundle's non-transductive prediction does.

Splits: "test" (the bundle's held-out characters, test_classes.txt), "train" (the characters
meta-training saw) and "mirrored" (those mirrored left to right: shapes meta-training never saw).
"""

from pathlib import Path

import numpy as np

# A scribble: 1-3 random-walk strokes of 15-49 steps, each step 0.03-0.07 of the drawing area long,
# the heading turning by a normal 0.9 rad a step, starting in the middle 60 %, kept inside 5 % margins.
SCRIBBLE = dict(strokes=(1, 4), steps=(15, 50), step=(0.03, 0.07), turn=0.9, start=(0.2, 0.8), margin=0.05)
SPLITS = ("train", "test", "mirrored")
# The open-set score's bank of reference drawings (bundle/open_set.py): the first drawing of each of
# REFERENCES training characters drawn with REFERENCE_SEED (60 measured in docs/results.md, "Open-set").
REFERENCES, REFERENCE_SEED = 60, 1234
REFERENCE_CHOICE = f"chosen by numpy's default_rng({REFERENCE_SEED}), tools/open_set_tasks.py reference_bank"


def scribble_strokes(rng: np.random.Generator) -> list:
    """A random scribble in web/js/strokes.js's packed form (per stroke x, y, t integers)."""
    from tools.strokes import SCALE

    s = SCRIBBLE
    strokes = []
    for _ in range(int(rng.integers(*s["strokes"]))):
        steps, length = int(rng.integers(*s["steps"])), rng.uniform(*s["step"])
        point, heading = rng.uniform(*s["start"], 2), rng.uniform(0, 2 * np.pi)
        points = [point]
        for _ in range(steps):
            heading += rng.normal(0, s["turn"])
            point = np.clip(point + length * np.array([np.cos(heading), np.sin(heading)]), s["margin"], 1 - s["margin"])
            points.append(point)
        strokes.append([int(round(v)) for i, (x, y) in enumerate(points) for v in (x * SCALE, y * SCALE, 10 * i)])
    return strokes


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A random scribble's 28 x 28 model input (float32), drawn with the demo's pen."""
    from preprocessing import to_model_input
    from tools.strokes import render

    return to_model_input(render(scribble_strokes(rng)))


def embed(spec, params, images, batches: int = 1):
    """training/model.py's forward, also returning every block's output -> ([h [n, G*F, H, W] per block],
    features before the head [G, n, D], logits [G, n, C])."""
    import torch

    from training.model import conv_block

    groups, n = images.shape[:2]
    h = images.transpose(0, 1).reshape(n, groups * images.shape[2], *images.shape[3:])
    blocks = []
    for layer in range(spec.layers):
        weight, scale, shift = params[3 * layer : 3 * layer + 3]
        h = conv_block(
            spec, h, weight.reshape(-1, *weight.shape[2:]), scale.reshape(-1), shift.reshape(-1), groups, batches
        )
        blocks.append(h)
    features = h.reshape(n, groups, -1).transpose(0, 1)
    return blocks, features, torch.einsum("gnd,gcd->gnc", features, params[-2]) + params[-1][:, None, :]


def query_batches(support, queries):
    """[n + 1, q, ...]: column j is the support set followed by query j (rows interleaved as in
    training/evaluate.py predict_queries)."""
    import torch

    q = len(queries)
    return torch.cat([support.unsqueeze(1).expand(-1, q, *support.shape[1:]), queries.unsqueeze(0)])


def character_images(bundle, data_dir: Path, seed: int) -> dict:
    """{split: uint8 [characters, 20, 1, 28, 28]} for SPLITS, the split made with `seed`; ValueError when
    its held-out characters are not the bundle's test_classes.txt."""
    from training.omniglot import load_omniglot

    omniglot = load_omniglot(data_dir, download_missing=False)
    train, test = omniglot.split(seed)
    names = (bundle.path / bundle.manifest["test_classes"]["file"]).read_text().split()
    if names != [omniglot.names[i] for i in test]:
        raise ValueError(f"the split with seed {seed} is not {bundle.path}'s test_classes.txt")
    images = omniglot.images[:, :, None]
    return {
        "train": images[train],
        "test": images[test],
        "mirrored": np.ascontiguousarray(images[train][..., ::-1]),  # never meta-trained on
    }


def draw_chunks(images: np.ndarray, split: str, ways: int, shots: int, count: int, seed: int):
    """Draw `count` tasks from `split`'s images, some at a time -> yields (drawn uint8 [g, N + 1, K + 1, ...]:
    N in-set characters and the novel one, K support drawings and a query each; scribbles float32
    [g, 1, 1, 28, 28], model inputs already in [0, 1]). The same arguments draw the same tasks."""
    from training.evaluate import CPU_TASKS_AT_ONCE
    from training.tasks import TaskSampler

    sampler = TaskSampler(images)
    rng = np.random.default_rng([seed, SPLITS.index(split), ways, shots])
    for start in range(0, count, CPU_TASKS_AT_ONCE):
        g = min(CPU_TASKS_AT_ONCE, count - start)
        drawn, _ = sampler.sample(rng, g, ways + 1, shots + 1)
        yield drawn, np.stack([scribble(rng) for _ in range(g)])[:, None, None]


def open_set_figures(probabilities: np.ndarray, scores: np.ndarray, flags: np.ndarray, ways: int) -> dict:
    """AUROC, flag rates (with the 95 % interval's half-width), in-set accuracy and ECE of some tasks:
    probabilities [tasks, N + 2, N], unknown scores and flags [tasks, N + 2] (in-set, novel, scribble)."""
    from tools.calibration import auroc, reliability

    inset, novel, scribbles = scores[:, :ways].ravel(), scores[:, ways], scores[:, ways + 1]
    in_probabilities = probabilities[:, :ways].reshape(-1, ways)
    correct = in_probabilities.argmax(-1) == np.tile(np.arange(ways), len(probabilities))
    kinds = {"inset": flags[:, :ways], "novel": flags[:, ways], "scribble": flags[:, ways + 1]}
    flagged = {k: float(v.mean()) for k, v in kinds.items()}
    return {
        "tasks": len(probabilities),
        "auroc_novel": auroc(inset, novel),
        "auroc_scribble": auroc(inset, scribbles),
        "flagged": flagged,
        "flagged_ci95": {k: float(1.96 * np.sqrt(flagged[k] * (1 - flagged[k]) / v.size)) for k, v in kinds.items()},
        "accuracy": float(correct.mean()),
        "ece": reliability(in_probabilities.max(-1), correct)["ece"],
    }


class OpenSetTasks:
    """A checkpoint, the bundle exported from it (its adaptation settings) and the character splits."""

    def __init__(self, checkpoint: Path, bundle_dir: Path, data_dir: Path):
        from bundle import load_bundle
        from training.checkpoint import load_trained
        from training.reptile import InnerAdam

        _, config, self.spec, self.state = load_trained(checkpoint)
        self.bundle = load_bundle(bundle_dir, threads=1)
        weights, _ = self.bundle.initial_state(self.bundle.trained_ways)
        for name, param in zip(self.bundle.param_names, self.state.params, strict=True):
            if not np.array_equal(weights[name], param.numpy()):
                raise ValueError(f"{checkpoint} is not the checkpoint of {bundle_dir}: {name} differs")
        self.defaults = self.bundle.defaults
        if self.defaults["optimizer"] != "adam" or self.bundle.adam_t != self.state.adam_t:
            raise ValueError("open-set tasks reproduce full-batch Adam from the carried state only")
        self.adam = InnerAdam(lr=self.defaults["lr"], eps=self.defaults["eps"])
        self.images = character_images(self.bundle, data_dir, config.seed)

    def head(self, tensors: list, ways: int) -> list:
        """The head rule (bundle/format.py build_head) on torch tensors: rows i mod trained_ways."""
        rows = [i % self.spec.ways for i in range(ways)]
        return tensors[:-2] + [tensors[-2][rows], tensors[-1][rows]]

    def adapted(self, split: str, ways: int, shots: int, count: int, seed: int):
        """Adapt `count` tasks, some at a time -> yields (meta params, adapted params [g, ...],
        support [g, N*K, ...], labels [g, N*K], queries [g, N + 2, ...]); query N is the novel
        character, N + 1 the scribble. The same arguments draw the same tasks."""
        import torch

        from training.reptile import grouped, inner_loop
        from training.tasks import flatten_task, to_tensor

        meta = self.head([p.detach() for p in self.state.params], ways)
        adam_v = self.head(list(self.state.adam_v), ways)
        for drawn, scribbles in draw_chunks(self.images[split], split, ways, shots, count, seed):
            g = len(drawn)
            support, labels = flatten_task(drawn[:, :ways, :shots])
            queries = torch.cat(
                [to_tensor(drawn[:, :ways, shots]), to_tensor(drawn[:, ways, :1]), torch.from_numpy(scribbles)], 1
            )
            support, labels = to_tensor(support), torch.from_numpy(labels)
            steps = self.defaults["steps"]
            order = np.ascontiguousarray(np.broadcast_to(np.arange(support.shape[1]), (steps, g, support.shape[1])))
            params, _, _ = inner_loop(
                self.spec, self.adam, grouped(meta, g), grouped(adam_v, g), self.state.adam_t, support, labels, order
            )
            yield meta, params, support, labels, queries

    def reference_bank(self, count: int = REFERENCES) -> np.ndarray:
        """uint8 [count, 1, 28, 28]: the open-set bank, the first drawing of `count` training characters."""
        train = self.images["train"]
        return np.ascontiguousarray(
            train[np.random.default_rng(REFERENCE_SEED).choice(len(train), count, replace=False), 0]
        )

    def score_inputs(self, params, task: int, support, labels, queries, ways: int, bank=None) -> tuple:
        """The product's open-set score inputs (bundle/open_set.py) of one adapted task's queries, each in
        one batch with the support set -> (inputs float64 [q, 1 + 2L], or [q, 1 + 4L] with the bank
        (model inputs [R, 1, 28, 28], predicted in one batch with the support set), logits float64 [q, N])."""
        import torch

        from bundle.open_set import reference_statistics, score_inputs

        q, n = len(queries), len(support)
        reference = None
        if bank is not None:
            with torch.no_grad():
                blocks, _, _ = embed(self.spec, [p[task : task + 1] for p in params], torch.cat([support, bank])[None])
            features = torch.cat([h.reshape(n + len(bank), -1) for h in blocks], -1).double().numpy()
            reference = reference_statistics(features, labels.numpy(), ways, [list(h.shape[1:]) for h in blocks])
        batches = query_batches(support, queries).reshape(1, -1, *support.shape[1:])
        with torch.no_grad():
            blocks, _, logits = embed(self.spec, [p[task : task + 1] for p in params], batches, batches=q)
        flat = [h.reshape(n + 1, q, -1).transpose(0, 1) for h in blocks]  # [q, n + 1, F*H*W] each
        features = torch.cat(flat, -1).double().numpy()
        logits = logits[0].reshape(n + 1, q, -1)[-1].double()
        probabilities = logits.softmax(-1).numpy()
        blocks_shape = [list(h.shape[1:]) for h in blocks]
        inputs = score_inputs(features, probabilities, labels.numpy(), ways, blocks_shape, reference)
        return inputs, logits.numpy()
