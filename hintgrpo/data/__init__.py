"""Datasets: loaders for the formats users have, prompts and preprocessing steps."""

from hintgrpo.data.errors import DataError
from hintgrpo.data.generic import load_generic, register_generic_dataset
from hintgrpo.data.loaders import first_rows, load_task_dataset, resolve_data_dir
from hintgrpo.data.mmsa import MMSA_FEATURE_DIMS, attach_features, load_mmsa_features
from hintgrpo.data.sst import parse_sst_tree

__all__ = [
    "MMSA_FEATURE_DIMS",
    "DataError",
    "attach_features",
    "load_generic",
    "load_mmsa_features",
    "first_rows",
    "load_task_dataset",
    "parse_sst_tree",
    "register_generic_dataset",
    "resolve_data_dir",
]
