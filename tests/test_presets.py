"""The presets (training/presets.py) against their sources: each plain name is the paper's final
command from the reference README (openai/supervised-reptile), each `-v1` name the command of the
paper's first arXiv version, which the runs kept in checkpoints/ and models/ recorded as trained,
and each `ablation-` name one of that README's runs comparing inner-loop gradient combinations."""

import json
import shlex

import numpy as np
import pytest
from helpers import ROOT

from training.presets import PRESETS, Config

# The reference README's "commands used for the paper", less `--checkpoint DIR`.
PAPER_COMMANDS = {
    "omniglot-5w1s": "run_omniglot.py --shots 1 --inner-batch 10 --inner-iters 5 --meta-step 1 --meta-batch 5 "
    "--meta-iters 100000 --eval-batch 5 --eval-iters 50 --learning-rate 0.001 --meta-step-final 0 --train-shots 10",
    "omniglot-5w1s-transductive": "run_omniglot.py --shots 1 --inner-batch 10 --inner-iters 5 --meta-step 1 "
    "--meta-batch 5 --meta-iters 100000 --eval-batch 5 --eval-iters 50 --learning-rate 0.001 --meta-step-final 0 "
    "--train-shots 10 --transductive",
    "omniglot-5w5s": "run_omniglot.py --train-shots 10 --inner-batch 10 --inner-iters 5 --learning-rate 0.001 "
    "--meta-step 1 --meta-step-final 0 --meta-batch 5 --meta-iters 100000 --eval-batch 5 --eval-iters 50",
    "omniglot-20w1s": "run_omniglot.py --shots 1 --classes 20 --inner-batch 20 --inner-iters 10 --meta-step 1 "
    "--meta-batch 5 --meta-iters 200000 --eval-batch 10 --eval-iters 50 --learning-rate 0.0005 --meta-step-final 0 "
    "--train-shots 10",
    "omniglot-20w5s": "run_omniglot.py --classes 20 --inner-batch 20 --inner-iters 10 --meta-step 1 --meta-batch 5 "
    "--meta-iters 200000 --eval-batch 10 --eval-iters 50 --learning-rate 0.0005 --meta-step-final 0 --train-shots 10",
    "miniimagenet-5w1s": "run_miniimagenet.py --shots 1 --inner-batch 10 --inner-iters 8 --meta-step 1 "
    "--meta-batch 5 --meta-iters 100000 --eval-batch 5 --eval-iters 50 --learning-rate 0.001 --meta-step-final 0 "
    "--train-shots 15",
    "miniimagenet-5w1s-transductive": "run_miniimagenet.py --shots 1 --inner-batch 10 --inner-iters 8 --meta-step 1 "
    "--meta-batch 5 --meta-iters 100000 --eval-batch 5 --eval-iters 50 --learning-rate 0.001 --meta-step-final 0 "
    "--train-shots 15 --transductive",
    "miniimagenet-5w5s": "run_miniimagenet.py --inner-batch 10 --inner-iters 8 --meta-step 1 --meta-batch 5 "
    "--meta-iters 100000 --eval-batch 15 --eval-iters 50 --learning-rate 0.001 --meta-step-final 0 --train-shots 15",
}

# flag -> (Config field, type); --shots and --classes default to 5 in the reference's parser.
FLAGS = {
    "--shots": ("shots", int),
    "--classes": ("ways", int),
    "--train-shots": ("train_shots", int),
    "--inner-batch": ("inner_batch", int),
    "--inner-iters": ("inner_iters", int),
    "--learning-rate": ("lr", float),
    "--meta-step": ("meta_step", float),
    "--meta-step-final": ("meta_step_final", float),
    "--meta-batch": ("meta_batch", int),
    "--meta-iters": ("meta_iters", int),
    "--eval-batch": ("eval_batch", int),
    "--eval-iters": ("eval_iters", int),
}
# The reference's models: 64 filters for Omniglot, 32 for Mini-ImageNet.
SCRIPTS = {
    "run_omniglot.py": {"dataset": "omniglot", "filters": 64},
    "run_miniimagenet.py": {"dataset": "miniimagenet", "filters": 32},
}


# Flags without a value, and the field each sets.
SWITCHES = {
    "--transductive": ("transductive", True),
    "--sgd": ("inner_optimizer", "sgd"),
    "--foml": ("algorithm", "fomaml"),  # the last gradient only: FOMAML with the shared final batch
}
# The ablation commands' other flags; --eval-interval N as the tasks a split gets each iteration (1 / N).
RUN_FLAGS = {"--seed": ("seed", int), "--eval-interval": ("eval_tasks_per_iteration", lambda n: 1 / int(n))}


def reference_fields(command: str, defaults: dict | None = None) -> dict:
    """The Config fields a reference command sets, over `defaults` (an unknown flag fails the test)."""
    script, *tokens = shlex.split(command)
    values = {**SCRIPTS[script], "shots": 5, "ways": 5, "transductive": False, **(defaults or {})}
    while tokens:
        flag = tokens.pop(0)
        if flag in SWITCHES:
            name, value = SWITCHES[flag]
            values[name] = value
            continue
        name, kind = {**FLAGS, **RUN_FLAGS}[flag]
        values[name] = kind(tokens.pop(0))
    return values


@pytest.mark.parametrize("name", sorted(PAPER_COMMANDS))
def test_plain_preset_is_the_papers_final_command(name):
    expected = reference_fields(PAPER_COMMANDS[name])
    assert set(expected) == {field for field, _ in FLAGS.values()} | {"dataset", "filters", "transductive"}
    actual = {k: v for k, v in PRESETS[name].to_dict().items() if k in expected}
    assert actual == expected


