"""Datasets: train, validation and test splits as float32 arrays.

``validation`` is carved from the training split with a fixed seed; the test
split is never used for any choice (search, early stopping, model selection).

No framework is imported: MNIST, Fashion-MNIST and CIFAR-10 are read from the
files Keras keeps in ``~/.keras/datasets`` (shared with ``keras.datasets``),
and downloaded there from Keras's own addresses when missing. MNIST-1D is
generated once and kept in ``~/.cache/widthvsprune/datasets``
(:func:`generated_cache_dir`).
"""

import dataclasses
import gzip
import hashlib
import os
import pathlib
import pickle
import random
import tarfile
import urllib.request
import uuid

import numpy as np

from widthvsprune.errors import DataError

DATASETS = ("digits", "mnist1d", "mnist", "fashion_mnist", "cifar10")
_KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz")
# dataset -> [(file in the Keras cache, where to download it from)]
_KERAS_FILES = {
    "mnist": [("mnist.npz", _KERAS_BASE + "mnist.npz")],
    "fashion_mnist": [(f"fashion-mnist/{name}", _KERAS_BASE + name) for name in _FASHION],
    "cifar10": [("cifar-10-batches-py/test_batch", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")],
}


@dataclasses.dataclass(frozen=True, eq=False)
class Splits:
    """Train, validation and test arrays of one dataset."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self):
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def nbytes(self):
        """Bytes of the six arrays."""
        return sum(a.nbytes for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test))


def keras_cache_dir():
    """Where tf_keras's ``keras.datasets`` keeps downloaded files (``~/.keras/datasets``)."""
    return pathlib.Path(os.path.expanduser("~")) / ".keras" / "datasets"


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]
    y = bunch.target.astype("int32")
    order = np.random.default_rng(1234).permutation(len(x))
    x, y = x[order], y[order]
    n_test = 360  # the same held-out 20% every time
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def _download(url, path):
    """Fetches ``url`` into ``path`` (through a temporary file, so a broken download leaves nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")  # created by open(): the umask's mode
    try:
        urllib.request.urlretrieve(url, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fetch(name):
    """Makes sure the dataset's files are in the Keras cache, downloading what is missing."""
    cache = keras_cache_dir()
    missing = [(f, url) for f, url in _KERAS_FILES[name] if not (cache / f).exists()]
    try:
        for file, url in missing:
            if name == "cifar10":
                archive = cache / "cifar-10-batches-py.tar.gz"
                _download(url, archive)
                with tarfile.open(archive) as tar:
                    try:
                        tar.extractall(cache, filter="data")
                    except TypeError:  # a Python without extraction filters
                        tar.extractall(cache)  # noqa: S202 - Keras's own archive
                archive.unlink()
            else:
                _download(url, cache / file)
    except Exception as error:  # no network, proxy, partial file ...
        raise DataError(f"dataset: {_where_from(name, cache, missing)} Received: dataset={name!r}, which could not "
                        f"be downloaded here ({type(error).__name__})") from None
    return cache


def _where_from(name, cache, missing):
    """What a Keras dataset needs on disk and where it comes from, in one sentence."""
    if name == "cifar10":
        return (f"Expected CIFAR-10 in the Keras cache as keras.datasets.cifar10 keeps it: the archive "
                f"{_KERAS_FILES['cifar10'][0][1]} unpacked into {cache / 'cifar-10-batches-py'} (data_batch_1 to 5 "
                "and test_batch); download and unpack it there once.")
    files = ", ".join(f"{cache / f} (from {url})" for f, url in missing)
    return f"Expected {files} in the Keras cache, as keras.datasets keeps it; download it there once."


def _idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _cifar_batch(path):
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(batch[b"labels"])


def _keras_dataset(name):
    cache = _fetch(name)
    if name == "mnist":
        with np.load(cache / "mnist.npz", allow_pickle=False) as f:
            x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    elif name == "fashion_mnist":
        y_train, x_train, y_test, x_test = (_idx(cache / "fashion-mnist" / f) for f in _FASHION)
    else:
        folder = cache / "cifar-10-batches-py"
        parts = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
        x_train, y_train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        x_test, y_test = _cifar_batch(folder / "test_batch")
    scale = 255.0
    x_train = (x_train / scale).astype("float32")
    x_test = (x_test / scale).astype("float32")
    return x_train, y_train.reshape(-1), x_test, y_test.reshape(-1)


_GENERATED = {}  # datasets generated in this process, kept read-only

#: A folder of the user's own for generated datasets, or ``0`` for none (:func:`generated_cache_dir`).
DATA_CACHE = "WIDTHVSPRUNE_DATA_CACHE"
#: The arrays of a generated dataset's cache file, in order.
GENERATED_KEYS = ("x_train", "y_train", "x_test", "y_test")


def generated_cache_dir(environ=None):
    """Where generated datasets (MNIST-1D) are kept between runs, or ``None`` for nowhere.

    ``$WIDTHVSPRUNE_DATA_CACHE`` if set (``0``: nowhere, each process
    generates its own), else ``$XDG_CACHE_HOME/widthvsprune/datasets``
    (``~/.cache/widthvsprune/datasets``).
    """
    environ = os.environ if environ is None else environ
    value = environ.get(DATA_CACHE)
    if value == "0":
        return None
    if value:
        return pathlib.Path(value)
    return cache_home(environ) / "datasets"


def cache_home(environ=None):
    """The folder of widthvsprune's caches: ``$XDG_CACHE_HOME/widthvsprune`` (``~/.cache/widthvsprune``)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "widthvsprune"


def generated_file(name, packages, environ=None):
    """The cache file of a generated dataset, or ``None`` where there is no cache.

    Its name holds the releases of ``packages`` (the generator and the
    numerical libraries it draws and interpolates with), so a file is used
    only where generating again would give the same arrays.
    """
    folder = generated_cache_dir(environ)
    if folder is None:
        return None
    import importlib.metadata

    releases = {package: importlib.metadata.version(package) for package in packages}
    key = hashlib.sha256(repr(sorted(releases.items())).encode()).hexdigest()[:12]
    return folder / f"{name.replace(':', '-')}-{key}.npz"


def arrays_digest(arrays):
    """SHA-256 of arrays' dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _read_generated(path):
    """The arrays of a cache file, or ``None`` where it is missing, unreadable or not what was written."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = tuple(f[k] for k in GENERATED_KEYS)
            written = str(f["sha256"])
    except Exception:  # a damaged file: generated again and replaced
        return None
    return arrays if arrays_digest(arrays) == written else None


def _write_generated(path, arrays):
    """Keeps a generated dataset's arrays in ``path``, through a temporary file (complete or absent); where that
    fails (a read-only home, a full disk), they are generated again next time: the cache is only a shortcut."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, **dict(zip(GENERATED_KEYS, arrays)), sha256=np.array(arrays_digest(arrays)))
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


MNIST1D_SAMPLES = 5000


def mnist1d_samples(name):
    """The number of sequences a ``mnist1d`` or ``mnist1d:N`` dataset name asks for, or ``None`` for another name
    or an invalid ``N`` (an integer from 1,000 to 1,000,000)."""
    if name == "mnist1d":
        return MNIST1D_SAMPLES
    if not isinstance(name, str) or not name.startswith("mnist1d:"):
        return None
    text = name.split(":", 1)[1]
    if not text.isdigit() or not 1_000 <= int(text) <= 1_000_000:
        return None
    return int(text)


def _mnist1d(num_samples=MNIST1D_SAMPLES):
    """MNIST-1D (Greydanus & Kobak, 2024), generated offline by the ``mnist1d`` package.

    Calls ``make_dataset(get_dataset_args())``, the package's published
    defaults: 5,000 sequences of length 40 (seed 42), the first 4,000 for
    training and the last 1,000 for testing, 10 classes. ``num_samples``
    (the dataset ``mnist1d:N``) generates N sequences with the same
    defaults otherwise, 80% of them for training (the first 5,000 are not
    the published ones: the package draws them in another order). The result equals
    the published ``mnist1d_data.pkl``: labels exactly, sequences to float64
    rounding and bit for bit once cast to float32. The package's
    ``get_dataset`` downloads that file and is never called.

    ``make_dataset`` reseeds Python's and NumPy's global random generators;
    their states are restored afterwards. Importing the package and
    generating the 5,000 sequences takes about 2.5 s on a 2-core CPU (4 s
    for 10,000): the arrays are kept in a file of :func:`generated_cache_dir`
    (named by the releases of ``mnist1d``, NumPy and SciPy, which generate
    them, and checked against the digest written with them) and in this
    process; each call returns copies.
    """
    name = "mnist1d" if num_samples == MNIST1D_SAMPLES else f"mnist1d:{num_samples}"
    if name in _GENERATED:
        return tuple(array.copy() for array in _GENERATED[name])
    try:
        cached = generated_file(name, ("mnist1d", "numpy", "scipy"))
    except ImportError:  # importlib.metadata.PackageNotFoundError: mnist1d is not installed
        cached = None
    arrays = _read_generated(cached)
    if arrays is None:
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError:
            raise DataError(
                "dataset: Expected the 'mnist1d' package to be installed (pip install mnist1d). "
                "Received: dataset='mnist1d'"
            ) from None
        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:
            args = get_dataset_args()
            args.num_samples = int(num_samples)
            generated = make_dataset(args)
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
        arrays = (
            np.asarray(generated["x"], dtype="float32"),
            np.asarray(generated["y"], dtype="int32"),
            np.asarray(generated["x_test"], dtype="float32"),
            np.asarray(generated["y_test"], dtype="int32"),
        )
        if cached is not None:
            _write_generated(cached, arrays)
    for array in arrays:
        array.setflags(write=False)
    _GENERATED[name] = arrays
    return tuple(array.copy() for array in arrays)


#: Examples in all (training and test) of the named datasets whose size is fixed.
SIZES = {"digits": 1797, "mnist": 70_000, "fashion_mnist": 70_000, "cifar10": 60_000}


def total_examples(name):
    """How many examples a named dataset has in all, training and test together (``None`` for a file's)."""
    return SIZES.get(name, mnist1d_samples(name))


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: The largest integer from which every smaller one is exact in float32 (2 ** 24): token ids are loaded as float32.
FLOAT32_EXACT = 1 << 24


def _npz(path):
    path = pathlib.Path(path)
    field = f"npz:{path}"
    if not path.is_file():
        raise DataError(f"dataset: Expected an existing .npz file. Received: dataset={field!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in NPZ_KEYS if k not in f.files]
            if missing:
                raise DataError(
                    f"dataset: Expected keys {list(NPZ_KEYS)} in the npz file. "
                    f"Received: dataset={field!r}, which lacks {missing}"
                )
            arrays = {k: f[k] for k in NPZ_KEYS}
    except DataError:
        raise
    except Exception as error:
        raise DataError(
            f"dataset: Expected a readable .npz file. Received: dataset={field!r} "
            f"({type(error).__name__}: {error})"
        ) from None
    problems = validate_arrays(arrays, field)
    if problems:
        raise DataError("\n".join(problems))
    x_train = arrays["x_train"].astype("float32")  # integer token ids stay exact: an Embedding casts them back
    x_test = arrays["x_test"].astype("float32")
    if arrays["x_train"].dtype == np.uint8:
        x_train, x_test = x_train / 255.0, x_test / 255.0
    return x_train, arrays["y_train"], x_test, arrays["y_test"]


def validate_arrays(arrays, field):
    """Problems of a dataset's arrays, one line each (empty when valid)."""
    problems = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype.kind not in "uif":
            problems.append(
                f"dataset: Expected numeric x_{split}. Received: dataset={field!r} "
                f"with x_{split}.dtype={x.dtype}"
            )
        elif x.dtype.kind in "ui" and x.dtype != np.uint8 and x.size and np.abs(x).max() > FLOAT32_EXACT:
            problems.append(
                f"dataset: Expected integers (token ids) of at most {FLOAT32_EXACT} in x_{split}, which float32 "
                f"holds exactly. Received: dataset={field!r} with values up to {int(np.abs(x).max())}"
            )
        elif x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            problems.append(
                f"dataset: Expected finite values in x_{split}. Received: dataset={field!r} "
                f"with {int(np.size(x) - np.isfinite(x).sum())} non-finite values"
            )
        if y.dtype.kind not in "ui" and not (
            y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
        ):
            problems.append(
                f"dataset: Expected integer labels in y_{split}. Received: dataset={field!r} "
                f"with y_{split}.dtype={y.dtype}"
            )
        if x.ndim < 2 or len(x) == 0:
            problems.append(
                f"dataset: Expected x_{split} of shape (examples, ...) with examples > 0. "
                f"Received: dataset={field!r} with x_{split}.shape={x.shape}"
            )
        elif y.reshape(len(y), -1).shape[1] != 1 or len(y) != len(x):
            problems.append(
                f"dataset: Expected one label per example in y_{split} ({len(x)}). "
                f"Received: dataset={field!r} with y_{split}.shape={y.shape}"
            )
    if not problems and arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        problems.append(
            f"dataset: Expected x_train and x_test with the same example shape. Received: "
            f"dataset={field!r} with {arrays['x_train'].shape[1:]} and {arrays['x_test'].shape[1:]}"
        )
    if not problems:
        y_all = np.concatenate([arrays["y_train"].reshape(-1), arrays["y_test"].reshape(-1)])
        n_classes = int(arrays["y_train"].max()) + 1
        if y_all.min() < 0 or y_all.max() >= n_classes:
            problems.append(
                f"dataset: Expected labels in [0, {n_classes}) (the classes of y_train). "
                f"Received: dataset={field!r} with labels from {y_all.min()} to {y_all.max()}"
            )
    return problems


# --------------------------------------------------------------------------
# Datasets registered from Python: register_dataset(name, loader).

_REGISTERED = {}  # name -> loader
_ARRAYS = {}  # name -> (x_train, y_train, x_test, y_test), loaded once per process
_FINGERPRINTS = {}  # name -> the SHA-256 (16 hex digits) of its arrays
_RECORDED = set()  # names known only from a finished study's records (recorded_dataset)


def register_dataset(name, loader, overwrite=False):
    """Adds a dataset that a study can name, from arrays your own Python code returns.

    ``loader()`` returns ``x_train, y_train, x_test, y_test`` (NumPy arrays,
    or anything ``np.asarray`` takes); they are checked as an ``npz:`` file's
    are, ``uint8`` images divided by 255. The loader runs once per process,
    when a study first needs the data; a study's run then writes the arrays
    once into its results folder (``data/<name>.npz``), where its helper
    processes read them. Every run key holds a fingerprint of the arrays'
    content, so changed data never reuses the runs of other data.

    A ``tf.data.Dataset`` or a ``keras.utils.PyDataset`` is materialised to
    arrays first, for example
    ``x, y = map(np.concatenate, zip(*[(a.numpy(), b.numpy()) for a, b in ds]))``.

    Args:
        name: the name a study gives as ``dataset`` (letters, digits, ``_``,
            ``-``; not a shipped dataset's name).
        loader: ``f() -> (x_train, y_train, x_test, y_test)``.
        overwrite: replace a dataset registered under the same name.

    Returns:
        ``name``.

    Raises:
        ValueError: for a name that is taken or malformed.

    Example:

    ```python
    register_dataset("my_data", lambda: (x_train, y_train, x_test, y_test))
    STUDY = Study(name="mine", dataset="my_data", family="mlp")
    ```
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name) \
            or name in DATASETS or mnist1d_samples(name) is not None:
        raise ValueError(f"Expected a dataset name of letters, digits, '_' and '-' that is not a shipped dataset's. "
                         f"Received: name={name!r}")
    if not callable(loader):
        raise ValueError(f"Expected a loader, f() -> (x_train, y_train, x_test, y_test). Received: loader={loader!r}")
    if name in _REGISTERED and not overwrite and name not in _RECORDED:
        raise ValueError(f"Expected a dataset name that is not registered yet (or overwrite=True). Received: "
                         f"name={name!r}")
    _REGISTERED[name] = loader
    _RECORDED.discard(name)
    _ARRAYS.pop(name, None)
    _FINGERPRINTS.pop(name, None)
    return name


#: The name of a dataset given as arrays (``Study(dataset=(x_train, y_train, x_test, y_test))``) starts so.
ARRAYS_PREFIX = "arrays-"


def is_arrays(value):
    """Whether ``value`` is a dataset given as arrays: 4 of them in a tuple or list, or a dict of
    :data:`NPZ_KEYS`."""
    return isinstance(value, (tuple, list, dict))


def register_arrays(arrays):
    """Registers a dataset given as arrays and returns its name, ``arrays-`` and 16 hex digits of their content.

    What ``Study(dataset=(x_train, y_train, x_test, y_test))`` does: the same
    arrays give the same name in every process, and other arrays another one.
    They are checked as an ``npz:`` file's are.

    Args:
        arrays: ``(x_train, y_train, x_test, y_test)``, or a dict with those keys.

    Raises:
        DataError: one line per problem, naming the array.
    """
    if isinstance(arrays, dict):
        missing = [k for k in NPZ_KEYS if k not in arrays]
        if missing:
            raise DataError(f"dataset: Expected a dict with keys {list(NPZ_KEYS)}. Received: a dict without "
                            f"{missing}")
        values = tuple(arrays[k] for k in NPZ_KEYS)
    elif len(arrays) != len(NPZ_KEYS):
        raise DataError(f"dataset: Expected 4 arrays (x_train, y_train, x_test, y_test). Received: "
                        f"{type(arrays).__name__} of {len(arrays)}")
    else:
        values = tuple(arrays)
    try:
        values = tuple(np.asarray(a) for a in values)
    except Exception as error:  # ragged lists, say
        raise DataError(f"dataset: Expected arrays (anything np.asarray takes). Received: {error}") from None
    name = ARRAYS_PREFIX + arrays_digest(values)[:16]
    if name not in _ARRAYS:
        register_dataset(name, lambda: values, overwrite=True)
        _registered_arrays(name)  # checked now, before the study exists
    return name


def registered(name):
    """Whether ``name`` is a dataset registered with :func:`register_dataset` (or known from a study's records)."""
    return isinstance(name, str) and name in _REGISTERED


def is_recorded(name):
    """Whether ``name`` is known in this process only from a study's records (no loader here)."""
    return name in _RECORDED


def recorded_dataset(name, fingerprint):
    """Registers a stand-in for a dataset known only from a finished study's records (its fingerprint): its
    reports need no data; loading it is refused in one line."""
    if name in _REGISTERED:
        return

    def missing():
        raise DataError(f"dataset: Expected a dataset registered in this process (register_dataset in the script "
                        f"that defines it). Received: dataset={name!r}, known here only from a study's records")

    _REGISTERED[name] = missing
    _RECORDED.add(name)
    if fingerprint:
        _FINGERPRINTS[name] = fingerprint


def _registered_arrays(name):
    if name not in _ARRAYS:
        try:
            loaded = _REGISTERED[name]()
        except DataError:
            raise
        except Exception as error:
            raise DataError(f"dataset: Expected a loader that returns x_train, y_train, x_test, y_test. Received: "
                            f"dataset={name!r}, whose loader raised {type(error).__name__}: {error}") from None
        if not isinstance(loaded, (tuple, list)) or len(loaded) != 4:
            raise DataError(f"dataset: Expected a loader that returns 4 arrays: x_train, y_train, x_test, y_test. "
                            f"Received: dataset={name!r}, whose loader returned {type(loaded).__name__}")
        arrays = dict(zip(NPZ_KEYS, (np.asarray(a) for a in loaded)))
        problems = validate_arrays(arrays, name)
        if problems:
            raise DataError("\n".join(problems))
        _ARRAYS[name] = tuple(arrays[k] for k in NPZ_KEYS)
        _FINGERPRINTS[name] = arrays_digest(_ARRAYS[name])[:16]
    return _ARRAYS[name]


def fingerprint(name):
    """The fingerprint of a registered dataset's arrays (16 hex digits); ``None`` for the other datasets."""
    if not registered(name):
        return None
    if name not in _FINGERPRINTS:
        _registered_arrays(name)
    return _FINGERPRINTS[name]


def key_fields(name):
    """What a run key adds for a dataset beyond its name: a registered dataset's fingerprint (nothing otherwise)."""
    value = fingerprint(name)
    return {"fingerprint": value} if value else {}


def materialised(root, name):
    """Where a study keeps a registered dataset's arrays: ``<root>/data/<name>.npz``."""
    return pathlib.Path(root) / "data" / f"{name}.npz"


def to_materialise(root, name):
    """``(path, arrays)`` a study's folder should hold of a registered dataset, for its helper processes to read,
    or ``None`` when there is nothing to write (another dataset, or the file is there with the same data). The
    caller writes them (atomically, through the store)."""
    if not registered(name) or name in _RECORDED:
        return None
    path = materialised(root, name)
    arrays = _registered_arrays(name)
    if path.is_file() and _file_fingerprint(path) == _FINGERPRINTS[name]:
        return None
    return path, dict(zip(NPZ_KEYS, arrays), fingerprint=np.array(_FINGERPRINTS[name]))


def _file_fingerprint(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return str(f["fingerprint"])
    except Exception:
        return None


def use_materialised(root, name):
    """In a helper process: takes a registered dataset's arrays from the study's folder instead of its loader (a
    dataset given as arrays, or one whose script registers it only under its main guard, is registered from
    there)."""
    if not isinstance(name, str) or name in _ARRAYS:
        return False
    path = materialised(root, name)
    if not path.is_file():
        return False
    with np.load(path, allow_pickle=False) as f:
        _ARRAYS[name] = tuple(f[k] for k in NPZ_KEYS)
        _FINGERPRINTS[name] = str(f["fingerprint"])
    if name not in _REGISTERED:
        _REGISTERED[name] = lambda: _ARRAYS[name]
    return True


def load(name, validation_fraction=0.1, data_seed=0):
    """Loads a dataset as :class:`Splits`.

    Args:
        name: ``"digits"`` (scikit-learn's bundled 8x8 digits, offline),
            ``"mnist1d"`` (MNIST-1D sequences of length 40, generated offline;
            ``"mnist1d:N"`` generates N of them, 80% for training),
            ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` (through
            ``keras.datasets``, cached after the first download) or
            ``"npz:PATH"`` (arrays ``x_train, y_train, x_test, y_test``).
        validation_fraction: share of the training split held out.
        data_seed: seed of that split.

    Raises:
        DataError: naming the dataset and what is wrong or missing.

    Example:

    >>> splits = load("digits")
    >>> splits.x_train.shape[1:]
    (8, 8, 1)
    """
    if name == "digits":
        x_train, y_train, x_test, y_test = _digits()
    elif mnist1d_samples(name) is not None:
        x_train, y_train, x_test, y_test = _mnist1d(mnist1d_samples(name))
    elif name in _KERAS_FILES:
        x_train, y_train, x_test, y_test = _keras_dataset(name)
    elif isinstance(name, str) and name.startswith("npz:"):
        x_train, y_train, x_test, y_test = _npz(name[4:])
    elif registered(name):
        x_train, y_train, x_test, y_test = _registered_arrays(name)
        uint8 = x_train.dtype == np.uint8
        x_train, x_test = x_train.astype("float32"), x_test.astype("float32")
        if uint8:
            x_train, x_test = x_train / 255.0, x_test / 255.0
    else:
        raise DataError(f"dataset: Expected one of {list(DATASETS)}, 'mnist1d:N' (N from 1000 to 1000000), "
                        f"'npz:PATH' or a registered dataset {sorted(_REGISTERED)}. Received: dataset={name!r}")
    y_train = np.asarray(y_train).reshape(-1).astype("int32")
    y_test = np.asarray(y_test).reshape(-1).astype("int32")
    order = np.random.default_rng(data_seed).permutation(len(x_train))
    n_val = max(1, int(round(validation_fraction * len(x_train))))
    val, train = order[:n_val], order[n_val:]
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return Splits(
        name=name,
        x_train=np.ascontiguousarray(x_train[train]),
        y_train=y_train[train],
        x_val=np.ascontiguousarray(x_train[val]),
        y_val=y_train[val],
        x_test=np.ascontiguousarray(x_test),
        y_test=y_test,
        num_classes=num_classes,
    )
