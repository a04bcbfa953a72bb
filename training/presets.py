"""The paper's experiments as presets, hyperparameters from the reference code's README
(openai/supervised-reptile).

The plain names (`omniglot-5w1s`, ..., `miniimagenet-5w5s`) are the paper's final commands, those
the reference README lists as "the commands used for the paper". The same names with `-v1`
(`omniglot-5w1s-v1`, ...) are the commands of the paper's first arXiv version, which that README
listed before June 2018: a hyperparameter search's results; the runs kept in checkpoints/ were
trained with them and did well (docs/results.md). The `ablation-` names are the README's runs
comparing inner-loop gradient combinations (plain SGD). tests/test_presets.py pins all three.
`SINE_PRESETS` holds the paper's sine-wave toy (`SineConfig`, run by `python -m training sine`).
"""

from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class Config:
    dataset: str = "omniglot"
    ways: int = 5
    shots: int = 1  # evaluation shots
    train_shots: int = 10  # shots per class in a meta-training task
    inner_batch: int = 10
    inner_iters: int = 5
    lr: float = 0.001  # inner step size
    inner_optimizer: str = "adam"  # adam (TensorFlow-style, beta1 = 0) | sgd (plain, the reference's --sgd)
    meta_step: float = 1.0  # annealed linearly to meta_step_final
    meta_step_final: float = 0.0
    meta_batch: int = 5
    meta_iters: int = 100_000
    eval_batch: int = 5
    eval_iters: int = 50
    transductive: bool = False
    algorithm: str = "reptile"  # reptile | fomaml | maml (second order, training/maml.py)
    final_batch: str = "shared"  # fomaml/maml: meta-gradient on the last inner batch, or on a separate one
    replacement: bool = False  # each inner mini-batch drawn afresh (the reference's --replacement)
    carry_adam_state: bool = True  # the reference code's behaviour; False = a fresh Adam per task
    batched: bool = True  # all tasks of a meta-batch through grouped kernels; False = the plain per-task loop
    sequential_adam_state: bool = False  # per-task loop only: pass the Adam state task to task (reference)
    filters: int = 64
    seed: int = 0
    eval_interval: int = 1000  # meta-iterations between live train/test accuracy estimates
    eval_tasks: int = 100  # tasks per live estimate
    checkpoint_interval: int = 1000

    def to_dict(self) -> dict:
        return asdict(self)

    def algorithm_fields(self) -> dict:
        """Everything that decides the trained weights (what a resumed run may not change)."""
        return {k: v for k, v in asdict(self).items() if k not in OPERATIONAL_FIELDS}

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def updated(self, **changes) -> "Config":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# How often to log, estimate accuracy and checkpoint: free to change when resuming.
OPERATIONAL_FIELDS = ("eval_interval", "eval_tasks", "checkpoint_interval")

_OMNIGLOT = dict(dataset="omniglot", filters=64)
_MINI = dict(dataset="miniimagenet", filters=32)

# The paper's final commands: the reference README's "commands used for the paper" (every one sets
# --meta-step-final 0, the Config default): 50 evaluation steps throughout, Adam lr 0.001 (0.0005 at 20-way).
_PAPER = {
    "omniglot-5w1s": Config(
        **_OMNIGLOT,
        ways=5,
        shots=1,
        train_shots=10,
        inner_batch=10,
        inner_iters=5,
        lr=0.001,
        meta_step=1.0,
        meta_batch=5,
        meta_iters=100_000,
        eval_batch=5,
        eval_iters=50,
    ),
    "omniglot-5w1s-transductive": Config(
        **_OMNIGLOT,
        ways=5,
        shots=1,
        train_shots=10,
        inner_batch=10,
        inner_iters=5,
        lr=0.001,
        meta_step=1.0,
        meta_batch=5,
        meta_iters=100_000,
        eval_batch=5,
        eval_iters=50,
        transductive=True,
    ),
    "omniglot-5w5s": Config(
        **_OMNIGLOT,
        ways=5,
        shots=5,
        train_shots=10,
        inner_batch=10,
        inner_iters=5,
        lr=0.001,
        meta_step=1.0,
        meta_batch=5,
        meta_iters=100_000,
        eval_batch=5,
        eval_iters=50,
    ),
    "omniglot-20w1s": Config(
        **_OMNIGLOT,
        ways=20,
        shots=1,
        train_shots=10,
        inner_batch=20,
        inner_iters=10,
        lr=0.0005,
        meta_step=1.0,
        meta_batch=5,
        meta_iters=200_000,
        eval_batch=10,
        eval_iters=50,
    ),
    "omniglot-20w5s": Config(
        **_OMNIGLOT,
        ways=20,
        shots=5,
        train_shots=10,
        inner_batch=20,
        inner_iters=10,
        lr=0.0005,
        meta_step=1.0,
        meta_batch=5,
        meta_iters=200_000,
        eval_batch=10,
        eval_iters=50,
    ),
    "miniimagenet-5w1s": Config(
        **_MINI,
        ways=5,
        shots=1,
        train_shots=15,
        inner_batch=10,
        inner_iters=8,
        lr=0.001,
        meta_step=1.0,
        meta_batch=5,
        meta_iters=100_000,
        eval_batch=5,
        eval_iters=50,
    ),
    "miniimagenet-5w1s-transductive": Config(
        **_MINI,
        ways=5,
        shots=1,
        train_shots=15,
        inner_batch=10,
        inner_iters=8,
        lr=0.001,
        meta_step=1.0,
        meta_batch=5,
        meta_iters=100_000,
        eval_batch=5,
        eval_iters=50,
        transductive=True,
    ),
    "miniimagenet-5w5s": Config(
        **_MINI,
        ways=5,
        shots=5,
        train_shots=15,
        inner_batch=10,
        inner_iters=8,
        lr=0.001,
        meta_step=1.0,
        meta_batch=5,
        meta_iters=100_000,
        eval_batch=15,
        eval_iters=50,
    ),
}

