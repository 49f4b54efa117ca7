"""命令行评估：python -m snn_tutorial.evaluate [--checkpoint PATH] [--dataset NAME] [--data-dir DIR]

默认评估随包附带的权重，数据集默认取检查点训练时用的那个；最后一行打印测试准确率。
"""

from __future__ import annotations

from . import cli, data, runtime
from .checkpoint import SHIPPED, CheckpointError, load_checkpoint, run_inputs
from .training import evaluate


def build_parser() -> cli.ArgumentParser:
    common = cli.common_parser("checkpoint", "data_dir", "device", "threads",
                               checkpoint="检查点路径（默认：随包附带的 csnn_mnist.pt）",
                               data_dir=(f"数据目录（默认：环境变量 {data.DATA_ENV}，否则仓库下的 data/）；mnist-sample 是随包样本，不读数据目录"))
    p = cli.ArgumentParser(prog="python -m snn_tutorial.evaluate", description="在测试集上评估一个检查点（默认：随包附带的权重）。",
                           parents=[common])
    p.add_argument("--dataset", choices=sorted(data.DATASETS), default=None,
                   help="在哪个数据集的测试集上评估（默认：检查点训练时用的数据集）")
    p.add_argument("--batch-size", type=cli.positive_int, default=256, help="评估的批大小，≥ 1（默认 256）")
    p.add_argument("--limit", type=cli.positive_int, default=None, help="只评估前 N 张测试图，N ≥ 1（默认全部）")
    return p


def choose_dataset(ckpt: dict, requested: str | None, data_dir: str | None) -> tuple[str, list[str]]:
    """决定在哪个数据集上评估，并返回要告诉用户的说明（不悄悄忽略任何参数）。"""
    trained_on = run_inputs(ckpt).get("dataset", "mnist")
    notes = []
    if not isinstance(trained_on, str):   # 被改写过的检查点：数据集不是字符串（例如列表）
        trained_on = repr(trained_on)
    if requested is None:
        if trained_on not in data.DATASETS:
            raise CheckpointError(
                f"检查点记录的训练数据集 {trained_on!r} 不是本教程认识的数据集（可选：{', '.join(sorted(data.DATASETS))}）。"
                f"请用 --dataset 指定在哪个数据集上评估。"
            )
        dataset = trained_on
    else:
        dataset = requested
        if requested != trained_on:
            notes.append(f"提示：检查点是在 {trained_on} 上训练的，按 --dataset 在 {dataset} 的测试集上评估。")
    if dataset == "mnist-sample" and data_dir is not None:
        notes.append("提示：mnist-sample 是随包附带的样本，不读数据目录，所以没有用到 --data-dir；"
                     "想在数据目录里的完整 MNIST 上评估，请加 --dataset mnist。")
    return dataset, notes


@cli.command()
def main(argv=None) -> float:
    args = build_parser().parse_args(argv)
    device = runtime.select_device(args.device)
    runtime.set_cpu_threads(args.threads)
    model, ckpt = load_checkpoint(args.checkpoint, device)
    dataset, notes = choose_dataset(ckpt, args.dataset, args.data_dir)
    for note in notes:
        print(note)
    test = data.tensor_batches(dataset, False, args.data_dir, limit=args.limit, batch_size=args.batch_size, device=device)
    _, acc = evaluate(model, test, device)
    name = args.checkpoint or f"随包附带的权重 {SHIPPED.name}"
    print(f"检查点：{name}（模型 {ckpt['model']}，配置 {ckpt['config']}）")
    print(f"测试准确率：{acc:.2%}（{dataset} 测试集 {len(test.y)} 张）")
    return acc


if __name__ == "__main__":
    main()
