"""Offline datasets of the deep path: the CIFAR loader on batch files written here, clear errors for
missing or malformed paths, sklearn and mnist1d without any download, and the edim generator's
intrinsic dimension."""

import dataclasses
import pickle
import random

import numpy as np
import pytest

from gflow.deep.config import DeepDataConfig
from gflow.deep.data import edim_generator, load_cifar, load_dataset
from gflow.twolayer.config import ConfigError


def _write_cifar10(d, n_per_batch=4, n_test=6, seed=0):
    rng = np.random.default_rng(seed)
    batches = {}
    for name, n in [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
            b"batch_label": name.encode(),
            b"filenames": [b"x.png"] * n,
        }
        with open(d / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        batches[name] = batch
    return batches


def test_cifar10_loader_on_generated_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    batches = _write_cifar10(root)
    for path in (root, tmp_path):  # the batch directory itself or its parent
        ds = load_cifar("cifar10", path)
        assert ds.x.shape == (20, 3, 32, 32) and ds.x_test.shape == (6, 3, 32, 32) and ds.n_classes == 10
    raw = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)]).reshape(-1, 3, 32, 32) / 255.0
    labels = np.concatenate([batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)])
    np.testing.assert_array_equal(np.asarray(ds.y), labels)
    mean, std = raw.mean(axis=(0, 2, 3), keepdims=True), raw.std(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(np.asarray(ds.x), (raw - mean) / std, rtol=1e-5, atol=1e-5)  # row-major CHW, per-channel
    test_raw = batches["test_batch"][b"data"].reshape(-1, 3, 32, 32) / 255.0
    np.testing.assert_allclose(np.asarray(ds.x_test), (test_raw - mean) / std, rtol=1e-5, atol=1e-5)  # train statistics
    sub = load_cifar("cifar10", root, n_train=7, n_test=3, seed=1)
    assert sub.x.shape[0] == 7 and sub.x_test.shape[0] == 3


def test_cifar100_loader_uses_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    for name, n in (("train", 5), ("test", 3)):
        with open(tmp_path / name, "wb") as f:
            pickle.dump(
                {
                    b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                    b"fine_labels": [99, 0, 5, 7, 1][:n],
                    b"coarse_labels": [0] * n,
                },
                f,
            )
    ds = load_dataset(DeepDataConfig(name="cifar100", path=str(tmp_path)))
    assert ds.n_classes == 100 and ds.x.shape == (5, 3, 32, 32) and np.asarray(ds.y).tolist() == [99, 0, 5, 7, 1]


def test_bad_dataset_paths_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data.path: .*nowhere does not exist"):
        load_cifar("cifar10", tmp_path / "nowhere")
    _write_cifar10(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \S*data_batch_3 \(the other"):
        load_cifar("cifar10", tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="data_batch_3: not a CIFAR python-pickle batch"):
        load_cifar("cifar10", tmp_path)
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"data_batch_3: b'data' must be uint8 of shape \(n, 3072\)"):
        load_cifar("cifar10", tmp_path)
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, f)
    with pytest.raises(ValueError, match=r"labels in \[0, 10\)"):
        load_cifar("cifar10", tmp_path)
    # a pickle that would run code on load is refused, and the code does not run
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(ValueError, match="refusing to load global"):
        load_cifar("cifar10", tmp_path)
    assert not marker.exists()
    with pytest.raises(ConfigError, match="data.path"):
        DeepDataConfig(name="cifar10")
    with pytest.raises(ConfigError, match="data.name"):
        DeepDataConfig(name="imagenet")


def test_sklearn_datasets_split_by_data_seed():
    a = load_dataset(DeepDataConfig(name="digits", n_train=300, n_test=200, seed=0))
    b = load_dataset(DeepDataConfig(name="digits", n_train=300, n_test=200, seed=1))
    assert a.x.shape == (300, 1, 8, 8) and a.n_classes == 10 and a.n_out == 10
    assert not np.array_equal(np.asarray(a.y), np.asarray(b.y))
    np.testing.assert_allclose(np.asarray(a.x).mean(), 0.0, atol=1e-5)  # standardized with train statistics
    bc = load_dataset(DeepDataConfig(name="breast_cancer"))
    assert bc.x.shape == (400, 30) and bc.x_test.shape == (119, 30) and bc.x_val.shape == (50, 30)
    assert bc.n_classes == 2 and bc.n_out == 1
    with pytest.raises(ValueError, match="data.n_train"):
        load_dataset(DeepDataConfig(name="digits", n_train=1700, n_test=200))


def test_mnist1d_is_generated_locally(tmp_path, monkeypatch):
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d tried to download")

    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.chdir(tmp_path)
    np.random.seed(123)
    random.seed(5)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(5)
    ds = load_dataset(DeepDataConfig(name="mnist1d", mnist1d_samples=200, n_train=100))
    assert (np.random.random(), random.random()) == before  # the global RNGs are left as they were
    assert ds.x.shape == (100, 1, 40) and ds.x_test.shape == (40, 1, 40) and ds.n_classes == 10
    assert list(tmp_path.iterdir()) == []  # no cached pickle written


def test_edim_images_have_the_intrinsic_dimension():
    for k in (2, 5):
        gen = edim_generator(intrinsic_dim=k, size=8, channels=2, n_classes=3, n_features=64, seed=0)
        z = np.random.default_rng(0).normal(size=(1, k))
        eps = 1e-5
        jac = np.stack([(gen(z + eps * e)[0] - gen(z - eps * e)[0]).ravel() / (2 * eps) for e in np.eye(k)])
        s = np.linalg.svd(jac, compute_uv=False)
        assert s[-1] > 1e-3 * s[0]  # the image map has full rank k at z (and at most k, by construction)
        images, labels = gen(np.random.default_rng(1).normal(size=(3000, k)))
        assert images.shape == (3000, 2, 8, 8) and set(labels.tolist()) == {0, 1, 2}
    ds = load_dataset(DeepDataConfig(name="edim", edim_dim=3, n_train=64, n_test=32, edim_classes=2))
    assert ds.x.shape == (64, 1, 8, 8) and ds.n_out == 1
    same = load_dataset(DeepDataConfig(name="edim", edim_dim=3, n_train=64, n_test=32, edim_classes=2))
    np.testing.assert_array_equal(np.asarray(ds.x), np.asarray(same.x))


def _write_idx(path, array, gz=True):
    import gzip
    import struct

    head = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") if gz else open(path, "wb") as f:
        f.write(head + np.ascontiguousarray(array, np.uint8).tobytes())


def _write_mnist(d, n=12, n_test=5, seed=0, gz=True):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    d.mkdir(parents=True, exist_ok=True)
    for stem, a in arrays.items():
        _write_idx(d / (stem + (".gz" if gz else "")), a, gz)
    return arrays


@pytest.mark.parametrize(
    "name, subdir, gz", [("mnist", "", True), ("fashion_mnist", "", False), ("fashion_mnist", "FashionMNIST/raw", True)]
)
def test_mnist_and_fashion_mnist_from_idx_files(tmp_path, name, subdir, gz):
    arrays = _write_mnist(tmp_path / subdir if subdir else tmp_path, gz=gz)
    ds = load_dataset(DeepDataConfig(name=name, path=str(tmp_path), n_val=-1))  # every training image (no validation)
    assert (
        ds.x.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28) and ds.n_classes == 10 and ds.name == name
    )
    raw = arrays["train-images-idx3-ubyte"][:, None] / 255.0
    mean, std = raw.mean(), raw.std()
    np.testing.assert_allclose(np.asarray(ds.x), (raw - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(ds.x_test), (arrays["t10k-images-idx3-ubyte"][:, None] / 255.0 - mean) / std, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(np.asarray(ds.y), arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(np.asarray(ds.y_test), arrays["t10k-labels-idx1-ubyte"])
    sub = load_dataset(DeepDataConfig(name=name, path=str(tmp_path), n_train=7, n_test=3))
    assert sub.x.shape[0] == 7 and sub.x_test.shape[0] == 3


def test_idx_errors_name_the_file(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing .*t10k-labels-idx1-ubyte\.gz \(the other mnist IDX files"):
        load_dataset(DeepDataConfig(name="mnist", path=str(tmp_path)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))  # 4 labels for 5 images
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz holds 5 images, .*t10k-labels-idx1-ubyte\.gz 4"):
        load_dataset(DeepDataConfig(name="mnist", path=str(tmp_path)))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: cannot read"):
        load_dataset(DeepDataConfig(name="mnist", path=str(tmp_path)))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 28), np.uint8))  # 2 dimensions, not 3
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: not an IDX file .* 3 dimension"):
        load_dataset(DeepDataConfig(name="mnist", path=str(tmp_path)))
    import gzip

    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:  # header promises more than the file holds
        f.write(bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(100))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: header says \(5, 28, 28\)"):
        load_dataset(DeepDataConfig(name="mnist", path=str(tmp_path)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither .*empty nor .* holds any of the fashion_mnist IDX files"):
        load_dataset(DeepDataConfig(name="fashion_mnist", path=str(tmp_path / "empty")))
    with pytest.raises(ConfigError, match="data.path"):
        DeepDataConfig(name="mnist")


def test_cifar_one_missing_batch_is_named_from_the_parent(tmp_path):
    """The path is the parent of cifar-10-batches-py and one batch is missing: the error names exactly
    that file, in the subdirectory (it used to say all six were missing from the parent)."""
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    _write_cifar10(root)
    (root / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_cifar("cifar10", tmp_path)
    msg = str(err.value)
    assert f"missing {root / 'data_batch_4'} (the other cifar10 python batches are in {root})" in msg
    assert "data_batch_1" not in msg and "test_batch" not in msg


def test_full_training_set_option(tmp_path):
    full = load_dataset(DeepDataConfig(name="digits", n_train=-1, n_test=297))
    assert full.x.shape[0] == 1797 - 297 - 200 and full.x_test.shape[0] == 297 and full.x_val.shape[0] == 200
    assert load_dataset(DeepDataConfig(name="digits", n_train=-1)).x.shape[0] == 1000  # default test set 797
    _write_mnist(tmp_path)
    mnist = load_dataset(DeepDataConfig(name="mnist", path=str(tmp_path), n_train=-1))
    assert mnist.x.shape[0] == 12 - 1 and mnist.x_val.shape[0] == 1  # a tenth of the pool held out
    with pytest.raises(ValueError, match="data.n_train: edim"):
        load_dataset(DeepDataConfig(name="edim", n_train=-1))
    with pytest.raises(ConfigError, match="data.n_train"):
        DeepDataConfig(n_train=-2)


def _rows(a):
    return {tuple(np.round(np.asarray(v, np.float64).ravel(), 6)) for v in a}


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_validation_split_is_held_out_from_the_training_data(tmp_path):
    """data.n_val examples come from the training data: disjoint from the training and test examples, the
    training (and, with n_test set, the test) examples of a subset unchanged by it; −1: none; too many: a
    one-line error naming data.n_val."""
    for cfg in (
        DeepDataConfig(name="digits", n_train=300, n_test=200),
        DeepDataConfig(name="edim", n_train=64, n_test=50),
        DeepDataConfig(name="mnist1d", mnist1d_samples=200, n_train=100),
    ):  # mnist1d: a tenth of its 160
        d = load_dataset(cfg)
        none = load_dataset(dataclasses.replace(cfg, n_val=-1))
        assert none.x_val.shape[0] == 0 and d.x_val.shape[0] == {"digits": 200, "edim": 25, "mnist1d": 16}[cfg.name]
        np.testing.assert_array_equal(np.asarray(d.y), np.asarray(none.y))
        np.testing.assert_array_equal(np.asarray(d.y_test), np.asarray(none.y_test))
        assert not (_rows(d.x_val) & _rows(d.x)) and not (_rows(d.x_val) & _rows(d.x_test)), cfg.name
        assert load_dataset(dataclasses.replace(cfg, n_val=7)).x_val.shape[0] == 7
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    _write_cifar10(root, n_per_batch=4)  # a pool of 20 training images
    full = load_cifar("cifar10", tmp_path, n_train=-1, n_val=None)
    assert full.x.shape[0] == 18 and full.x_val.shape[0] == 2 and not (_rows(full.x_val) & _rows(full.x))
    sub, sub_none = load_cifar("cifar10", tmp_path, n_train=8, n_val=5), load_cifar("cifar10", tmp_path, n_train=8)
    np.testing.assert_array_equal(np.asarray(sub.y), np.asarray(sub_none.y))
    assert sub.x_val.shape[0] == 5 and not (_rows(sub.x_val) & _rows(sub.x))
    with pytest.raises(ValueError, match=r"^data.n_val: the training pool has 20 examples, asked for 18 training \+ 5"):
        load_cifar("cifar10", tmp_path, n_train=18, n_val=5)
    with pytest.raises(ValueError, match=r"^data.n_val: digits has 1797 examples"):
        load_dataset(DeepDataConfig(name="digits", n_train=1500, n_test=200, n_val=200))
    with pytest.raises(ConfigError, match="data.n_val"):
        DeepDataConfig(n_val=-2)
