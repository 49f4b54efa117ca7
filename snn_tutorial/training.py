"""训练与评估循环：笔记本 03/04 与命令行共用。

要点：每批之后 functional.reset_net 清空神经元状态；评估在 torch.no_grad 下进行；
学习率按余弦退火；可写 TensorBoard 日志；返回历史记录用于画图。
速度（python -m snn_tutorial.bench 实测）：自动混合精度（CUDA 上 float16；CPU 有原生 bfloat16 指令时 bfloat16），
卷积用 channels_last 内存布局。
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import torch
from spikingjelly.activation_based import functional
from tqdm.auto import tqdm

from . import distributed, runtime
from .validate import int_at_least, positive_real


@dataclass
class History:
    """每次评估时记录一行。seconds 是累计的纯训练时间（不含评估）。

    eval_loss / eval_acc 是在传给 fit 的评估数据上量的：传验证集时（命令行的 --val、笔记本 03）是验证集上的数，
    传测试集时是测试集上的数。
    """

    epoch: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def time_to(self, accuracy: float) -> float | None:
        """评估准确率第一次达到 accuracy 时的累计训练秒数；没达到返回 None。"""
        return next((s for s, a in zip(self.seconds, self.eval_acc) if a >= accuracy), None)

    def record(self, epoch: float, train: tuple[float, float], evaluated: tuple[float, float], lr: float, seconds: float) -> None:
        """追加一行：train 与 evaluated 都是 (损失, 准确率)。"""
        for key, value in zip(("epoch", "train_loss", "train_acc", "eval_loss", "eval_acc", "lr", "seconds"),
                              (epoch, *train, *evaluated, lr, seconds)):
            getattr(self, key).append(value)

    def log_last(self, writer: SafeWriter | None, step: int) -> None:
        """把最新一行写进 TensorBoard（标签 train/loss、eval/acc……）。"""
        if writer is not None:
            for key in ("train_loss", "train_acc", "eval_loss", "eval_acc", "lr"):
                writer.add_scalar(key.replace("_", "/", 1), getattr(self, key)[-1], step)


class SafeWriter:
    """TensorBoard 日志：写不进去（磁盘满、目录被删、没有权限……）时只警告一次，之后不再写日志，训练照常进行。

    日志只是训练的副产品，不能因为它丢掉一次训练。
    """

    def __init__(self, log_dir):
        self.log_dir, self.writer = log_dir, None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir)
        except Exception as err:   # 目录建不起来、磁盘已满……
            self._give_up(err)

    def _give_up(self, err: BaseException) -> None:
        writer, self.writer = self.writer, None
        reason = runtime.describe_os_error(err) if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
        try:
            print(f"警告：TensorBoard 日志写不进 {self.log_dir}（{reason}），之后不再写日志；训练照常进行，检查点照常保存。",
                  file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass

    def add_scalar(self, *args, **kwargs) -> None:
        if self.writer is None:
            return
        try:
            self.writer.add_scalar(*args, **kwargs)
        except Exception as err:
            self._give_up(err)

    def close(self) -> None:
        if self.writer is None:
            return
        try:
            self.writer.close()
        except Exception as err:
            self._give_up(err)


def autocast(device: torch.device, amp: bool):
    """前向与损失的自动混合精度上下文：类型由 runtime.amp_dtype 决定；不适用时什么也不做。"""
    dtype = runtime.amp_dtype(device, amp)
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """把模型里的 4 维参数（卷积核）换成 channels_last 内存布局（数值不变，原地修改），返回 model。"""
    return model.to(memory_format=torch.channels_last)


def channels_last_input(x: torch.Tensor) -> torch.Tensor:
    """图像批 [N, C, H, W] 换成 channels_last 布局，与卷积核一致；其他形状原样返回。"""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _core(model: torch.nn.Module) -> torch.nn.Module:
    """DistributedDataParallel 包装下的原模型（它带着 loss 方法）。"""
    return getattr(model, "module", model)


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches, device: str | torch.device = "cpu", amp: bool = False,
             channels_last: bool = True) -> tuple[float, float]:
    """返回 (平均损失, 准确率)。多进程时各进程评估自己那一份数据，结果跨进程汇总。

    channels_last=True（默认）时把模型的卷积核换成 channels_last 布局（原地修改；前向的数值不变，只是更快）。
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    if channels_last:
        to_channels_last(model)
    loss_fn = _core(model).loss
    functional.reset_net(model)   # 先清空状态：之前被打断的前向（例如在笔记本里按了中断）留下的膜电位不能混进第一批
    total_loss, correct, count = 0.0, 0, 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = channels_last_input(x)
        with autocast(device, amp):
            out = model(x)
            loss = loss_fn(out.float(), y)
        total_loss += loss.item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
        count += len(y)
        functional.reset_net(model)
    model.train(was_training)
    total_loss, correct, count = distributed.sum_across(total_loss, correct, count, device=device)
    if count == 0:
        raise ValueError("没有可评估的样本：batches 是空的。请检查传入的数据（例如 limit 或数据集是否为空）。")
    return total_loss / count, correct / count


