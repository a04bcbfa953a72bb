"""The paper's experiments (hyperparameters from the reference code's README) as presets."""

from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class Config:
    dataset: str = "omniglot"
    ways: int = 5
    shots: int = 1  # evaluation shots
    train_shots: int = 10  # shots per class in a meta-training task
    inner_batch: int = 10
    inner_iters: int = 5
    lr: float = 0.001  # inner Adam step size
    meta_step: float = 1.0  # annealed linearly to meta_step_final
    meta_step_final: float = 0.0
    meta_batch: int = 5
    meta_iters: int = 100_000
    eval_batch: int = 5
    eval_iters: int = 50
    transductive: bool = False
    algorithm: str = "reptile"  # reptile | fomaml
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

PRESETS = {
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
