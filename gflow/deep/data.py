"""Datasets of the deep-net sweeps, all offline: sklearn digits and breast cancer, mnist1d's procedural
generator, a synthetic image family of controllable intrinsic dimension ("edim"), CIFAR-10/100 from a
local directory of python-pickle batches, and MNIST / Fashion-MNIST from a local directory of the four
IDX files under their standard names (gzipped or not).

Every dataset is a `DeepDataset` with a training, a validation and a test set. The validation set is
held out from the training data (`data.n_val`; `VAL_DEFAULTS` per dataset; −1: none): the peak step,
the best η and c* are chosen on it, and the test set is only reported. Inputs are floats (one example: (D,),
(C, L) or (C, H, W)), integer labels 0 … K−1, standardized with statistics of the training split only.
K = 2 is trained with the logistic loss on one output, K > 2 with softmax cross-entropy on K outputs. Random
splits and subsets use the data seed only, so every multiplier, learning rate and init seed sees the same data.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .config import DeepDataConfig

DATA_ROOT = 0xDEE9DA7A


class DeepDataset(eqx.Module):
    x: jax.Array  # (n, *shape)
    y: jax.Array  # (n,) int32 in [0, K)
    x_test: jax.Array  # (n_test, *shape)
    y_test: jax.Array  # (n_test,)
    x_val: jax.Array  # (n_val, *shape): held out from the training data; may be empty
    y_val: jax.Array  # (n_val,)
    n_classes: int = eqx.field(static=True)
    name: str = eqx.field(static=True, default="")

    @property
    def n_out(self) -> int:
        """Network outputs: 1 (logistic loss) for two classes, K (cross-entropy) otherwise."""
        return 1 if self.n_classes == 2 else self.n_classes

    def describe(self) -> dict:
        return {
            "name": self.name,
            "n_train": int(self.x.shape[0]),
            "n_val": int(self.x_val.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "input_shape": list(self.x.shape[1:]),
            "n_classes": self.n_classes,
            "train_class_counts": np.bincount(np.asarray(self.y), minlength=self.n_classes).tolist(),
        }


def _rng(seed: int, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([DATA_ROOT, seed, salt])


def from_arrays(
    x,
    y,
    x_test,
    y_test,
    *,
    x_val=None,
    y_val=None,
    n_classes: int | None = None,
    name: str = "arrays",
    standardize: bool = True,
    dtype=jnp.float32,
) -> DeepDataset:
    """Checked, standardized dataset from numpy arrays (labels 0 … K−1); no validation set unless given."""
    x, x_test = np.asarray(x, np.float64), np.asarray(x_test, np.float64)
    y, y_test = np.asarray(y), np.asarray(y_test)
    x_val = np.zeros((0,) + x.shape[1:]) if x_val is None else np.asarray(x_val, np.float64)
    y_val = np.zeros(0, np.int64) if y_val is None else np.asarray(y_val)
    if x_val.shape[1:] != x.shape[1:] or y_val.shape != (x_val.shape[0],) or not np.all(np.isfinite(x_val)):
        raise ValueError(
            f"data.x_val: needs examples of shape {x.shape[1:]} with one label each, got {x_val.shape}, {y_val.shape}"
        )
    if y_val.size and (not np.issubdtype(y_val.dtype, np.integer) or y_val.min() < 0):
        raise ValueError("data.y_val: needs integer labels ≥ 0")
    for nm, v in (("x", x), ("x_test", x_test)):
        if v.ndim < 2 or v.shape[0] < 1 or not np.all(np.isfinite(v)):
            raise ValueError(f"data.{nm}: needs shape (n ≥ 1, …) with finite values, got shape {v.shape}")
    if x.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"data.x_test: examples of shape {x_test.shape[1:]}, data.x has {x.shape[1:]}")
    for nm, v, ref in (("y", y, x), ("y_test", y_test, x_test)):
        if v.shape != (ref.shape[0],) or not np.issubdtype(v.dtype, np.integer) or v.min() < 0:
            raise ValueError(
                f"data.{nm}: needs {ref.shape[0]} integer labels ≥ 0, got shape {v.shape}, dtype {v.dtype}"
            )
    top = max(y.max(), y_test.max(), y_val.max(initial=0))
    k = int(top + 1) if n_classes is None else n_classes
    if top >= k:
        raise ValueError(f"data.y: labels must be < n_classes = {k}")
    if standardize:
        axes = (0,) + tuple(range(2, x.ndim))  # per channel for signals/images, per feature for vectors
        mean = x.mean(axis=axes, keepdims=True)
        std = x.std(axis=axes, keepdims=True)
        std = np.where(std > 0, std, 1.0)
        x, x_val, x_test = (x - mean) / std, (x_val - mean) / std, (x_test - mean) / std
    return DeepDataset(
        jnp.asarray(x, dtype),
        jnp.asarray(y, jnp.int32),
        jnp.asarray(x_test, dtype),
        jnp.asarray(y_test, jnp.int32),
        jnp.asarray(x_val, dtype),
        jnp.asarray(y_val, jnp.int32),
        n_classes=k,
        name=name,
    )


# Validation examples held out from the training data when data.n_val = 0 (−1: none).
VAL_DEFAULTS = {"digits": 200, "breast_cancer": 50}  # edim: half of n_test (generated, so free); the others
# (mnist1d, CIFAR, MNIST): a tenth of the training pool (CIFAR 5000 of 50 000, MNIST 6000 of 60 000)


def n_val_of(cfg: DeepDataConfig) -> int | None:
    """The validation-set size of `cfg`: data.n_val, none (−1: 0), or the dataset's default (0): a fixed
    number, or None for a tenth of the training pool (decided by the loader)."""
    if cfg.n_val == -1:
        return 0
    if cfg.n_val:
        return cfg.n_val
    if cfg.name == "edim":
        return (cfg.n_test or 2000) // 2
    return VAL_DEFAULTS.get(cfg.name)


def _holdout(x, y, n_train: int, n_val: int | None, seed: int):
    """(x, y, x_val, y_val) from a training pool: the training subset of `_subset` (all of the pool
    but the validation examples when n_train ≤ 0) and n_val validation examples from the rest (None: a
    tenth of the pool)."""
    n_val = len(y) // 10 if n_val is None else n_val
    if n_train > 0 and n_train + n_val > len(y):
        raise ValueError(
            f"data.n_val: the training pool has {len(y)} examples, asked for {n_train} training + {n_val} validation"
        )
    if n_val >= len(y):
        raise ValueError(f"data.n_val: the training pool has {len(y)} examples, asked for {n_val} for validation")
    if n_train > 0 and n_train < len(y):
        train_idx = np.sort(_rng(seed, 1).permutation(len(y))[:n_train])
    else:
        train_idx = np.arange(len(y))
    rest = np.setdiff1d(np.arange(len(y)), train_idx) if len(train_idx) < len(y) else train_idx
    val_idx = np.sort(_rng(seed, 4).permutation(rest)[:n_val])
    if len(train_idx) == len(y):
        train_idx = np.setdiff1d(train_idx, val_idx)
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def _subset(x, y, n: int, seed: int, salt: int):
    if n == 0 or n >= len(y):
        return x, y
    idx = np.sort(_rng(seed, salt).permutation(len(y))[:n])
    return x[idx], y[idx]


def _n_train(cfg: DeepDataConfig, default: int, available: int) -> int:
    """The training-set size of `cfg`: data.n_train, the dataset's default (0) or all `available` (−1)."""
    return available if cfg.n_train == -1 else (cfg.n_train or default)


