"""训练命令行的保存部分：默认文件名、覆盖前的检查、保存失败时另存、被中断或出错时保存最近一次评估的权重。

检查点里 "metrics" 只放测得的数（准确率、用时、训练了几轮、是否被中断），"run" 放这次运行的输入（数据集、配方、种子、命令……）。
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch

from . import cli, distributed, quick, runtime
from .checkpoint import run_inputs, save_checkpoint
from .file_formats import foreign_format
from .errors import TutorialError

KNOWN_FAILURES = (OSError, MemoryError, TutorialError)   # 训练中途可能出现、不是程序错误的异常：只给中文说明，不打印调用栈


def default_file_name(model: str, dataset: str, is_quick: bool = False) -> str:
    """默认的检查点文件名：csnn.pt、csnn-fashion-mnist.pt；快速模式加 -quick（csnn-quick.pt），不与完整训练的结果同名。"""
    stem = model if dataset == "mnist" else f"{model}-{dataset}"
    return f"{stem}-quick.pt" if is_quick else f"{stem}.pt"


def existing_out_problem(out: Path, is_quick: bool) -> str | None:
    """--out 已有文件时，覆盖它会不会毁掉别的东西：不是 PyTorch 检查点的文件（笔记本、数据、导出的模型……）一律不覆盖；
    快速模式不覆盖完整训练的检查点。可以覆盖时返回 None。"""
    try:
        if not out.is_file() or out.stat().st_size == 0:
            return None
        with open(out, "rb") as f:
            head = f.read(64)
    except OSError:
        return None   # 读不了：交给写入时的检查
    foreign = foreign_format(out, head)
    if foreign is not None:
        return f"--out {out} 已存在，而且不是检查点：{foreign.removeprefix('它')}。训练不会覆盖它；请换一个 --out"
    if not is_quick:
        return None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            old = torch.load(out, map_location="cpu", weights_only=True)
        was_quick = bool(run_inputs(old).get("quick")) if isinstance(old, dict) else False
    except Exception:   # 坏的或别的格式的检查点：在快速模式下同样不冒险覆盖
        was_quick = False
    if was_quick:
        return None
    return (f"现在是快速模式（--quick 或 {quick.QUICK_ENV}=1，只训练很少的数据），而 --out {out} 是一个完整训练的检查点："
            f"快速模式不会覆盖它。请换一个 --out（例如 {out.with_name(out.stem + '-quick.pt')}），"
            f"或去掉 --quick、取消 {quick.QUICK_ENV} 后做完整训练")


def checkpoint_bytes(model: torch.nn.Module) -> int:
    """检查点大小的估计：参数与缓冲区的字节数，再加一点文件结构的开销。"""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) + 64 * 1024


def save_with_fallback(path: Path, model, name: str, config: dict, metrics: dict,
                       run: dict | None = None) -> tuple[Path | None, OSError | None]:
    """先存到 path；写不进去（OSError）就依次另存到系统临时目录、当前目录。返回 (实际保存的位置, path 的错误)。"""
    try:
        return save_checkpoint(path, model, name, config, metrics, run=run), None
    except OSError as err:
        first_error = err
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (Path(tempfile.gettempdir()), Path.cwd()):
        rescue = folder / f"snn_tutorial-{path.stem}-{stamp}-{os.getpid()}.pt"
        try:
            return save_checkpoint(rescue, model, name, config, metrics, run=run), first_error
        except OSError:
            continue
    return None, first_error


@contextlib.contextmanager
def _ignore_termination():
    """中断后的那次保存很快（几 MB）：期间忽略 SIGTERM 与 SIGHUP（torchrun 收到 Ctrl+C 后会再发 SIGTERM），
    再按一次 Ctrl+C 仍可放弃。"""
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        try:
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
        except ValueError:  # 不在主线程
            break
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def untouched(out: Path) -> str:
    return f"{out} 保持原样" if out.exists() else f"没有写入 {out}"


MAX_PARTIALS = 1000


def _save_snapshot(out: Path, model, name: str, snapshot: dict, run: dict) -> tuple[Path | None, str]:
    """把最近一次评估时的权重存到 <out>.interrupted.pt；已有这个文件（上一次中断留下的）时不覆盖它，
    依次改用 .interrupted-2.pt、-3……返回 (实际保存的位置, 附加说明)。写不进去时另存到临时目录或当前目录。"""
    key = "val_acc" if snapshot["watch"] == "验证" else "test_acc"
    metrics = {"interrupted": True, "epochs": snapshot["epoch"], key: snapshot["acc"], "train_seconds": snapshot["seconds"]}
    model.load_state_dict(snapshot["state"])
    first = out.with_name(f"{out.stem}.interrupted.pt")
    for k in range(1, MAX_PARTIALS + 1):
        partial = first if k == 1 else out.with_name(f"{out.stem}.interrupted-{k}.pt")
        if os.path.lexists(partial):
            continue
        try:
            saved = save_checkpoint(partial, model, name, model.config, metrics, overwrite=False, run=run)
        except FileExistsError:   # 同时有别的进程存了同名文件
            continue
        except OSError as err:
            saved, _ = save_with_fallback(partial, model, name, model.config, metrics, run)
            note = f"（{partial} 写不进去：{runtime.describe_os_error(err)}）" if saved is not None else ""
            return saved, note
        note = f"（{first.name} 是以前留下的，没有覆盖它）" if k > 1 else ""
        return saved, note
    saved, _ = save_with_fallback(first.with_name(f"{out.stem}.interrupted-{MAX_PARTIALS + 1}.pt"), model, name, model.config,
                                  metrics, run)
    return saved, ""


def save_after_stop(headline: str, out: Path, model, name: str, snapshot: dict, run: dict) -> None:
    """训练停下了（中断或出错）：保存最近一次评估时的权重，用一段中文说明；headline 是开头，例如“已中断（Ctrl+C）”。"""
    if not snapshot:
        cli.eprint(f"{headline}：还没有完成任何一次评估，没有保存任何文件（{untouched(out)}）。")
        return
    try:
        with _ignore_termination():
            saved, note = _save_snapshot(out, model, name, snapshot, run)
    except KeyboardInterrupt:
        cli.eprint(f"{headline}：保存中途再次被中断，没有保存任何文件（{untouched(out)}）。")
        return
    where = f"已保存到 {saved}{note}" if saved is not None else "也没能保存（各处都写不进去）"
    cli.eprint(f"{headline}：第 {snapshot['epoch']:.2f} 轮评估时的权重（{snapshot['watch']}准确率 {snapshot['acc']:.2%}）{where}；"
               f"{untouched(out)}。")


def save_interrupted(exc: BaseException, out: Path, model, name: str, snapshot: dict, run: dict) -> None:
    """训练被中断（Ctrl+C、SIGTERM、SIGHUP）：把最近一次评估时的权重存到 <out>.interrupted.pt，并用一行中文说明。"""
    save_after_stop(f"已中断（{cli.interrupt_name(exc)}）", out, model, name, snapshot, run)


def stop_after_error(plan, model: torch.nn.Module, snapshot: dict, exc: Exception):
    """训练中途出错：0 号进程保存最近一次评估的权重并说明原因（不认识的错误另附调用栈），以退出码 1 结束。plan 是 train.Plan。"""
    known = isinstance(exc, KNOWN_FAILURES) or cli.is_memory_error(exc) or distributed.is_communication_error(exc)
    out = plan.out
    if plan.main_process:
        try:
            save_after_stop(f"错误：训练中途出错（{cli.describe_error(exc)}）", out, model, plan.args.model, snapshot,
                            plan.run_inputs())
        except Exception as save_error:   # 连保存也出错：说明原来的错误，不掩盖它
            cli.eprint(f"错误：训练中途出错（{cli.describe_error(exc)}），保存最近一次评估时的权重也失败了"
                       f"（{cli.describe_error(save_error)}）；{untouched(out)}。")
        if not known:
            cli.eprint("这多半是程序本身的错误；下面是调用栈，报告问题时请附上：")
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
    elif not known:
        raise exc
    else:
        cli.eprint(f"错误：进程 {plan.rank}：{cli.describe_error(exc)}")
    raise SystemExit(cli.EXIT_FAILED) from None


def save(plan, model: torch.nn.Module, result) -> int:
    """把训练好的模型存到 --out（写不进去就另存），返回退出码。只在 0 号进程调用。plan、result 是 train.Plan、train.Result。"""
    out = plan.out
    metrics = {"test_acc": result.test_acc, "train_seconds": result.history.seconds[-1],
               "wall_seconds": result.wall_seconds, "epochs": plan.recipe.epochs}
    if result.val_acc is not None:
        metrics["val_acc"] = result.val_acc
    if not all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point()):
        cli.eprint(f"错误：训练发散了，参数里出现了 NaN 或无穷大，所以没有保存（{untouched(out)}）。请减小 --lr 后重新训练。")
        return cli.EXIT_FAILED
    try:
        saved, err = save_with_fallback(out, model, plan.args.model, model.config, metrics, plan.run_inputs())
    except KeyboardInterrupt as exc:
        cli.eprint(f"已中断（{cli.interrupt_name(exc)}）：保存被打断，临时文件已删除，{untouched(out)}；本次训练的结果没有保存。")
        raise SystemExit(cli.interrupt_exit_code(exc)) from None
    if err is None:
        plan.say(f"检查点已保存到 {saved}；总耗时 {result.wall_seconds:.0f} 秒")
        return 0
    where = (f"训练好的模型已另存到 {saved}，请把它移到需要的位置" if saved is not None
             else "也无法另存到系统临时目录或当前目录：本次训练的结果没有保存")
    cli.eprint(f"错误：无法把检查点写入 {out}（{runtime.describe_os_error(err)}）；{where}。")
    return cli.EXIT_FAILED
