"""命令行评估：python -m snn_tutorial.evaluate [--checkpoint PATH] [--data-dir DIR]

默认评估随包附带的权重；最后一行打印测试准确率。
"""

from __future__ import annotations

import argparse
import sys

from . import data, runtime
from .checkpoint import SHIPPED, CheckpointError, load_checkpoint
from .training import evaluate


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m snn_tutorial.evaluate", description="在测试集上评估一个检查点（默认：随包附带的权重）。")
    p.add_argument("--checkpoint", default=None, help="检查点路径（默认：随包附带的 csnn_mnist.pt）")
    p.add_argument("--data-dir", default=None, help=f"数据目录（默认：环境变量 {data.DATA_ENV}，否则仓库下的 data/）")
    p.add_argument("--device", default="auto", help="auto（默认）、cpu、cuda、mps")
    p.add_argument("--threads", type=int, default=None, help="CPU 线程数（默认：全部可用核）")
    p.add_argument("--batch-size", type=int, default=256, help="评估的批大小（默认 256）")
    p.add_argument("--limit", type=int, default=None, help="只评估前 N 张测试图（默认全部）")
    return p


def main(argv=None) -> float:
    args = build_parser().parse_args(argv)
    try:
        device = runtime.select_device(args.device)
        runtime.set_cpu_threads(args.threads)
        model, ckpt = load_checkpoint(args.checkpoint, device)
        dataset = ckpt["metrics"].get("dataset", "mnist")
        test = data.tensor_batches(dataset, False, args.data_dir, limit=args.limit, batch_size=args.batch_size, device=device)
    except (CheckpointError, data.DataError, runtime.DeviceError) as err:
        print(f"错误：{err}", file=sys.stderr)
        raise SystemExit(2)
    _, acc = evaluate(model, test, device)
    name = args.checkpoint or f"随包附带的权重 {SHIPPED.name}"
    print(f"检查点：{name}（模型 {ckpt['model']}，配置 {ckpt['config']}）")
    print(f"测试准确率：{acc:.2%}（{dataset} 测试集 {len(test.y)} 张）")
    return acc


if __name__ == "__main__":
    main()
