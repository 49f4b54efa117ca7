"""基准测试：python -m snn_tutorial.bench

在当前机器上打印：
1. 本教程模型的训练吞吐量（图/秒）：
   (a) 朴素做法：DataLoader + 逐样本 torchvision 变换，单步模式逐个时间步循环，float32，PyTorch 默认线程数，批 64；
   (b) 教程做法（fit 的做法）：张量批次，多步模式，自动混合精度（CPU 有原生 bfloat16 指令时），channels_last，
       set_cpu_threads() 选的线程数，默认批大小；再从 (b) 每次只去掉一项，看每一项各值多少；
2. 原始模型与本教程模型（快速配方：默认配方只训练 2 轮、不做平移增强）达到 98.0% 和 99.0% 测试准确率所需的训练时间；
3. 随包权重在完整测试集上的准确率与评估用时（float32）；
4. 笔记本 08 的 STDP 网络（100 与 400 个兴奋神经元，默认配置，1 个线程）不用标签训练的吞吐量（张/秒）；
最后把这些数字与目标逐项对照（✓ 达到 / ✗ 未达到）。
数字随机器而变；README 与笔记本里引用的数字都来自这个脚本的输出。
"""

from __future__ import annotations

import itertools
import math
import time

import torch

from . import cli, data, quick, runtime, training
from .checkpoint import load_checkpoint
from .models import build_model
from .recipes import FAST, RECIPES, Recipe
from .training import evaluate

# 目标：(说明, 单位格式, 比较方向, 目标值)。笔记本 03 完整模式的准确率与训练用时由笔记本自己报告。
TARGETS = {
    "speedup": ("(b) / (a) 训练吞吐量", "{:.2f} 倍", ">=", 2.0),
    "time_to_99": ("快速配方训练到测试准确率 ≥ 99.0% 的纯训练时间", "{:.0f} 秒", "<=", 60.0),
    "shipped_acc": ("随包权重的测试准确率", "{:.2%}", ">=", 0.997),
    "eval_seconds": ("用随包权重评估全部 10,000 张测试图", "{:.1f} 秒", "<=", 5.0),
}


