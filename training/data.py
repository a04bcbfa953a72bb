"""From a config's dataset name to task samplers: meta-training, training-class and test evaluation."""

from dataclasses import dataclass

from .tasks import TaskSampler, with_rotations


@dataclass
class TaskData:
    meta_train: TaskSampler  # what meta-training samples from (Omniglot: with the 4 rotations)
    train_eval: TaskSampler  # training classes as they are, to show the train/test gap
    test: TaskSampler  # held-out classes
    test_classes: list  # names of the held-out classes, written out for re-evaluation
    provenance: dict  # dataset file hashes


def load_task_data(dataset: str, data_dir, seed: int, download: bool = True) -> TaskData:
    if dataset == "omniglot":
        from .omniglot import load_omniglot

        omniglot = load_omniglot(data_dir, download_missing=download)
        train, test = omniglot.split(seed)
        images = omniglot.images[:, :, None]  # add the channel axis: [characters, drawings, 1, 28, 28]
        return TaskData(
            meta_train=TaskSampler(with_rotations(images[train])),
            train_eval=TaskSampler(images[train]),
            test=TaskSampler(images[test]),
            test_classes=[omniglot.names[i] for i in test],
            provenance={"omniglot_zip_sha256": omniglot.zip_sha256},
        )
    if dataset == "miniimagenet":
        from .miniimagenet import load_miniimagenet

        mini = load_miniimagenet(data_dir)
        return TaskData(
            meta_train=TaskSampler(mini.train),
            train_eval=TaskSampler(mini.train),
            test=TaskSampler(mini.test),
            test_classes=list(mini.test_classes),
            provenance={"miniimagenet_csv_sha256": mini.csv_sha256},
        )
    raise ValueError(f"unknown dataset {dataset!r}")
