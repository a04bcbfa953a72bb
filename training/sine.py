"""The paper's sine-wave toy: Reptile, joint training and a random start on 1-D regression.

A task is a wave y = A sin(x + phase); training/presets.py `SineConfig` says where each range and
step size comes from. The network is 1 -> 64 -> 64 -> 1 with tanh, written functionally over a list
of tensors (weights [out, in], as nn.Linear's), so the same `forward` runs one network or, with a
leading task axis on every tensor, one network per task (the evaluation adapts 1,000 copies at once).

Three starts, all beginning at one random initialization (nn.Linear's default, as the demo's):
  meta-learned  Reptile. Each meta-iteration draws a wave and 50 points, takes one epoch of plain SGD
                in mini-batches of 10 (5 steps) from phi to phi', then phi <- phi + eps (phi' - phi),
                eps annealed linearly from 0.1 to 0.
  joint         the same waves, points and mini-batches, the SGD steps never undone (lr annealed like
                eps): SGD on the expected loss over all waves. The phases cancel, so its minimiser
                predicts about 0 everywhere, the paper's point about this baseline.
  random        the initialization itself.
Evaluation (`evaluate`): held-out waves (another seed), K points each, full-batch SGD from each start;
the loss of a fit is the mean squared error on 50 equally spaced x in [-5, 5].
"""

import io
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from bundle.card import evaluation_table
from bundle.files import write_atomic

from .presets import SineConfig
from .run_folder import machine, progress_bar

CHECKPOINT_NAME = "sine.pt"
EVALUATION_NAME = "evaluation.json"
STARTS = ("meta-learned", "joint", "random")  # the weight sets of the bundle, in this order


# ---------------------------------------------------------------------------------------- the network
def param_names() -> list:
    """The parameters' names, in order (the bundle's graphs take them as inputs in this order)."""
    return ["hidden0.weight", "hidden0.bias", "hidden1.weight", "hidden1.bias", "out.weight", "out.bias"]


def param_shapes(hidden: int) -> list:
    """The parameters' shapes for a 1 -> hidden -> hidden -> 1 network."""
    return [[hidden, 1], [hidden], [hidden, hidden], [hidden], [1, hidden], [1]]


def init_params(hidden: int, seed: int) -> list:
    """nn.Linear's default initialization: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    generator = torch.Generator().manual_seed(seed)
    params = []
    for shape in param_shapes(hidden)[::2]:
        bound = 1.0 / math.sqrt(shape[1])
        params.append((torch.rand(shape, generator=generator) * 2 - 1) * bound)
        params.append((torch.rand(shape[0], generator=generator) * 2 - 1) * bound)
    return params


def forward(params: list, x: torch.Tensor) -> torch.Tensor:
    """x [N, 1] -> y [N, 1]; with a task axis on x and every parameter, [T, N, 1] -> [T, N, 1]."""
    h = x
    for i in range(0, len(params) - 2, 2):
        h = torch.tanh(h @ params[i].transpose(-1, -2) + params[i + 1].unsqueeze(-2))
    return h @ params[-2].transpose(-1, -2) + params[-1].unsqueeze(-2)


def mse(params: list, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean squared error over the points: a scalar, or [T] with a task axis."""
    return ((forward(params, x) - y) ** 2).mean(dim=(-2, -1))