def throughput(model, batches, steps: int, warmup: int = 3, amp: bool = True, fast_layout: bool = True) -> float:
    """在 CPU 上训练 warmup + steps 步，返回后 steps 步的图/秒。

    amp、fast_layout 与 fit 的做法相同（自动混合精度、channels_last 布局）；朴素做法把两者都关掉。
    """
    from spikingjelly.activation_based import functional

    cpu = torch.device("cpu")
    if fast_layout:
        training.to_channels_last(model)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    model.train()
    it = itertools.cycle(batches)
    done, start = 0, None
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        x, y = next(it)
        if fast_layout:
            x = training.channels_last_input(x)
        with training.autocast(cpu, amp):
            out = model(x)
            loss = model.loss(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        functional.reset_net(model)
        if i >= warmup:
            done += len(y)
    return done / (time.perf_counter() - start)


NAIVE_BATCH = 64   # 朴素做法的批大小（本教程早先的默认值）


def measure_throughputs(root, steps: int) -> dict:
    """(a) 朴素做法与 (b) 教程做法的训练吞吐量，以及从 (b) 每次只去掉一项的结果（看每一项各值多少）。"""
    default_threads = torch.get_num_threads()
    chosen = runtime.available_cores()
    batch = RECIPES["csnn"].batch_size
    low = runtime.amp_dtype("cpu")
    results = {}

    def run(label, loader, step_mode="m", threads=chosen, amp=True, fast_layout=True, baseline=None):
        torch.set_num_threads(threads)
        runtime.seed_everything(0)
        model = build_model("csnn").set_step_mode(step_mode)
        results[label] = speed = throughput(model, loader, steps, amp=amp, fast_layout=fast_layout)
        ratio = f"（(b) 是它的 {baseline / speed:.2f} 倍）" if baseline else ""
        print(f"  {label}：{speed:.0f} 图/秒{ratio}", flush=True)
        return speed

    fast = data.tensor_batches("mnist", True, root, batch_size=batch)
    print(f"训练吞吐量（本教程模型，每项 {steps} 步；CPU 混合精度：{low if low else '不可用（没有原生 bfloat16 指令）'}）：")
    a = run(f"(a) 朴素：DataLoader，单步，float32，默认 {default_threads} 线程，批 {NAIVE_BATCH}",
            data.dataloader("mnist", True, root, batch_size=NAIVE_BATCH), "s", default_threads, amp=False, fast_layout=False)
    b = run(f"(b) 教程：张量批次，多步，混合精度，channels_last，{chosen} 线程，批 {batch}", fast)
    print("  从 (b) 每次只去掉一项：")
    ablations = {
        "DataLoader 代替张量批次": dict(loader=data.dataloader("mnist", True, root, batch_size=batch)),
        "单步代替多步": dict(loader=fast, step_mode="s"),
        "不用混合精度（float32）": dict(loader=fast, amp=False),
        "不用 channels_last": dict(loader=fast, fast_layout=False),
        f"批 {NAIVE_BATCH} 代替批 {batch}": dict(loader=data.tensor_batches("mnist", True, root, batch_size=NAIVE_BATCH)),
        "1 个线程": dict(loader=fast, threads=1),
    }
    for label, kwargs in ablations.items():
        run(f"  {label}", baseline=b, **kwargs)
    print(f"  (b) / (a) = {b / a:.2f} 倍")
    torch.set_num_threads(chosen)
    results["speedup"] = b / a
    return results


def time_to_accuracy(name: str, root, epochs: int, evals_per_epoch: int = 4, limit: int | None = None,
                     recipe: Recipe | None = None) -> dict:
    """按配方（默认是该模型的默认配方）训练 epochs 轮，不提前停止；返回首次达到 98%/99% 的时间与训练结束时的准确率。"""
    recipe = (recipe or RECIPES[name]).replace(epochs=epochs)
    runtime.seed_everything(0)
    model = build_model(name)
    images, labels = data.load_raw("mnist", train=True, root=root)
    train = recipe.train_batches(images[:limit], labels[:limit])
    test = data.tensor_batches("mnist", False, root, batch_size=256)
    history = recipe.fit(model, train, test, evals_per_epoch=evals_per_epoch, progress=False)
    reached = {t: history.time_to(t) for t in (0.98, 0.99)}
    final = history.eval_acc[-1]
    desc = "，".join(f"首次达到 {t:.1%}：{'%.0f 秒' % s if s is not None else '未达到'}" for t, s in reached.items())
    print(f"  {name:<9s} 批 {recipe.batch_size}，平移 {recipe.max_shift}，{epochs} 轮：{desc}；"
          f"训练结束时 {final:.2%}（最高 {max(history.eval_acc):.2%}），共训练 {history.seconds[-1]:.0f} 秒", flush=True)
    return {"reached": reached, "final": final, "seconds": history.seconds[-1]}


def shipped_evaluation(root, limit: int | None = None) -> tuple[float, float]:
    """随包权重在 MNIST 测试集上的准确率与评估用时（秒；float32，先预热一批，不含读文件）。

    另外量一次折叠 BN（笔记本 07）之后的评估用时与准确率，打印出来对照；教程的评估不折叠。
    """
    from .export import fold_bn

    model, _ = load_checkpoint(None, "cpu")
    test = data.tensor_batches("mnist", False, root, batch_size=256, limit=limit)
    results = {}
    for label, net in (("随包权重", model), ("折叠 BN 后", fold_bn(model))):
        evaluate(net, [next(iter(test))])                    # 预热：第一次调用有一次性的开销
        start = time.perf_counter()
        _, acc = evaluate(net, test)
        results[label] = (acc, time.perf_counter() - start)
        print(f"  {label}：测试准确率 {acc:.2%}（{len(test.y)} 张），评估用时 {results[label][1]:.1f} 秒", flush=True)
    return results["随包权重"]


def target_report(measured: dict) -> list[str]:
    """把测得的数字与 TARGETS 逐项对照；没有测的项（None）注明“未测”，没有达到的时间记为 math.inf。"""
    lines = []
    for key, (label, fmt, direction, goal) in TARGETS.items():
        value = measured.get(key)
        if value is None:
            lines.append(f"  - {label}：未测（目标 {direction.replace('>=', '≥').replace('<=', '≤')} {fmt.format(goal)}）")
            continue
        ok = value >= goal if direction == ">=" else value <= goal
        sign = "≥" if direction == ">=" else "≤"
        shown = "未达到" if math.isinf(value) else fmt.format(value)
        lines.append(f"  {'✓' if ok else '✗'} {label}：{shown}（目标 {sign} {fmt.format(goal)}）")
    return lines


def time_epoch(root, device: str, compile_model: bool = False) -> float:
    """在指定设备上按默认配方（含数据增强）完整训练一轮默认模型（CUDA 上自动混合精度），返回图/秒。GPU 计时用这一项。"""
    dev = runtime.select_device(device)
    runtime.seed_everything(0)
    model = build_model("csnn").to(dev)
    net = torch.compile(model) if compile_model else model
    recipe = RECIPES["csnn"]
    limit = 2048 if quick.is_quick() else None
    images, labels = data.load_raw("mnist", train=True, root=root)
    train = recipe.train_batches(images[:limit], labels[:limit], device=dev)
    test = data.tensor_batches("mnist", False, root, batch_size=256, device=dev, limit=256)
    recipe.fit(net, train, test, epochs=1, device=dev, progress=False)   # 第一轮含编译与预热，不计
    history = recipe.fit(net, train, test, epochs=1, device=dev, progress=False)
    speed = len(train.y) / history.seconds[-1]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU（{torch.get_num_threads()} 线程）"
    print(f"  一轮训练（{len(train.y)} 张，{name}{'，torch.compile' if compile_model else ''}）："
          f"{history.seconds[-1]:.1f} 秒，{speed:.0f} 图/秒", flush=True)
    return speed


def stdp_throughput(root, images: int) -> dict[int, float]:
    """STDP 网络不用标签训练 images 张图的吞吐量（张/秒，墙钟与本进程 CPU 时间各一个），1 个线程。"""
    from . import stdp

    x, _ = data.load_raw("mnist", train=True, root=root)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    result = {}
    try:
        for n in (100, 400):
            info = stdp.DiehlCookNetwork(stdp.STDPConfig(n_neurons=n)).fit(x[:images])
            result[n] = info["images_per_s"]
            print(f"  STDP，{n} 个兴奋神经元，{images} 张图：{info['images_per_s']:.0f} 张/秒"
                  f"（按本进程 CPU 时间 {images / max(info['cpu_seconds'], 1e-9):.0f} 张/秒）")
    finally:
        torch.set_num_threads(threads)
    return result


@cli.command()
def main(argv=None) -> None:
    common = cli.common_parser("data_dir", "compile", compile="与 --epoch-device 一起用：比较 torch.compile 前后的速度")
    p = cli.ArgumentParser(prog="python -m snn_tutorial.bench", description="在本机测量训练吞吐量与达到目标准确率所需的时间。",
                           parents=[common])
    p.add_argument("--steps", type=cli.int_range(1, 10_000, hint="；每项测量 60 步就够了，再多只是等得更久"), default=None,
                   help="每项吞吐量测量的训练步数，1 … 10000（默认 60，快速模式 5）")
    p.add_argument("--skip-accuracy", action="store_true", help="只测吞吐量，不测达到目标准确率的时间")
    p.add_argument("--skip-stdp", action="store_true", help="不测 STDP 网络（笔记本 08）的训练吞吐量")
    p.add_argument("--epoch-device", type=cli.device_name, default=None,
                   help="只做一件事：在该设备（cpu、cuda、cuda:1）上计时训练一轮默认模型并报告图/秒（先跑一轮预热）")
    args = p.parse_args(argv)
    if args.compile and args.epoch_device is None:
        p.error("--compile 只能与 --epoch-device 一起用")
    if args.epoch_device:
        runtime.set_cpu_threads()
        print(f"PyTorch {torch.__version__}；设备 {args.epoch_device}")
        eager = time_epoch(args.data_dir, args.epoch_device)
        if args.compile:
            compiled = time_epoch(args.data_dir, args.epoch_device, compile_model=True)
            print(f"  torch.compile / eager = {compiled / eager:.2f} 倍")
        return
    is_quick = quick.is_quick()
    steps = args.steps if args.steps is not None else (5 if is_quick else 60)
    print(f"PyTorch {torch.__version__}，可用 CPU 核 {runtime.available_cores()}，PyTorch 默认线程 {torch.get_num_threads()}"
          f"{'（快速模式）' if is_quick else ''}")
    measured = {"speedup": measure_throughputs(args.data_dir, steps)["speedup"]}
    if not args.skip_accuracy:
        runtime.set_cpu_threads()
        print("达到目标测试准确率所需的训练时间（纯训练，不含评估；每轮评估 4 次，只记录，不提前停止）：")
        limit = 2000 if is_quick else None
        time_to_accuracy("original", args.data_dir, epochs=1 if is_quick else 4, limit=limit)
        fast = time_to_accuracy("csnn", args.data_dir, epochs=1 if is_quick else FAST.epochs, limit=limit, recipe=FAST)
        measured["time_to_99"] = fast["seconds"] if fast["final"] >= 0.99 else math.inf
        print("随包权重的评估：")
        measured["shipped_acc"], measured["eval_seconds"] = shipped_evaluation(args.data_dir, limit=1000 if is_quick else None)
    if not args.skip_stdp:
        print("STDP 网络（笔记本 08）不用标签训练的吞吐量（1 个线程）：")
        stdp_throughput(args.data_dir, 64 if is_quick else 2000)
    print("与目标对照" + ("（快速模式只用了少量数据，这些数字不能与目标比较）" if is_quick else "") + "：")
    print("\n".join(target_report(measured)))


if __name__ == "__main__":
    main()