# The commands of the paper's first arXiv version (the reference README before June 2018): a
# hyperparameter search's results, tuned per experiment. The runs kept in checkpoints/ and the
# 5-way bundles in models/ were trained with these, and did well (docs/results.md).
_FIRST_VERSION = {
    "omniglot-5w1s": Config(
        **_OMNIGLOT,
        ways=5,
        shots=1,
        train_shots=12,
        inner_batch=5,
        inner_iters=12,
        lr=0.00044,
        meta_step=1.0,
        meta_batch=3,
        meta_iters=200_000,
        eval_batch=5,
        eval_iters=86,
    ),
    "omniglot-5w1s-transductive": Config(
        **_OMNIGLOT,
        ways=5,
        shots=1,
        train_shots=15,
        inner_batch=25,
        inner_iters=3,
        lr=0.001,
        meta_step=1.0,
        meta_batch=10,
        meta_iters=100_000,
        eval_batch=25,
        eval_iters=5,
        transductive=True,
    ),
    "omniglot-5w5s": Config(
        **_OMNIGLOT,
        ways=5,
        shots=5,
        train_shots=10,
        inner_batch=10,
        inner_iters=5,
        lr=0.0015,
        meta_step=0.7,
        meta_batch=5,
        meta_iters=100_000,
        eval_batch=6,
        eval_iters=100,
    ),
    "omniglot-20w1s": Config(
        **_OMNIGLOT,
        ways=20,
        shots=1,
        train_shots=9,
        inner_batch=15,
        inner_iters=12,
        lr=0.00046,
        meta_step=1.0,
        meta_batch=3,
        meta_iters=200_000,
        eval_batch=10,
        eval_iters=97,
    ),
    "omniglot-20w5s": Config(
        **_OMNIGLOT,
        ways=20,
        shots=5,
        train_shots=12,
        inner_batch=20,
        inner_iters=12,
        lr=0.00046,
        meta_step=1.0,
        meta_batch=3,
        meta_iters=200_000,
        eval_batch=10,
        eval_iters=97,
    ),
    "miniimagenet-5w1s": Config(
        **_MINI,
        ways=5,
        shots=1,
        train_shots=12,
        inner_batch=3,
        inner_iters=19,
        lr=0.0012,
        meta_step=0.235,
        meta_batch=2,
        meta_iters=200_000,
        eval_batch=3,
        eval_iters=55,
    ),
    "miniimagenet-5w1s-transductive": Config(
        **_MINI,
        ways=5,
        shots=1,
        train_shots=15,
        inner_batch=5,
        inner_iters=15,
        lr=0.001,
        meta_step=1.0,
        meta_batch=10,
        meta_iters=100_000,
        eval_batch=5,
        eval_iters=10,
        transductive=True,
    ),
    "miniimagenet-5w5s": Config(
        **_MINI,
        ways=5,
        shots=5,
        train_shots=15,
        inner_batch=10,
        inner_iters=8,
        lr=0.00022,
        meta_step=1.0,
        meta_batch=5,
        meta_iters=200_000,
        eval_batch=15,
        eval_iters=88,
    ),
}

