"""数据层的入口：笔记本与命令行都写 `from snn_tutorial import data`，再用 data.load_raw、data.TensorBatches……

实现按关注点分在几个小模块里：
- data_sources：支持的数据集、数据目录（参数 > 环境变量 SNN_DATA_DIR > 仓库下的 data/）、错误类型；
- raw_checks：原始文件的检查（路径、大小、文件头、MD5、全黑图）；
- raw_files：读入原始文件（必要时解压或下载），生成随包小样本；
- batches：标准化、数据增强、张量批次、验证集划分、DataLoader；
- sample：随包附带的 1000 张小样本；
- split_check：验证集划分的检查（命令行）。
"""

from __future__ import annotations

from .batches import (
    VALIDATION_SEED, VALIDATION_SPLITS, SampleDataset, TensorBatches, dataloader, normalize, random_affine, random_shift,
    split_validation, tensor_batches, torchvision_dataset,
)
from .data_sources import (
    ALL_FILES, DATA_ENV, DATASETS, OFFICIAL_MD5, CorruptDataError, DataError, DataNotFoundError, DataPathError,
    DataPermissionError, DatasetInfo, dataset_info, display_path, repo_root, resolve_data_root,
)
from .raw_checks import BLANK_LIMIT, cache_dir, file_md5
from .raw_files import build_sample, load_raw
from .sample import SAMPLE_FILE, SAMPLE_PER_CLASS, SAMPLE_TRAIN, load_sample

__all__ = [
    "ALL_FILES", "BLANK_LIMIT", "DATASETS", "DATA_ENV", "OFFICIAL_MD5", "SAMPLE_FILE", "SAMPLE_PER_CLASS", "SAMPLE_TRAIN",
    "VALIDATION_SEED", "VALIDATION_SPLITS", "CorruptDataError", "DataError", "DataNotFoundError", "DataPathError",
    "DataPermissionError", "DatasetInfo", "SampleDataset", "TensorBatches", "build_sample", "cache_dir", "dataloader",
    "dataset_info", "display_path", "file_md5", "load_raw", "load_sample", "normalize", "random_affine", "random_shift",
    "repo_root", "resolve_data_root", "split_validation", "tensor_batches", "torchvision_dataset",
]


if __name__ == "__main__":
    # python -m snn_tutorial.data --build-sample：命令行在 data_cli 里（数据层本身不导入命令行的模块）
    from snn_tutorial.data_cli import main

    main()