def fit(model: torch.nn.Module, train_batches, eval_batches, epochs: int = 1, lr: float = 1e-3, schedule: str = "cosine",
        device: str | torch.device = "cpu", amp: bool = True, channels_last: bool = True, evals_per_epoch: int = 1,
        log_dir: str | None = None, progress: bool = True, on_eval=None) -> History:
    """用 Adam 训练 epochs 轮，每轮评估 evals_per_epoch 次，返回 History。

    schedule："cosine"（按步余弦退火到 0）或 "none"（固定学习率）。
    amp：CUDA 上 float16 + GradScaler；CPU 上只在有原生 bfloat16 指令时用 bfloat16（runtime.amp_dtype），否则不起作用。
    channels_last：把卷积核与每批图像换成 channels_last 布局（CPU 上实测更快）。前向的数值不变，
    但反向用的算法不同，参数与 channels_last=False 时并不逐位相同（都是正确的结果，只是求和顺序不同）。
    log_dir 给出时写 TensorBoard 日志；日志写不进去只警告一次，训练照常进行（见 SafeWriter）。
    on_eval(history) 在每次评估后调用。
    多进程训练时传入 DistributedDataParallel 包装后的模型：训练指标跨进程汇总，
    只有 0 号进程显示进度条、写 TensorBoard 日志。
    """
    epochs = int_at_least("epochs", epochs, 1)
    evals_per_epoch = int_at_least("evals_per_epoch", evals_per_epoch, 1)
    lr = positive_real("学习率 lr", lr)
    if len(train_batches) == 0:
        raise ValueError("训练数据是空的：train_batches 一批也没有。")
    device = torch.device(device)
    model.to(device)
    if channels_last:
        to_channels_last(model)
    loss_fn = _core(model).loss
    main = distributed.is_main()
    steps_per_epoch = len(train_batches)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = make_scheduler(optimizer, schedule, total_steps=epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=runtime.amp_dtype(device, amp) == torch.float16)
    writer = SafeWriter(log_dir) if log_dir is not None and main else None
    eval_at = {math.ceil(steps_per_epoch * k / evals_per_epoch) for k in range(1, evals_per_epoch + 1)}

    history = History()
    train_seconds, step = 0.0, 0
    model.train()
    try:
        for epoch in range(epochs):
            if hasattr(train_batches, "set_epoch"):
                train_batches.set_epoch(epoch)
            running = RunningMetrics()
            bar = tqdm(train_batches, total=steps_per_epoch, desc=f"第 {epoch + 1}/{epochs} 轮", disable=not (progress and main), leave=False)
            start = time.perf_counter()
            for i, (x, y) in enumerate(bar, start=1):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if channels_last:
                    x = channels_last_input(x)
                with autocast(device, amp):
                    out = model(x)
                    loss = loss_fn(out.float(), y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None:
                    scheduler.step()
                functional.reset_net(model)
                step += 1
                running.add(loss, out, y)
                if writer is not None and step % 50 == 0:
                    writer.add_scalar("train/loss_step", loss.item(), step)
                if i in eval_at:
                    train_seconds += time.perf_counter() - start
                    # 评估总用 float32；布局跟训练一致（channels_last=False 时不能在训练中途换掉卷积核的布局）
                    evaluated = evaluate(model, eval_batches, device, channels_last=channels_last)
                    history.record(epoch + i / steps_per_epoch, running.summary(device), evaluated,
                                   optimizer.param_groups[0]["lr"], train_seconds)
                    bar.set_postfix(eval_acc=f"{evaluated[1]:.2%}")
                    history.log_last(writer, step)
                    if on_eval is not None:
                        on_eval(history)
                    running = RunningMetrics()
                    start = time.perf_counter()
            bar.close()
    finally:
        if writer is not None:
            writer.close()
    return history


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int):
    """schedule="cosine"：按步余弦退火到 0；"none"：固定学习率（返回 None）。"""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if schedule == "none":
        return None
    raise ValueError(f"未知的学习率策略 {schedule!r}：可选 cosine、none")


class RunningMetrics:
    """两次评估之间训练批的累计损失与正确数（多进程时 summary 跨进程汇总）。"""

    def __init__(self):
        self.loss, self.correct, self.count = 0.0, 0, 0

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        self.loss += loss.item() * len(y)
        self.correct += (out.argmax(1) == y).sum().item()
        self.count += len(y)

    def summary(self, device: torch.device) -> tuple[float, float]:
        """(平均损失, 准确率)。"""
        loss, correct, count = distributed.sum_across(self.loss, self.correct, self.count, device=device)
        return loss / count, correct / count
