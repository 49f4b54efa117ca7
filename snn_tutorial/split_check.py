"""验证集该怎样从训练集里留出：量一量 MNIST 训练集里相邻的图是否更像（常出自同一个书写者）。

命令行：python -m snn_tutorial.split_check [--data-dir 数据目录]（2 核 CPU 上约 1.5 分钟）
（python -m snn_tutorial.data --check-split 是同一件事的旧写法。）
"""

from __future__ import annotations

import os

import torch

from . import cli
from . import data
from .data import VALIDATION_SEED


def _nearest_neighbour_wrong(query: torch.Tensor, query_y: torch.Tensor, ref: torch.Tensor, ref_y: torch.Tensor) -> torch.Tensor:
    """按像素的欧氏距离找最近邻，返回每个查询样本是否被最近邻分错（布尔张量）。"""
    ref_sq = (ref * ref).sum(1)
    wrong = [ref_y[(ref_sq - 2 * q @ ref.T).argmin(1)] != qy for q, qy in zip(query.split(1000), query_y.split(1000))]
    return torch.cat(wrong)


def check_split(root: str | os.PathLike | None = None, folds: int = 12, download: bool = True) -> dict[str, float]:
    """量一量 MNIST 训练集里相邻的图是否更像（常出自同一个书写者），以及这对验证集的划分意味着什么。

    返回（并由 python -m snn_tutorial.data --check-split 打印）：
    - adjacent / random：同一类别里，按原顺序相邻的两张图与随机配对的两张图的平均像素距离；
    - knn_tail / knn_random：把训练集分成 folds 份，每份用其余各份做最近邻分类的错误率，
      分别按连续的段（与 how="tail" 同样的切法）与按固定种子随机分份；knn_tail_last 是最后一段的错误率。
    """
    images, labels = data.load_raw("mnist", train=True, root=root, download=download)
    x, y = images.flatten(1).float().div(255), labels
    gen = torch.Generator().manual_seed(VALIDATION_SEED)
    adjacent, random_pairs = [], []
    for c in range(10):
        xc = x[y == c]
        adjacent.append((xc[1:] - xc[:-1]).norm(dim=1))
        random_pairs.append((xc - xc[torch.randperm(len(xc), generator=gen)]).norm(dim=1))
    result = {"adjacent": torch.cat(adjacent).mean().item(), "random": torch.cat(random_pairs).mean().item()}
    size = len(y) // folds
    result.update(folds=folds, fold_size=size)
    for name, order in (("knn_tail", torch.arange(len(y))),
                        ("knn_random", torch.randperm(len(y), generator=torch.Generator().manual_seed(VALIDATION_SEED)))):
        wrong = []
        for k in range(folds):
            held = torch.zeros(len(y), dtype=torch.bool)
            held[order[k * size:(k + 1) * size]] = True
            wrong.append(_nearest_neighbour_wrong(x[held], y[held], x[~held], y[~held]).sum().item())
        result[name] = sum(wrong) / (size * folds)
        result[name + "_last"] = wrong[-1] / size
    return result


def report(r: dict) -> list[str]:
    """check_split 的结果写成三行中文。"""
    return [
        f"同一类别里按原顺序相邻的两张图：平均像素距离 {r['adjacent']:.3f}；随机配对：{r['random']:.3f}",
        f"训练集分成 {r['folds']} 份、每份用其余各份做最近邻分类的错误率：连续的段 {r['knn_tail']:.2%}，随机分份 {r['knn_random']:.2%}",
        f"  其中最后一段（{r['fold_size']} 张，即 --val {r['fold_size']} --val-split tail 的验证集）：{r['knn_tail_last']:.2%}",
    ]


@cli.command()
def main(argv=None) -> None:
    parser = cli.ArgumentParser(prog="python -m snn_tutorial.split_check", parents=[cli.common_parser("data_dir")],
                                description="量一量 MNIST 训练集里相邻的图是否更像，以及连续一段与随机抽取作验证集时最近邻分类的错误率"
                                            "（数据目录里没有 MNIST 时先自动下载）。")
    args = parser.parse_args(argv)
    print("\n".join(report(check_split(args.data_dir))))


if __name__ == "__main__":
    main()
