"""Each row's features or media files, joined to the task's rows by `id` for the recipes and evaluation."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from hintgrpo.configs import MediaArguments
from hintgrpo.data.errors import DataError, RowGuard, require_columns
from hintgrpo.data.generic import read_jsonl_records
from hintgrpo.data.loaders import read_csv_records
from hintgrpo.data.mmsa import MMSA_FEATURE_DIMS, attach_features, load_mmsa_features
from hintgrpo.tasks import get_task


def with_media(dataset: Dataset, args: MediaArguments, split: str) -> Dataset:
    """`dataset` with the columns `args.modality_route` reads: MMSA features from `args.features_file` (its `split`),
    or media paths from the manifest `args.media_file`. Rows that already hold the columns need neither file."""
    if args.modality_route == "mse_adapter":
        if args.features_file is not None:
            dataset = attach_feature_file(dataset, args, split)
        columns, option = args.feature_columns, "--features_file (an MMSA feature pickle)"
    elif args.modality_route == "native":
        if args.media_file is not None:
            dataset = attach_media_file(dataset, args.media_file, args.media_columns)
        columns, option = args.media_columns, "--media_file (a manifest of each id's media files)"
    else:
        return dataset
    missing = [name for name in columns if name not in dataset.column_names]
    if missing:
        raise ValueError(
            f"modality_route={args.modality_route!r} reads columns {missing}, which the rows lack: pass {option}"
        )
    return dataset


def attach_feature_file(dataset: Dataset, args: MediaArguments, split: str) -> Dataset:
    mmsa = get_task(dataset[0]["task"]).dataset
    if args.feature_dims is not None:
        dims = dict(zip(args.feature_columns, args.feature_dims, strict=True))
    elif mmsa in MMSA_FEATURE_DIMS:
        dims = MMSA_FEATURE_DIMS[mmsa]
    else:
        raise ValueError(
            f"{mmsa!r} is not an MMSA dataset: give the frame sizes of {args.feature_columns} (--feature_dims)"
        )
    features = load_mmsa_features(
        args.features_file, split, modalities=args.feature_columns, dims=dims, trust_pickle=args.trust_pickle
    )
    return attach_features(dataset, features, args.feature_columns, source=args.features_file)


def read_media_manifest(path: Path, columns: list[str]) -> dict[str, tuple[int, dict]]:
    """`{id: (row, record)}` of a JSONL or CSV manifest (rows numbered from 1; JSONL: lines)."""
    if path.suffix == ".csv":
        header, records = read_csv_records(path)
        numbered = list(enumerate(records, start=1))
    elif path.suffix == ".jsonl":
        numbered = read_jsonl_records(path, RowGuard(path))
        header = sorted({key for _, record in numbered for key in record})
    else:
        raise ValueError(f"{path}: a media manifest is a .jsonl or .csv file")
    require_columns(path, header, ["id", *columns])
    manifest = {}
    for row, record in numbered:
        sample_id = str(record.get("id", "")).strip()
        if not sample_id:
            raise DataError(path, row, "id", "missing id")
        if sample_id in manifest:
            raise DataError(path, row, "id", f"id {sample_id!r} appears more than once")
        manifest[sample_id] = (row, record)
    return manifest


def attach_media_file(dataset: Dataset, media_file: str, columns: list[str]) -> Dataset:
    """`dataset` with a file-path column per media column, from the manifest's entry for each row's id."""
    path = Path(media_file)
    if not path.is_file():
        raise FileNotFoundError(f"media manifest {path} not found")
    manifest = read_media_manifest(path, columns)
    paths: dict[str, list[str]] = {name: [] for name in columns}
    for sample_id in dataset["id"]:
        if sample_id not in manifest:
            raise DataError(path, None, "id", f"no entry for id {sample_id!r}")
        row, record = manifest[sample_id]
        for name in columns:
            value = record.get(name)
            if not isinstance(value, str) or not value.strip():
                raise DataError(path, row, name, f"id {sample_id!r}: no {name} file ({value!r})")
            paths[name].append(str(path.parent / value.strip()))  # an absolute path stays as it is
    for name, column in paths.items():
        dataset = dataset.add_column(name, column)
    return dataset