# The paper's ablation of inner-loop gradient combinations: the reference README's "Comparing
# different inner-loop gradient combinations" runs, named after their checkpoints (g1_g2_ckpt ->
# ablation-g1-g2). Plain SGD; k inner steps on 5k training shots a class in batches of 25, so the k
# batches go through the task's examples once and never overlap; `reptile` sums all k steps
# (g1 + ... + gk, scaled by the meta step: 0.25, or 0.25 / k for half_, third_, fourth_) and
# `fomaml` with the shared final batch is the reference's --foml, the last gradient gk only. The
# reference parser's defaults fill the rest: 5-way, evaluated 5-shot, meta-batch 1. Its
# --eval-interval 1 (one task a split every iteration) becomes 100 tasks every 100 iterations: as
# many evaluation tasks, batched (eval_interval and eval_tasks do not change the weights).
_ABLATION = dict(
    **_OMNIGLOT,
    ways=5,
    shots=5,
    inner_optimizer="sgd",
    seed=0,
    inner_batch=25,
    lr=0.003,
    meta_step_final=0.0,
    meta_batch=1,
    meta_iters=40_000,
    eval_batch=25,
    eval_iters=5,
    eval_interval=100,
    eval_tasks=100,
)
ABLATION_PRESETS = {
    "ablation-g1": Config(**_ABLATION, inner_iters=1, train_shots=5, meta_step=0.25),
    "ablation-g1-g2": Config(**_ABLATION, inner_iters=2, train_shots=10, meta_step=0.25),
    "ablation-half-g1-g2": Config(**_ABLATION, inner_iters=2, train_shots=10, meta_step=0.125),
    "ablation-g2": Config(**_ABLATION, algorithm="fomaml", inner_iters=2, train_shots=10, meta_step=0.25),
    "ablation-g1-g2-g3": Config(**_ABLATION, inner_iters=3, train_shots=15, meta_step=0.25),
    "ablation-third-g1-g2-g3": Config(**_ABLATION, inner_iters=3, train_shots=15, meta_step=0.08325),
    "ablation-g3": Config(**_ABLATION, algorithm="fomaml", inner_iters=3, train_shots=15, meta_step=0.25),
    "ablation-g4": Config(**_ABLATION, algorithm="fomaml", inner_iters=4, train_shots=20, meta_step=0.25),
    "ablation-g1-g2-g3-g4": Config(**_ABLATION, inner_iters=4, train_shots=20, meta_step=0.25),
    "ablation-fourth-g1-g2-g3-g4": Config(**_ABLATION, inner_iters=4, train_shots=20, meta_step=0.0625),
}

PRESETS = {**_PAPER, **{f"{name}-v1": config for name, config in _FIRST_VERSION.items()}, **ABLATION_PRESETS}


@dataclass(frozen=True)
class SineConfig:
    """The paper's sine-wave toy (Nichol et al. 2018, section 5.1 "Few-shot regression" and the figure
    comparing MAML and Reptile on it): what `python -m training sine` trains and evaluates
    (training/sine.py). Where a value comes from is said beside it; "the demo" is the sine-wave demo
    published with the paper (OpenAI's blog post links it: reptile-sinewaves-demo.py)."""

    amplitude_min: float = 0.1  # paper and demo: A ~ U[0.1, 5]
    amplitude_max: float = 5.0
    phase_max: float = 6.283185307179586  # paper and demo: phase ~ U[0, 2 pi]
    x_max: float = 5.0  # paper and demo: x in [-5, 5]
    hidden: int = 64  # paper's figure: an MLP 1 -> 64 -> 64 -> 1; tanh as in the demo (the paper's was ReLU)
    points: int = 50  # demo: 50 points a training task (its fixed grid; here drawn from U[-5, 5]), one epoch ...
    inner_batch: int = 10  # ... in mini-batches of 10 (demo's ntrain): 5 SGD steps a task
    inner_epochs: int = 1  # demo's innerepochs
    inner_lr: float = 0.02  # demo's innerstepsize: plain SGD on the mean squared error
    meta_step: float = 0.1  # demo's outerstepsize0, annealed linearly ...
    meta_step_final: float = 0.0  # ... to 0 over the run (demo)
    meta_iters: int = 30_000  # demo's niterations: one task a meta-iteration
    joint_lr: float = 0.02  # joint training: the same SGD steps on the same tasks, lr annealed like the meta step
    eval_shots: tuple = (5, 10)  # paper's figure: fit on 10 points (and 5, a harder setting)
    eval_steps: tuple = (1, 10, 32)  # paper's figure: 32 gradient steps, plotted along the way
    eval_lr: float = 0.02  # demo: the same SGD step size at test time, full batch of the K points
    eval_grid: int = 50  # the loss of a fit: mean squared error on 50 equally spaced x in [-5, 5] (demo's x_all)
    eval_tasks: int = 1000
    eval_seed: int = 1  # held-out waves: another seed than training's
    seed: int = 0  # the random initialization (all three starts begin at it) and the training tasks

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def training_fields(self) -> dict:
        """Everything that decides the trained starts (the rest is how they are evaluated)."""
        return {k: v for k, v in self.to_dict().items() if not k.startswith("eval_")}

    @classmethod
    def from_dict(cls, values: dict) -> "SineConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})

    def updated(self, **changes) -> "SineConfig":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


SINE_PRESETS = {"sine": SineConfig()}
