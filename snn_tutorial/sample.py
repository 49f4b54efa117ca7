"""随包附带的 MNIST 小样本（1000 张，每类 100 张）：离线演示与测试用。"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import torch

from .data_sources import CorruptDataError, DataPermissionError
from .runtime import describe_os_error


SAMPLE_FILE = Path(__file__).resolve().parent / "assets" / "mnist_sample.npz"
SAMPLE_PER_CLASS = 100
SAMPLE_TRAIN = 800  # 当作数据集 "mnist-sample" 使用时，前 800 张为训练集


def _sample_broken(reason: str) -> CorruptDataError:
    return CorruptDataError(
        f"随包附带的小样本 {SAMPLE_FILE} 已损坏或不完整（{reason}）。\n"
        f"请恢复它：在仓库里运行 git checkout -- snn_tutorial/assets/{SAMPLE_FILE.name}，或重新安装本教程的包；"
        f"有完整的 MNIST 时也可以用 python -m snn_tutorial.data --build-sample 重新生成。"
    )


def load_sample() -> tuple[torch.Tensor, torch.Tensor]:
    """随包附带的 MNIST 小样本：(图像 uint8 [1000,1,28,28], 标签 int64 [1000])，每类 100 张。

    来自 MNIST 测试集（Yann LeCun、Corinna Cortes、Christopher J.C. Burges，CC BY-SA 3.0）。
    文件缺失、被截断或内容不对时抛出中文的 CorruptDataError（说明怎样恢复），没有读权限时抛出 DataPermissionError。
    """
    import numpy as np

    try:
        with np.load(SAMPLE_FILE, allow_pickle=False) as f:
            images, labels = f["images"].copy(), f["labels"]
    except PermissionError as err:
        raise DataPermissionError(f"没有权限读取随包附带的小样本 {SAMPLE_FILE}（{describe_os_error(err, reading=True)}）。"
                                  f"文件本身可能完好：请检查它的权限（例如 ls -l）。") from err
    except FileNotFoundError as err:
        raise _sample_broken("文件不存在") from err
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        # 截断或被改写的 .npz：numpy 会报 BadZipFile、EOFError，或建议 allow_pickle=True（不要照做：那会执行文件里的代码）
        raise _sample_broken(f"{type(err).__name__}") from err
    if (images.dtype != np.uint8 or images.shape[1:] != (1, 28, 28) or labels.shape != (len(images),)
            or len(images) != 10 * SAMPLE_PER_CLASS or labels.max(initial=0) > 9):
        raise _sample_broken(f"内容不对：图像 {images.dtype} {images.shape}，标签 {labels.shape}")
    return torch.from_numpy(images), torch.from_numpy(labels.astype("int64"))

