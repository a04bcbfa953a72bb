"""Mini-ImageNet loader (training/miniimagenet.py) on a tiny generated folder, and a 2-iteration
training run through it. No accuracy is claimed for Mini-ImageNet: the real data is not here."""

import hashlib
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from training import miniimagenet as mi
from training.miniimagenet import DatasetError, load_miniimagenet

CLASSES = {"train": 4, "val": 2, "test": 3}
IMAGES = 6
RED = (200, 30, 60)
# The tiny folder is not the standard split: its warning is checked where it matters, ignored elsewhere.
pytestmark = pytest.mark.filterwarnings("ignore:.*not the standard Mini-ImageNet split:UserWarning")
SPLIT_DIGIT = {"train": 1, "val": 2, "test": 3}


def wnid(split: str, index: int) -> str:
    return f"n{SPLIT_DIGIT[split]}{index:07d}"  # e.g. n10000002 (train), n30000000 (test)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("REPTILE_CACHE_DIR", str(path))
    return path


@pytest.fixture
def mini_dir(tmp_path):
    """4/2/3 classes x 6 JPEGs of assorted sizes and modes; the first train image is solid RED
    at 84x84, the first test image grey (mode L)."""
    root = tmp_path / "mini"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in CLASSES.items():
        rows = ["filename,label"]
        # rows listed in reverse class order: the loader sorts classes by wnid
        for c in reversed(range(count)):
            for i in range(IMAGES):
                name = f"{wnid(split, c)}{i:08d}.jpg"
                size = (84, 84) if i == 0 else (int(rng.integers(40, 130)), int(rng.integers(40, 130)))
                if (split, c, i) == ("train", 0, 0):
                    image = Image.new("RGB", size, RED)
                elif (split, c, i) == ("test", 0, 0):
                    image = Image.new("L", size, 128)
                else:
                    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
                image.save(root / "images" / name, quality=95)
                rows.append(f"{name},{wnid(split, c)}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def load_quietly(path):
    with pytest.warns(UserWarning, match="not the standard Mini-ImageNet split"):
        return load_miniimagenet(path)


def test_shapes_classes_and_pixels(mini_dir, private_cache):
    mini = load_quietly(mini_dir)
    for split, count in CLASSES.items():
        array = getattr(mini, split)
        assert array.shape == (count, IMAGES, 3, 84, 84) and array.dtype == np.uint8
        assert getattr(mini, f"{split}_classes") == [wnid(split, c) for c in range(count)]
    assert mini.csv_sha256 == {
        f"{s}.csv": hashlib.sha256((mini_dir / f"{s}.csv").read_bytes()).hexdigest() for s in CLASSES
    }
    # channel-first RGB: the solid red image (JPEG: a few levels of error), the grey one on 3 channels
    np.testing.assert_allclose(mini.train[0, 0].reshape(3, -1).mean(1), RED, atol=3)
    assert np.abs(mini.test[0, 0].astype(int) - 128).max() <= 2
    assert len(list(private_cache.glob("miniimagenet-84px-*.npz"))) == 1


def test_second_load_comes_from_the_cache(mini_dir, monkeypatch):
    first = load_quietly(mini_dir)

    def no_decoding(path):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(mi, "_decode_image", no_decoding)
    again = load_quietly(mini_dir)
    for split in CLASSES:
        np.testing.assert_array_equal(getattr(again, split), getattr(first, split))
    assert again.test_classes == first.test_classes


def test_a_replaced_image_invalidates_the_cache(mini_dir):
    load_quietly(mini_dir)
    name = f"{wnid('train', 0)}{0:08d}.jpg"
    Image.new("RGB", (90, 90), (0, 0, 255)).save(mini_dir / "images" / name)
    mini = load_quietly(mini_dir)
    np.testing.assert_allclose(mini.train[0, 0].reshape(3, -1).mean(1), (0, 0, 255), atol=3)


def test_the_standard_split_sizes_do_not_warn(mini_dir, monkeypatch):
    monkeypatch.setattr(mi, "STANDARD_CLASSES", CLASSES)
    monkeypatch.setattr(mi, "STANDARD_IMAGES_PER_CLASS", IMAGES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_miniimagenet(mini_dir)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="not downloaded automatically"):
        load_miniimagenet(tmp_path / "nowhere")


def test_missing_csv(mini_dir, private_cache):
    (mini_dir / "val.csv").unlink()
    with pytest.raises(ValueError, match=f"missing {mini_dir / 'val.csv'}"):
        load_miniimagenet(mini_dir)
    assert not private_cache.exists()


def test_missing_image(mini_dir):
    missing = mini_dir / "images" / f"{wnid('test', 2)}{3:08d}.jpg"
    missing.unlink()
    with pytest.raises(DatasetError, match=f"missing image {missing} .listed in {mini_dir / 'test.csv'}"):
        load_miniimagenet(mini_dir)


def test_unequal_class_counts(mini_dir):
    lines = (mini_dir / "train.csv").read_text().splitlines()
    (mini_dir / "train.csv").write_text("\n".join(lines[:-1]) + "\n")  # drop an image of class 0
    with pytest.raises(DatasetError, match=f"unequal image counts .{wnid('train', 0)}: 5, .*: 6"):
        load_miniimagenet(mini_dir)


def test_class_in_two_splits(mini_dir):
    text = (mini_dir / "val.csv").read_text().replace(wnid("val", 1), wnid("train", 2))
    (mini_dir / "val.csv").write_text(text)
    with pytest.raises(DatasetError, match=f"class {wnid('train', 2)} is in both train.csv and val.csv"):
        load_miniimagenet(mini_dir)


def test_bad_header(mini_dir):
    text = (mini_dir / "test.csv").read_text().replace("filename,label", "file,wnid")
    (mini_dir / "test.csv").write_text(text)
    with pytest.raises(DatasetError, match="expected the header 'filename,label'"):
        load_miniimagenet(mini_dir)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_image(mini_dir, private_cache, damage):
    path = mini_dir / "images" / f"{wnid('val', 1)}{4:08d}.jpg"
    data = path.read_bytes()
    path.write_bytes(b"not a jpeg at all" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DatasetError, match=f"{path} is not a readable image"):
        load_miniimagenet(mini_dir)
    assert list(private_cache.glob("*.npz")) == []  # nothing partial cached


def test_two_meta_iterations_train(mini_dir, tmp_path):
    from training.presets import PRESETS
    from training.train import train

    config = PRESETS["miniimagenet-5w1s"].updated(
        ways=2,
        shots=1,
        train_shots=2,
        inner_batch=2,
        inner_iters=2,
        meta_batch=2,
        meta_iters=2,
        eval_batch=2,
        eval_iters=2,
        eval_tasks=2,
        eval_interval=1,
        checkpoint_interval=1,
        filters=8,
    )
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="not the standard Mini-ImageNet split"):
        train(config, out, data_dir=mini_dir, progress=False)
    assert (out / "checkpoint.pt").exists()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows] == [1, 2]
    for row in rows:
        assert 0 <= row["train_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1
    assert (out / "test_classes.txt").read_text().split() == [wnid("test", c) for c in range(3)]
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["dataset"] == "miniimagenet" and set(saved["miniimagenet_csv_sha256"]) == {
        "train.csv",
        "val.csv",
        "test.csv",
    }