def sgd_step(params: list, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple:
    """One plain SGD step on the mean squared error -> (new params, the loss before the step).
    With a task axis every task takes its own step (the loss summed over tasks has their gradients)."""
    params = [p.detach().requires_grad_() for p in params]
    loss = mse(params, x, y)
    grads = torch.autograd.grad(loss.sum(), params)
    return [p.detach() - lr * g for p, g in zip(params, grads, strict=True)], loss.detach()


# ---------------------------------------------------------------------------------------- the tasks
def sample_waves(rng: np.random.Generator, count: int, config: SineConfig) -> tuple:
    """-> (amplitude [count], phase [count]), float64."""
    amplitude = rng.uniform(config.amplitude_min, config.amplitude_max, size=count)
    phase = rng.uniform(0.0, config.phase_max, size=count)
    return amplitude, phase


def sample_x(rng: np.random.Generator, shape: tuple, config: SineConfig) -> np.ndarray:
    """x ~ U[-x_max, x_max], float64 [*shape, 1]."""
    return rng.uniform(-config.x_max, config.x_max, size=(*shape, 1))


def phase_text(config: SineConfig) -> str:
    """The phase's upper bound in words, e.g. "2π"."""
    return f"{config.phase_max / math.pi:.4g}π"


def wave(amplitude: np.ndarray, phase: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A sin(x + phase) for waves [T] at x [T, N, 1] (or x [N, 1], the same for every wave) -> [T, N, 1]."""
    return amplitude[:, None, None] * np.sin(x + phase[:, None, None])


def training_stream(config: SineConfig) -> tuple:
    """Every meta-iteration's points and SGD mini-batches, drawn once from the run's seed so that Reptile
    and joint training see the very same ones -> (x [I, P, 1], y [I, P, 1], order [I, E * P]) float32 /
    int64: iteration i visits x[i, order[i]] in slices of inner_batch."""
    rng = np.random.default_rng(config.seed)
    iters, points = config.meta_iters, config.points
    amplitude, phase = sample_waves(rng, iters, config)
    x = sample_x(rng, (iters, points), config)
    y = wave(amplitude, phase, x)
    order = rng.permuted(np.tile(np.arange(points), (iters * config.inner_epochs, 1)), axis=1)
    order = order.reshape(iters, config.inner_epochs * points)
    return torch.from_numpy(x).float(), torch.from_numpy(y).float(), torch.from_numpy(order)


# ---------------------------------------------------------------------------------------- training
def annealed(start: float, final: float, iteration: int, iters: int) -> float:
    """Linear annealing from start to final, as the demo's (frac_done = iteration / iters)."""
    done = iteration / iters
    return done * final + (1 - done) * start


def train_start(config: SineConfig, kind: str, stream: tuple, show_progress: bool = False) -> list:
    """The meta-learned (kind "meta-learned", Reptile) or jointly trained ("joint") start, from the
    run's random initialization along `stream` (training_stream)."""
    if kind not in ("meta-learned", "joint"):
        raise ValueError(f"unknown start {kind!r}")
    x, y, order = stream
    phi = init_params(config.hidden, config.seed)
    bar = progress_bar(config.meta_iters, 0, kind, "it") if show_progress else None
    for i in range(config.meta_iters):
        theta = phi
        lr = config.inner_lr if kind == "meta-learned" else annealed(config.joint_lr, 0.0, i, config.meta_iters)
        for start in range(0, order.shape[1], config.inner_batch):
            batch = order[i, start : start + config.inner_batch]
            theta, _ = sgd_step(theta, x[i, batch], y[i, batch], lr)
        if kind == "meta-learned":
            eps = annealed(config.meta_step, config.meta_step_final, i, config.meta_iters)
            theta = [p + eps * (t - p) for p, t in zip(phi, theta, strict=True)]
        phi = theta
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return phi


# ---------------------------------------------------------------------------------------- evaluation
def held_out_waves(config: SineConfig) -> dict:
    """The evaluation's waves (seed eval_seed): their K = max(eval_shots) points (x, y [T, K, 1]) and their
    values on the grid (grid [G, 1], grid_y [T, G, 1]), float32 tensors."""
    rng = np.random.default_rng(config.eval_seed)
    amplitude, phase = sample_waves(rng, config.eval_tasks, config)
    x = sample_x(rng, (config.eval_tasks, max(config.eval_shots)), config)
    grid = np.linspace(-config.x_max, config.x_max, config.eval_grid)[:, None]
    return {
        "x": torch.from_numpy(x).float(),
        "y": torch.from_numpy(wave(amplitude, phase, x)).float(),
        "grid": torch.from_numpy(grid).float(),
        "grid_y": torch.from_numpy(wave(amplitude, phase, grid)).float(),
    }


def adapted_losses(params: list, waves: dict, shots: int, steps: tuple, lr: float) -> dict:
    """One start adapted to every wave by full-batch SGD on its first `shots` points -> {step count: the
    grid loss of every wave (float64 [T])} for 0 and each of `steps`."""
    tasks = len(waves["x"])
    task_params = [p.expand(tasks, *p.shape).clone() for p in params]
    losses = {}
    for step in range(max(steps) + 1):
        if step == 0 or step in steps:
            with torch.no_grad():
                losses[step] = mse(task_params, waves["grid"], waves["grid_y"]).double().numpy()
        if step < max(steps):
            task_params, _ = sgd_step(task_params, waves["x"][:, :shots], waves["y"][:, :shots], lr)
    return losses


def evaluate(config: SineConfig, starts: dict) -> dict:
    """The mean squared error on held-out waves after each of eval_steps full-batch SGD steps (and before
    any) on K points, for every K of eval_shots and every start; the same waves and points for all starts
    (K = 5 takes the first 5 of K = 10's points). -> the `evaluation` record: results [{start, shots,
    steps, mse, se}], se the standard error of the mean over the waves."""
    started = time.perf_counter()
    waves = held_out_waves(config)
    results = []
    for name, params in starts.items():
        for shots in config.eval_shots:
            for steps, losses in adapted_losses(params, waves, shots, config.eval_steps, config.eval_lr).items():
                mean, se = float(losses.mean()), float(losses.std(ddof=1) / math.sqrt(len(losses)))
                results.append({"start": name, "shots": shots, "steps": steps, "mse": mean, "se": se})
    return {
        "procedure": (
            f"{config.eval_tasks} held-out waves (A ~ U[{config.amplitude_min:g}, {config.amplitude_max:g}], "
            f"phase ~ U[0, {phase_text(config)}], numpy seed {config.eval_seed}), K points each drawn from "
            f"U[-{config.x_max:g}, {config.x_max:g}]; from each start, full-batch SGD at lr {config.eval_lr:g} on "
            f"the mean squared error of the K points; the figure is the mean squared error on "
            f"{config.eval_grid} equally spaced x in [-{config.x_max:g}, {config.x_max:g}], mean over the waves "
            "± its standard error; the same waves and points for every start"
        ),
        "tasks": config.eval_tasks,
        "seed": config.eval_seed,
        "lr": config.eval_lr,
        "results": results,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def best_everywhere(evaluation: dict, start: str = "meta-learned") -> bool:
    """Whether `start` has the lowest loss, by more than two standard errors of each, after every
    adaptation step count (> 0) and K measured."""
    rows = {(r["start"], r["shots"], r["steps"]): r for r in evaluation["results"]}
    for (name, shots, steps), row in rows.items():
        if name == start or steps == 0:
            continue
        best = rows[(start, shots, steps)]
        if not best["mse"] + 2 * best["se"] < row["mse"] - 2 * row["se"]:
            return False
    return True


# ---------------------------------------------------------------------------------------- the run
def save_starts(path: Path, config: SineConfig, starts: dict, elapsed_s: dict, command: str) -> None:
    """The run's checkpoint: the three starts and how they were made (written atomically)."""
    payload = {
        "format": 1,
        "kind": "sine",
        "config": config.to_dict(),
        "param_names": param_names(),
        "starts": {name: [p.detach().cpu().float() for p in params] for name, params in starts.items()},
        "elapsed_s": elapsed_s,
        "command": command,
        "machine": machine(),
        "host": _host(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())


def load_starts(path: Path) -> dict:
    """A sine run's checkpoint payload; ValueError naming the file when it is not one."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=False)
    except Exception as error:  # torch.load raises many kinds (pickle, zip, OS): all mean "not ours"
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("kind") != "sine" or set(payload.get("starts", {})) != set(STARTS):
        raise ValueError(f"{path} is not a sine run's checkpoint")
    return payload


def run(config: SineConfig, out: Path, command: str, show_progress: bool = True, log=print) -> tuple:
    """Train the meta-learned and joint starts into out/sine.pt (or reuse the finished run there when it
    was trained with the same settings), evaluate the three starts, write out/evaluation.json.
    -> (checkpoint path, evaluation)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a run directory")
    checkpoint = out / CHECKPOINT_NAME
    if checkpoint.exists():
        saved = load_starts(checkpoint)
        if SineConfig.from_dict(saved["config"]).training_fields() != config.training_fields():
            raise ValueError(f"--out {out} holds a sine run trained with other settings; choose another --out")
        log(f"using the starts trained in {checkpoint}")
        starts = {name: saved["starts"][name] for name in STARTS}
    else:
        out.mkdir(parents=True, exist_ok=True)
        stream = training_stream(config)
        starts, elapsed = {}, {}
        for kind in ("meta-learned", "joint"):
            started = time.perf_counter()
            starts[kind] = train_start(config, kind, stream, show_progress)
            elapsed[kind] = round(time.perf_counter() - started, 1)
            log(f"{kind}: {config.meta_iters} iterations in {elapsed[kind]:.0f} s")
        starts["random"] = init_params(config.hidden, config.seed)
        save_starts(checkpoint, config, {name: starts[name] for name in STARTS}, elapsed, command)
    evaluation = evaluate(config, starts)
    evaluation["command"] = command
    evaluation["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    evaluation["host"] = _host()
    write_atomic(out / EVALUATION_NAME, json.dumps(evaluation, indent=2) + "\n")
    for line in evaluation_table(evaluation):
        log(line)
    verdict = "yes" if best_everywhere(evaluation) else "NO"
    log(f"meta-learned best after every step count and K (by > 2 standard errors): {verdict}")
    return checkpoint, evaluation


def _host() -> str:
    """The CPU model and the threads torch used, for the record of a measurement."""
    model = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")),
        machine()["machine"],
    )
    return f"{model}, {torch.get_num_threads()} torch thread(s)"


def _cpuinfo() -> str:
    """/proc/cpuinfo's text, or '' where there is none."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
