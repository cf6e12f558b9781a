"""CMU-MOSI, CMU-MOSEI and CH-SIMS in the MMSA layout (github.com/thuiar/MMSA, features by thuiar/MMSA-FET).

Text and labels come from `<data_dir>/<mosi|mosei|sims>/label.csv` (columns `video_id, clip_id, text, label,
label_T, label_A, label_V, annotation, mode`; `mode` is train / valid / test). Sample ids follow MMSA-FET:
`f"{video_id}$_${clip_id}"`, the `id` stored in the feature pickles, so text rows and features match by id.

Feature pickles (`Processed/unaligned_50.pkl` and the like) hold `{'train' | 'valid' | 'test': {'id', 'raw_text',
'audio' [N, T, Da], 'vision' [N, T, Dv], 'text' / 'text_bert', 'audio_lengths', 'vision_lengths',
'regression_labels', ...}}`. A pickle can run arbitrary code when loaded, so `load_mmsa_features` unpickles
through an allow-list of the numpy and builtin globals that arrays need, unless told `trust_pickle=True`.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from datasets import Array2D, Dataset

from hintgrpo.data.errors import DataError, RowGuard, require_columns
from hintgrpo.data.loaders import check_split, dataset_folder, make_sample, read_csv_records, register_loader
from hintgrpo.tasks import TaskSpec

# Our split names -> MMSA's `mode` values and feature-pickle keys.
MMSA_SPLITS = {"train": "train", "dev": "valid", "test": "test"}
MMSA_MODES = tuple(MMSA_SPLITS.values())

# Per-frame feature sizes of MMSA's released features (config_regression.json, `feature_dims` = [text, audio, vision]).
MMSA_FEATURE_DIMS = {
    "mosi": {"text": 768, "audio": 5, "vision": 20},
    "mosei": {"text": 768, "audio": 74, "vision": 35},
    "sims": {"text": 768, "audio": 33, "vision": 709},
}

# Everything a pickle of numpy arrays (protocols 2-5, numpy 1.x or 2.x) and builtin containers refers to
# (protocol 2 names builtins `__builtin__`).
SAFE_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # protocol 5 writes contiguous arrays through a buffer
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # protocol 2 writes bytes as _codecs.encode(str, "latin1")
    }
    | {
        (module, name)
        for module in ("builtins", "__builtin__")
        for name in ("set", "frozenset", "bytearray", "complex")
    }
)


def mmsa_id(video_id: str, clip_id: str) -> str:
    """The id MMSA-FET gives a clip (and stores in the feature pickles)."""
    return f"{video_id}$_${clip_id}"


@register_loader("mosi")
@register_loader("mosei")
@register_loader("sims")
def load_mmsa(data_dir: Path, split: str, task: TaskSpec, skip_bad_rows: bool) -> list[dict]:
    """MMSA `label.csv`: the multimodal sentiment score `label` in task.score_range ([-3, 3] or [-1, 1] for SIMS)."""
    check_split(task.dataset, split, tuple(MMSA_SPLITS))
    path = dataset_folder(data_dir, task.dataset, "label.csv") / "label.csv"
    columns, records = read_csv_records(path)
    require_columns(path, columns, ("video_id", "clip_id", "text", "label", "mode"))
    low, high = task.score_range
    guard, rows = RowGuard(path, skip_bad_rows), []
    for row_number, record in enumerate(records, start=1):
        if not guard.decodes(row_number, record):
            continue
        mode = guard.choice(row_number, "mode", record["mode"].strip(), MMSA_MODES)
        if mode != MMSA_SPLITS[split]:
            continue
        video_id = guard.text(row_number, "video_id", record["video_id"])
        clip_id = guard.text(row_number, "clip_id", record["clip_id"])
        text = guard.text(row_number, "text", record["text"])
        label = guard.number(row_number, "label", record["label"], low, high)
        if video_id is None or clip_id is None or text is None or label is None:
            continue
        sample_id = mmsa_id(video_id, clip_id)
        if guard.unique(row_number, "clip_id", sample_id, label):
            rows.append(make_sample(task, sample_id, text, label))
    guard.report()
    return rows


class ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle names a global outside SAFE_PICKLE_GLOBALS."""


class SafeUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and builtin containers; any other global (a function the pickle would call) is refused."""

    def __init__(self, file, *, source: str | Path = "<pickle>"):
        super().__init__(file)
        self.source = str(source)

    def find_class(self, module: str, name: str):
        if (module, name) not in SAFE_PICKLE_GLOBALS:
            raise ForbiddenGlobalError(
                f"{self.source}: refusing to load global {module}.{name}: only numpy arrays and builtin containers "
                "are allowed, and a pickle that names other globals can run arbitrary code. If you trust this file, "
                "pass trust_pickle=True."
            )
        return super().find_class(module, name)


def load_pickle(path: str | Path, *, trust_pickle: bool = False):
    """Unpickle `path`: through `SafeUnpickler` unless `trust_pickle`, then with plain pickle."""
    path = Path(path)
    with open(path, "rb") as handle:
        try:
            return pickle.load(handle) if trust_pickle else SafeUnpickler(handle, source=path).load()
        except ForbiddenGlobalError:
            raise
        except (EOFError, pickle.UnpicklingError) as error:
            raise DataError(path, None, None, f"not a readable pickle, truncated or corrupt? ({error})") from None


def infer_mmsa_dataset(path: Path) -> str | None:
    """`mosi`, `mosei` or `sims` from a folder on the path (MMSA keeps features in e.g. MOSI/Processed/)."""
    for part in reversed(path.parts[-4:-1]):
        if part.lower() in MMSA_FEATURE_DIMS:
            return part.lower()
    return None


def load_mmsa_features(
    path: str | Path,
    split: str,
    *,
    dataset: str | None = None,
    modalities: Sequence[str] = ("audio", "vision"),
    dims: Mapping[str, int] | None = None,
    trust_pickle: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """`{id: {modality: array [T, D]}}` for `split` (train / dev / test) of an MMSA feature pickle.

    Each array's last axis must be `dims[modality]` (default: MMSA_FEATURE_DIMS of `dataset`, which is read from
    the path when not given). Where the pickle stores `<modality>_lengths` (unaligned features) the padding is cut
    off. -inf values become 0, as MMSA's own data loader does for audio.
    """
    path = Path(path)
    check_split("mmsa features", split, tuple(MMSA_SPLITS))
    if dims is None:
        dataset = dataset or infer_mmsa_dataset(path)
        if dataset not in MMSA_FEATURE_DIMS:
            raise ValueError(
                f"{path}: cannot tell which feature sizes to expect; pass dataset= one of "
                f"{sorted(MMSA_FEATURE_DIMS)} or dims={{modality: size}}"
            )
        dims = MMSA_FEATURE_DIMS[dataset]
    data = load_pickle(path, trust_pickle=trust_pickle)
    mode = MMSA_SPLITS[split]
    if not isinstance(data, Mapping) or not isinstance(data.get(mode), Mapping):
        found = list(data) if isinstance(data, Mapping) else type(data).__name__
        raise DataError(path, None, mode, f"expected a dict with a {mode!r} dict of features; found {found}")
    block = data[mode]
    require_columns(path, list(block), ("id", *modalities))
    ids = [sample_id.decode() if isinstance(sample_id, bytes) else str(sample_id) for sample_id in block["id"]]
    features: dict[str, dict[str, np.ndarray]] = {}
    for sample_id in ids:
        if sample_id in features:
            raise DataError(path, sample_id, "id", f"{mode}: id appears more than once")
        features[sample_id] = {}
    for modality in modalities:
        if modality not in dims:
            raise ValueError(f"no expected feature size for modality {modality!r}; dims has {sorted(dims)}")
        arrays, lengths = block[modality], block.get(f"{modality}_lengths")
        if not hasattr(arrays, "__len__"):
            raise DataError(path, None, modality, f"{mode}: expected an array, got {type(arrays).__name__}")
        if len(arrays) != len(ids):
            raise DataError(path, None, modality, f"{mode}: {len(arrays)} feature rows for {len(ids)} ids")
        for index, sample_id in enumerate(ids):
            array = np.asarray(arrays[index])
            if array.ndim != 2 or array.shape[-1] != dims[modality]:
                raise DataError(
                    path,
                    sample_id,
                    modality,
                    f"{mode}: features of shape {array.shape}; expected [frames, {dims[modality]}]",
                )
            if lengths is not None:
                length = int(lengths[index])
                if length < 0:
                    raise DataError(path, sample_id, f"{modality}_lengths", f"{mode}: negative length {length}")
                array = array[:length]
            features[sample_id][modality] = np.where(np.isneginf(array), 0, array)
    return features


def attach_features(
    dataset: Dataset,
    features: Mapping[str, Mapping[str, np.ndarray]],
    modalities: Sequence[str] = ("audio", "vision"),
    source: str | Path = "features",
) -> Dataset:
    """`dataset` with a float32 [frames, size] column per modality, matched by `id`.

    A row without features, or whose features are not [frames, size] with the size of the other rows, is an error
    naming its row, id and modality.
    """
    columns: dict[str, list] = {modality: [] for modality in modalities}
    for row, sample_id in enumerate(dataset["id"]):
        for modality in modalities:
            if sample_id not in features or modality not in features[sample_id]:
                raise DataError(source, row, modality, f"no {modality} features for id {sample_id!r}")
            array = np.asarray(features[sample_id][modality], dtype=np.float32)
            size = columns[modality][0].shape[-1] if columns[modality] else array.shape[-1]
            if array.ndim != 2 or array.shape[-1] != size:
                raise DataError(
                    source, row, modality, f"id {sample_id!r}: shape {array.shape}, expected [frames, {size}]"
                )
            columns[modality].append(array)
    for modality, column in columns.items():
        feature = Array2D(shape=(None, column[0].shape[-1]), dtype="float32") if column else None
        dataset = dataset.add_column(modality, [array.tolist() for array in column], feature=feature)
    return dataset
