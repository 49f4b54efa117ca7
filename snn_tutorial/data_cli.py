"""数据工具的命令行：python -m snn_tutorial.data --build-sample 重新生成随包附带的 MNIST 小样本。

--check-split 是 python -m snn_tutorial.split_check 的旧写法，仍然可用。
"""

from __future__ import annotations

from . import cli, data, split_check


@cli.command()
def main(argv=None) -> None:
    parser = cli.ArgumentParser(prog="python -m snn_tutorial.data", parents=[cli.common_parser("data_dir")],
                                description="数据工具：重新生成随包附带的 MNIST 小样本；检查验证集的划分方式。")
    parser.add_argument("--build-sample", action="store_true",
                        help="从 MNIST 测试集重新生成小样本（会覆盖随包的样本文件；数据目录里没有 MNIST 时先自动下载）")
    parser.add_argument("--check-split", action="store_true",
                        help="量一量 MNIST 训练集里相邻的图是否更像，以及连续一段与随机抽取作验证集时最近邻分类的错误率"
                             "（2 核 CPU 上约 1.5 分钟；数据目录里没有 MNIST 时先自动下载；同 python -m snn_tutorial.split_check）")
    args = parser.parse_args(argv)
    if args.build_sample:
        print(f"已写入 {data.build_sample(args.data_dir)}")
    elif args.check_split:
        print("\n".join(split_check.report(split_check.check_split(args.data_dir))))
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
