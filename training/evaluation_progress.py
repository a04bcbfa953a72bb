"""A long evaluation's progress on disk (`evaluate --partial FILE`), so that an interrupted one
continues where it stopped instead of starting again: 10,000 tasks of 20-way 5-shot take hours
on a CPU, long enough that the process may be stopped before it ends.

The file holds the settings it was started with (`key`) and, per split, what
training.evaluate.evaluate_modes hands to its on_chunk callback (the task generator's state and
every finished task's score). It is rewritten atomically after every chunk of tasks. The device
is not part of the settings (an evaluation a GPU's time limit stopped may finish on a CPU; the
figures differ by float rounding at most), so the file lists every device that contributed.
"""

import json
from pathlib import Path

from bundle.files import write_atomic


class EvaluationProgress:
    """The progress file of one evaluation: its settings, the devices it ran on, and each split's progress."""

    def __init__(self, path: Path, key: dict, device: str):
        """Opens `path` if it exists (it must have been started with the same `key`), else starts empty.
        Raises ValueError when the file is not one of these or was started with other settings."""
        self.path, self.key, self.splits, self.devices = Path(path), key, {}, [device]
        if not self.path.exists():
            try:  # now, so that an unwritable path is an error before the work, not after it
                self._write()
            except OSError as error:
                raise ValueError(f"cannot write {self.path}: {error.strerror}") from None
            return
        try:
            saved = json.loads(self.path.read_text())
            saved_key, self.splits = saved["key"], saved["splits"]
            self.devices = list(dict.fromkeys([*saved["devices"], device]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{self.path} is not an evaluation progress file ({type(error).__name__}: {error})"
            ) from None
        if saved_key != key:
            changed = sorted(k for k in set(key) | set(saved_key) if key.get(k) != saved_key.get(k))
            raise ValueError(
                f"{self.path} holds an evaluation with other settings ({', '.join(changed)}): "
                "rerun with those, or delete the file to start again"
            )

    def resume(self, split: str) -> dict | None:
        """What to pass as evaluate_modes(resume=...) for `split` (None: not started)."""
        return self.splits.get(split)

    def saver(self, split: str):
        """The on_chunk callback for `split`: records its progress and rewrites the file."""

        def save(progress: dict) -> None:
            self.splits[split] = progress
            self._write()

        return save

    def _write(self) -> None:
        write_atomic(self.path, json.dumps({"key": self.key, "devices": self.devices, "splits": self.splits}))

    def finished(self) -> None:
        """The evaluation is complete and reported: remove the file, nothing is left to continue."""
        self.path.unlink(missing_ok=True)