class MissingExtraError(ValueError):
    """An optional dependency of a dataset is not installed (one line: what to install)."""


def _optional(module: str, dataset: str):
    """`module` imported, or MissingExtraError naming the install command (the `[data]` extra)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MissingExtraError(
            f"data.name: {dataset} needs the {'scikit-learn' if top == 'sklearn' else top} package, "
            "not installed; install the data extra: pip install 'gflow[data]'"
        ) from None


def _sklearn(name: str, cfg: DeepDataConfig, dtype) -> DeepDataset:
    datasets = _optional("sklearn.datasets", name)

    if name == "digits":
        raw = datasets.load_digits()
        x, y = raw.images[:, None, :, :] / 16.0, raw.target  # (1797, 1, 8, 8)
        default = (1000, 797)
    else:
        raw = datasets.load_breast_cancer()
        x, y = raw.data, raw.target  # (569, 30), binary
        default = (400, 169)
    n_val = n_val_of(cfg)
    assert n_val is not None  # VAL_DEFAULTS holds a fixed size for every sklearn dataset
    n_test = cfg.n_test or (len(y) - (cfg.n_train if cfg.n_train > 0 else default[0]) - n_val)
    n_train = _n_train(cfg, default[0], len(y) - n_test - n_val)
    if n_train + n_test > len(y):
        raise ValueError(f"data.n_train + data.n_test: {name} has {len(y)} examples, asked for {n_train} + {n_test}")
    if n_train + n_test + n_val > len(y):
        raise ValueError(
            f"data.n_val: {name} has {len(y)} examples, asked for {n_train} (train) + {n_test} (test) "
            f"+ {n_val} (validation)"
        )
    perm = _rng(cfg.seed).permutation(len(y))  # training, test, then validation examples
    tr, te, va = perm[:n_train], perm[n_train : n_train + n_test], perm[n_train + n_test : n_train + n_test + n_val]
    return from_arrays(x[tr], y[tr], x[te], y[te], x_val=x[va], y_val=y[va], name=name, dtype=dtype)


def _mnist1d(cfg: DeepDataConfig, dtype) -> DeepDataset:
    """mnist1d's procedural generator only (`mnist1d.data.make_dataset`): its `get_dataset` would try to
    download a pickle; make_dataset computes everything locally. It seeds numpy's and python's global
    RNGs, so their states are saved and restored around the call."""
    import random

    mnist1d_data = _optional("mnist1d.data", "mnist1d")
    get_dataset_args, make_dataset = mnist1d_data.get_dataset_args, mnist1d_data.make_dataset

    args = get_dataset_args()
    args.num_samples = cfg.mnist1d_samples
    args.seed = 42 + cfg.seed  # 42 is mnist1d's own default seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x, y = raw["x"][:, None, :], raw["y"]  # (n, 1, 40) signals
    x_test, y_test = raw["x_test"][:, None, :], raw["y_test"]
    x, y, x_val, y_val = _holdout(x, y, cfg.n_train, n_val_of(cfg), cfg.seed)  # n_train 0, −1: the rest of the split
    x_test, y_test = _subset(x_test, y_test, cfg.n_test, cfg.seed, 2)
    return from_arrays(x, y, x_test, y_test, x_val=x_val, y_val=y_val, n_classes=10, name="mnist1d", dtype=dtype)


def edim_generator(*, intrinsic_dim: int, size: int, channels: int, n_classes: int, n_features: int, seed: int):
    """The fixed random generator of the edim family: a function z (m, k) → (images (m, C, S, S), labels (m,)).

    image = Σ_j φ_j(z) · P_j, with random Fourier features φ_j(z) = √(2/F) cos(⟨a_j, z⟩ + b_j),
    a_j ~ N(0, I_k/k) (so ⟨a_j, z⟩ has unit variance), b_j ~ U[0, 2π), and F smooth random patterns P_j
    (white noise low-passed to about a quarter of the image bandwidth, unit norm). The images lie on a k-dimensional manifold;
    the label is argmax_c ⟨v_c, z⟩ for fixed random unit vectors v_c (the sign of ⟨v, z⟩ for two classes),
    a linear rule in the latent that is non-linear in pixel space.
    """
    g = np.random.default_rng([DATA_ROOT, 0xED1, seed, intrinsic_dim, size, channels, n_classes, n_features])
    a = g.normal(size=(n_features, intrinsic_dim)) / np.sqrt(intrinsic_dim)
    b = g.uniform(0.0, 2 * np.pi, n_features)
    noise = g.normal(size=(n_features, channels, size, size))
    freq = np.fft.fftfreq(size)
    lowpass = np.exp(-(freq[:, None] ** 2 + freq[None, :] ** 2) / (2 * 0.125**2))
    patterns = np.real(np.fft.ifft2(np.fft.fft2(noise) * lowpass))
    patterns /= np.linalg.norm(patterns.reshape(n_features, -1), axis=1).reshape(-1, 1, 1, 1)
    v = g.normal(size=(n_classes if n_classes > 2 else 1, intrinsic_dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)

    def generate(z):
        phi = np.sqrt(2.0 / n_features) * np.cos(z @ a.T + b)
        images = np.tensordot(phi, patterns, axes=1)
        scores = z @ v.T
        labels = (scores[:, 0] > 0).astype(np.int64) if n_classes == 2 else np.argmax(scores, axis=1)
        return images, labels

    return generate


def _edim(cfg: DeepDataConfig, dtype) -> DeepDataset:
    gen = edim_generator(
        intrinsic_dim=cfg.edim_dim,
        size=cfg.edim_size,
        channels=cfg.edim_channels,
        n_classes=cfg.edim_classes,
        n_features=cfg.edim_features,
        seed=cfg.edim_generator_seed,
    )
    if cfg.n_train == -1:
        raise ValueError(
            "data.n_train: edim draws as many examples as asked; −1 (the full training set) has no meaning"
        )
    n_train, n_test, n_val = cfg.n_train or 512, cfg.n_test or 2000, n_val_of(cfg)
    assert n_val is not None  # edim's default is a fixed size (n_val_of)
    g = _rng(cfg.seed, 3)
    z = g.normal(size=(n_train + n_test, cfg.edim_dim))
    x, y = gen(z)
    raw_std = x.std()
    x = x / raw_std + cfg.edim_noise * g.normal(size=x.shape)
    # validation: further draws of the same law (their own stream, so train and test are unchanged by n_val)
    gv = _rng(cfg.seed, 5)
    x_val, y_val = gen(gv.normal(size=(n_val, cfg.edim_dim)))
    x_val = x_val / raw_std + cfg.edim_noise * gv.normal(size=x_val.shape)
    return from_arrays(
        x[:n_train],
        y[:n_train],
        x[n_train:],
        y[n_train:],
        x_val=x_val,
        y_val=y_val,
        n_classes=cfg.edim_classes,
        name=f"edim{cfg.edim_dim}",
        dtype=dtype,
    )


# ---- CIFAR from local python-pickle batches -------------------------------------------------------

CIFAR_FILES: dict[str, dict[str, Any]] = {
    "cifar10": {
        "subdir": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "labels": b"labels",
        "n_classes": 10,
    },
    "cifar100": {
        "subdir": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "labels": b"fine_labels",
        "n_classes": 100,
    },
}
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a batch file cannot run arbitrary code."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _read_batch(path: Path, label_key: bytes, n_classes: int):
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise ValueError(f"data.path: {path}: cannot read ({e.strerror})") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a malformed file
        raise ValueError(f"data.path: {path}: not a CIFAR python-pickle batch ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"data.path: {path}: expected a dict with keys b'data' and {label_key!r}, got {keys}")
    x = np.asarray(batch[b"data"])
    y = np.asarray(batch[label_key])
    if x.ndim != 2 or x.shape[1] != 3072 or x.dtype != np.uint8:
        raise ValueError(f"data.path: {path}: b'data' must be uint8 of shape (n, 3072), got {x.dtype} {x.shape}")
    if y.shape != (x.shape[0],) or y.min(initial=0) < 0 or y.max(initial=0) >= n_classes:
        raise ValueError(f"data.path: {path}: {label_key!r} must hold {x.shape[0]} labels in [0, {n_classes})")
    return x.reshape(-1, 3, 32, 32), y.astype(np.int64)


def _find_files(root, subdir: str, needed: list[str], what: str) -> Path:
    """The directory holding every file of `needed`: `root` itself or `root/subdir`. If neither holds all,
    the error names the files missing from the candidate that holds the most of them, by full path."""
    root = Path(root).expanduser()
    candidates = [root, root / subdir]
    for d in candidates:
        if all((d / f).is_file() for f in needed):
            return d
    if not root.exists():
        raise FileNotFoundError(f"data.path: {root} does not exist (expected the {what}: {', '.join(needed)})")
    best = max(candidates, key=lambda d: sum((d / f).is_file() for f in needed))  # root on a tie
    missing = [str(best / f) for f in needed if not (best / f).is_file()]
    if len(missing) == len(needed):
        raise FileNotFoundError(
            f"data.path: neither {root} nor {root / subdir} holds any of the {what} ({', '.join(needed)})"
        )
    raise FileNotFoundError(f"data.path: missing {', '.join(missing)} (the other {what} are in {best})")


def cifar_dir(name: str, path) -> Path:
    """The directory holding the batch files of `name`: `path` itself or its standard subdirectory."""
    spec = CIFAR_FILES[name]
    return _find_files(path, spec["subdir"], spec["train"] + spec["test"], f"{name} python batches")


def load_cifar(
    name: str, path, *, n_train: int = 0, n_test: int = 0, n_val: int | None = 0, seed: int = 0, dtype=jnp.float32
) -> DeepDataset:
    """CIFAR-10/100 from the python-pickle batches in `path` (nothing is downloaded); pixels scaled to
    [0, 1], then standardized per channel with training-set statistics."""
    spec = CIFAR_FILES[name]
    d = cifar_dir(name, path)
    parts = {s: [_read_batch(d / f, spec["labels"], spec["n_classes"]) for f in spec[s]] for s in ("train", "test")}
    x, y = (np.concatenate(v) for v in zip(*parts["train"]))
    x_test, y_test = (np.concatenate(v) for v in zip(*parts["test"]))
    x, y, x_val, y_val = _holdout(x, y, n_train, n_val, seed)  # n_train 0, −1: the training set less validation
    x_test, y_test = _subset(x_test, y_test, n_test, seed, 2)
    return from_arrays(
        x / 255.0,
        y,
        x_test / 255.0,
        y_test,
        x_val=x_val / 255.0,
        y_val=y_val,
        n_classes=spec["n_classes"],
        name=name,
        dtype=dtype,
    )


# ---- MNIST and Fashion-MNIST from local IDX files ---------------------------------------------------

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_SUBDIRS = {"mnist": "MNIST/raw", "fashion_mnist": "FashionMNIST/raw"}  # torchvision's layout under its root


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (magic 0x0000 08 ndim, then ndim big-endian uint32 sizes, then the
    data), gzipped if its name ends in .gz. Any deviation is a ValueError naming the file."""
    import gzip

    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            raw = f.read()
    except OSError as e:  # includes gzip.BadGzipFile
        raise ValueError(f"data.path: {path}: cannot read ({e})") from None
    head = 4 + 4 * ndim
    if len(raw) < head or raw[:4] != bytes([0, 0, 0x08, ndim]):
        got = raw[:4].hex() if len(raw) >= 4 else f"{len(raw)} bytes"
        raise ValueError(
            f"data.path: {path}: not an IDX file of unsigned bytes with {ndim} dimension(s) "
            f"(magic {got}, expected 000008{ndim:02x})"
        )
    shape = tuple(int(v) for v in np.frombuffer(raw[4:head], ">u4"))
    if len(raw) - head != int(np.prod(shape)):
        raise ValueError(
            f"data.path: {path}: header says {shape} = {int(np.prod(shape))} values, the file holds {len(raw) - head}"
        )
    return np.frombuffer(raw[head:], np.uint8).reshape(shape)