def test_every_paper_preset_keeps_its_first_version():
    assert {f"{name}-v1" for name in PAPER_COMMANDS} <= set(PRESETS)


def training_config(bundle: str) -> dict:
    """The training config a bundle's model.json records."""
    return json.loads((ROOT / bundle / "model.json").read_text())["provenance"]["training_config"]


def recorded_configs() -> list[tuple[str, dict]]:
    """(preset, training config) of every kept run and bundle, by the preset it was trained with."""
    kept = ["omniglot-5w1s", "omniglot-5w1s-transductive", "omniglot-20w1s", "omniglot-20w5s"]  # less "-v1"
    runs = [
        (f"{name}-v1", json.loads((ROOT / "checkpoints" / name / "config.json").read_text())["config"]) for name in kept
    ]
    return [
        *runs,
        ("omniglot-5w5s-v1", training_config("models/omniglot-5w")),
        ("omniglot-5w5s-v1", {**training_config("models/omniglot-5w-small"), "filters": 64}),  # --filters 32
        ("omniglot-20w1s-v1", training_config("static/models/omniglot-20w")),
    ]


def test_first_version_presets_reproduce_the_kept_runs_and_bundles():
    recorded = recorded_configs()
    assert len(recorded) == 7
    for name, config in recorded:
        assert Config.from_dict(config).algorithm_fields() == PRESETS[name].algorithm_fields(), name


def test_the_paper_run_kept_in_progress_uses_the_final_preset():
    """checkpoints/omniglot-5w1s-paper: the paper's final 5-way 1-shot command, resumed across sessions."""
    path = ROOT / "checkpoints" / "omniglot-5w1s-paper" / "config.json"
    if not path.is_file():
        pytest.skip("no paper run kept")
    config = Config.from_dict(json.loads(path.read_text())["config"])
    assert config.algorithm_fields() == PRESETS["omniglot-5w1s"].algorithm_fields()


# The reference README's "Comparing different inner-loop gradient combinations": its shared flags and
# each run's own, by the preset named after the run's checkpoint (less `--checkpoint DIR | tee LOG`).
ABLATION_SHARED = (
    "--sgd --seed 0 --inner-batch 25 --learning-rate 0.003 --meta-step-final 0 --meta-iters 40000 "
    "--eval-batch 25 --eval-iters 5 --eval-interval 1"
)
ABLATION_COMMANDS = {
    "ablation-g1": "--inner-iters 1 --train-shots 5 --meta-step 0.25",
    "ablation-g1-g2": "--inner-iters 2 --train-shots 10 --meta-step 0.25",
    "ablation-half-g1-g2": "--inner-iters 2 --train-shots 10 --meta-step 0.125",
    "ablation-g2": "--foml --inner-iters 2 --train-shots 10 --meta-step 0.25",
    "ablation-g1-g2-g3": "--inner-iters 3 --train-shots 15 --meta-step 0.25",
    "ablation-third-g1-g2-g3": "--inner-iters 3 --train-shots 15 --meta-step 0.08325",
    "ablation-g3": "--foml --inner-iters 3 --train-shots 15 --meta-step 0.25",
    "ablation-g4": "--foml --inner-iters 4 --train-shots 20 --meta-step 0.25",
    "ablation-g1-g2-g3-g4": "--inner-iters 4 --train-shots 20 --meta-step 0.25",
    "ablation-fourth-g1-g2-g3-g4": "--inner-iters 4 --train-shots 20 --meta-step 0.0625",
}
# The reference parser's defaults the commands keep (its args.py): meta-batch 1, Adam off only with --sgd.
REFERENCE_DEFAULTS = {"meta_batch": 1, "algorithm": "reptile", "final_batch": "shared", "inner_optimizer": "adam"}


def reference_ablation_fields(flags: str) -> dict:
    """The Config fields a reference ablation command sets, which eval_tasks / eval_interval must match."""
    return reference_fields(f"run_omniglot.py {flags} {ABLATION_SHARED}", REFERENCE_DEFAULTS)


@pytest.mark.parametrize("name", sorted(ABLATION_COMMANDS))
def test_ablation_preset_is_the_reference_run(name):
    expected = reference_ablation_fields(ABLATION_COMMANDS[name])
    config = PRESETS[name]
    actual = {k: v for k, v in config.to_dict().items() if k in expected}
    actual["eval_tasks_per_iteration"] = config.eval_tasks / config.eval_interval
    assert actual == expected
    assert config.replacement is False and config.carry_adam_state  # neither matters to SGD without --replacement


@pytest.mark.parametrize("name", sorted(ABLATION_COMMANDS))
def test_ablation_inner_batches_never_overlap(name):
    """k batches of 25 walk once through the task's 5 x 5k examples: the last gradient's batch is
    disjoint from the others, so FOMAML's shared final batch is the reference's --foml batch."""
    from training.tasks import minibatch_order

    config = PRESETS[name]
    examples = config.ways * config.train_shots
    assert config.inner_batch * config.inner_iters == examples
    order = minibatch_order(np.random.default_rng(0), 20, examples, config.inner_batch, config.inner_iters)
    for task in range(20):
        assert sorted(order[:, task].ravel().tolist()) == list(range(examples))


def test_an_old_config_resumes_with_adam_and_without_replacement():
    """A config.json written before the options existed reads as the runs it recorded: Adam, no replacement."""
    old = {k: v for k, v in PRESETS["omniglot-5w1s"].to_dict().items() if k not in ("inner_optimizer", "replacement")}
    config = Config.from_dict(old)
    assert config.inner_optimizer == "adam" and config.replacement is False
    assert config.algorithm_fields() == PRESETS["omniglot-5w1s"].algorithm_fields()
