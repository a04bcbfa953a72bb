"""Server settings: defaults < environment variables (REPTILE_DEMO_*) < command-line flags."""

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Meta-trained on 20-way tasks: as good as the 5-way model at 2-5 classes, far better at 6-10 (docs/results.md).
DEFAULT_MODEL = ROOT / "static" / "models" / "omniglot-20w"
ENV_PREFIX = "REPTILE_DEMO_"


class SettingsError(ValueError):
    """A setting (environment variable or flag) has an invalid value."""


@dataclass(frozen=True)
class Settings:
    """The server's settings, validated on construction (SettingsError names the setting)."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: Path = DEFAULT_MODEL  # the bundle served and used by /api/adapt
    models_dir: Path = ROOT / "static" / "models"  # served at /models/<name>/<file>
    web_dir: Path = ROOT / "web"  # /web/<path>, templates, sw.js, node_modules/onnxruntime-web
    workers: int = field(default_factory=lambda: min(64, os.cpu_count() or 1))  # ONNX threads, 1 intra-op each
    queue: int = 16  # adaptations waiting for a worker; beyond it 503 + Retry-After
    timeout_s: float = 20.0  # per adaptation request, from arrival (queue wait included)
    max_body_bytes: int = 2 * 1024 * 1024
    max_image_bytes: int = 512 * 1024  # one PNG, decoded from base64
    max_image_pixels: int = 1024 * 1024  # one PNG's width * height, checked from its header before decoding
    max_image_side: int = 2048  # one PNG's width and its height, likewise (area alone admits 1048576x1)
    max_request_pixels: int = 8 * 1024 * 1024  # all of a request's PNGs together, from their headers
    min_classes: int = 2  # narrowed to the bundle's range, never widened
    max_classes: int = 10
    min_shots: int = 1
    max_shots: int = 5
    max_steps: int = 200
    max_lr: float = 1.0
    max_queries: int = 20
    frame_ancestors: str = "*"  # CSP frame-ancestors of /embed; every other page: 'self'
    public_url: str = ""  # absolute base URL for oEmbed (default: from the request)
    root_path: str = ""  # when served under a path prefix by a proxy
    log_level: str = "info"

    def __post_init__(self):
        checks = [
            (1 <= self.port <= 65535, f"port must be 1..65535, got {self.port}"),
            (1 <= self.workers <= 64, f"workers must be 1..64, got {self.workers}"),
            (0 <= self.queue <= 10000, f"queue must be 0..10000, got {self.queue}"),
            (0 < self.timeout_s <= 3600, f"timeout_s must be in (0, 3600], got {self.timeout_s}"),
            (1024 <= self.max_body_bytes <= 1 << 30, f"max_body_bytes must be 1 KiB..1 GiB, got {self.max_body_bytes}"),
            (self.max_image_bytes >= 64, f"max_image_bytes must be >= 64, got {self.max_image_bytes}"),
            (
                1 <= self.max_image_pixels <= 2048 * 2048,
                f"max_image_pixels must be 1..{2048 * 2048} (the preprocessing limit), got {self.max_image_pixels}",
            ),
            (1 <= self.max_image_side <= 2048, f"max_image_side must be 1..2048, got {self.max_image_side}"),
            (
                self.max_image_pixels <= self.max_request_pixels <= 1 << 30,
                f"max_request_pixels must be max_image_pixels..{1 << 30}, got {self.max_request_pixels}",
            ),
            (
                2 <= self.min_classes <= self.max_classes,
                f"classes must satisfy 2 <= min <= max, got {self.min_classes}..{self.max_classes}",
            ),
            (
                1 <= self.min_shots <= self.max_shots,
                f"shots must satisfy 1 <= min <= max, got {self.min_shots}..{self.max_shots}",
            ),
            (0 <= self.max_steps <= 100000, f"max_steps must be 0..100000, got {self.max_steps}"),
            (self.max_lr > 0, f"max_lr must be > 0, got {self.max_lr}"),
            (1 <= self.max_queries <= 1000, f"max_queries must be 1..1000, got {self.max_queries}"),
            (
                self.log_level in ("critical", "error", "warning", "info", "debug"),
                f"log_level must be critical|error|warning|info|debug, got {self.log_level!r}",
            ),
            (
                not any(c in self.frame_ancestors for c in ";,\r\n"),
                f"frame_ancestors must be a CSP source list without ';' or ',', got {self.frame_ancestors!r}",
            ),
            (
                self.root_path == "" or (self.root_path.startswith("/") and not self.root_path.endswith("/")),
                f"root_path must be empty or start with '/' and not end with '/', got {self.root_path!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)


def _convert(name: str, kind, raw: str):
    """An environment variable's text -> the field's type, or SettingsError naming the variable."""
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
        if kind is Path:
            return Path(raw).expanduser()
        return raw
    except ValueError:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None


def settings_from_env(environ=None, **overrides) -> Settings:
    """Settings from REPTILE_DEMO_<FIELD> variables (e.g. REPTILE_DEMO_PORT, REPTILE_DEMO_MAX_STEPS),
    then the non-None overrides (command-line flags). Raises SettingsError with the variable's name."""
    environ = os.environ if environ is None else environ
    values = {}
    for f in fields(Settings):
        raw = environ.get(ENV_PREFIX + f.name.upper())
        if raw is not None and raw != "":
            kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "Path": Path}.get(f.type, str)
            values[f.name] = _convert(f.name, kind, raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