def _idx_name(d: Path, stem: str) -> str:
    return stem + ".gz" if (d / (stem + ".gz")).is_file() or not (d / stem).is_file() else stem


def load_idx(
    name: str, path, *, n_train: int = 0, n_test: int = 0, n_val: int | None = 0, seed: int = 0, dtype=jnp.float32
) -> DeepDataset:
    """MNIST or Fashion-MNIST (28×28 grey images, 10 classes) from the four IDX files in `path` or in
    `path`/{IDX_SUBDIRS[name]}: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
    t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (or the same names without .gz); nothing is
    downloaded. Pixels scaled to [0, 1], then standardized with training-set statistics."""
    root = Path(path).expanduser()
    stems = IDX_FILES["train"] + IDX_FILES["test"]
    # each file may be gzipped or not; look for the names that exist (gzipped names when neither does)
    names = [_idx_name(d, s) for d in (root,) for s in stems]
    if not all((root / n).is_file() for n in names) and (root / IDX_SUBDIRS[name]).is_dir():
        names = [_idx_name(root / IDX_SUBDIRS[name], s) for s in stems]
    d = _find_files(root, IDX_SUBDIRS[name], names, f"{name} IDX files")
    x, y, x_test, y_test = (read_idx(d / n, 3 if "images" in n else 1) for n in names)
    for images, labels, (fi, fl) in ((x, y, names[:2]), (x_test, y_test, names[2:])):
        if len(images) != len(labels):
            raise ValueError(f"data.path: {d / fi} holds {len(images)} images, {d / fl} {len(labels)} labels")
        if labels.max(initial=0) > 9:
            raise ValueError(f"data.path: {d / fl}: labels must be in [0, 10), got {int(labels.max())}")
    x, y, x_val, y_val = _holdout(x[:, None], y.astype(np.int64), n_train, n_val, seed)
    x_test, y_test = _subset(x_test[:, None], y_test.astype(np.int64), n_test, seed, 2)
    return from_arrays(
        x / 255.0, y, x_test / 255.0, y_test, x_val=x_val / 255.0, y_val=y_val, n_classes=10, name=name, dtype=dtype
    )


def load_dataset(cfg: DeepDataConfig, dtype=jnp.float32) -> DeepDataset:
    """The dataset described by `cfg`."""
    if cfg.name in ("digits", "breast_cancer"):
        return _sklearn(cfg.name, cfg, dtype)
    if cfg.name == "mnist1d":
        return _mnist1d(cfg, dtype)
    if cfg.name == "edim":
        return _edim(cfg, dtype)
    load = load_idx if cfg.name in IDX_SUBDIRS else load_cifar
    return load(
        cfg.name, cfg.path, n_train=cfg.n_train, n_test=cfg.n_test, n_val=n_val_of(cfg), seed=cfg.seed, dtype=dtype
    )
