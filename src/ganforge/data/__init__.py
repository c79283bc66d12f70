"""Built-in offline datasets, image folders and npz arrays, held in memory as tensors."""

from ganforge.data import captions, images, paired, photos, restyle_photos, superres, toy  # noqa: F401  (registers the datasets)
from ganforge.data.base import DATASETS, Batch, BatchLoader, DataInfo, TensorData, load_dataset, split_holdout
from ganforge.data.toy import MIXTURES

__all__ = [
    "DATASETS",
    "MIXTURES",
    "Batch",
    "BatchLoader",
    "DataInfo",
    "TensorData",
    "load_dataset",
    "split_holdout",
]
