"""命令行工具（train、evaluate、bench、data）共用的部分：参数校验、中文报错、退出码、Ctrl+C 与 SIGTERM。

原则：坏的输入在开始干活之前就被发现。参数在解析时由 type= 校验（不合法 → 一行中文错误，退出码 2）；
输出位置在训练开始前试写一次；运行中的错误只打印一段中文说明，不打印 Python 的调用栈。

退出码：0 成功；1 工作做完了，但结果没能按要求保存（已另存到别处）；2 输入有误，在开始工作前就停下了；
130 被 Ctrl+C 中断；143 收到 SIGTERM（例如 kill 或作业系统要求退出）。
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import re
import shutil
import signal
import sys
import threading
from pathlib import Path

from . import runtime

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class OutputError(RuntimeError):
    """输出位置（--out、--log-dir）不能用。"""


class Terminated(KeyboardInterrupt):
    """收到 SIGTERM。把它当作一种中断来处理，清理代码（删除临时文件等）照样会运行。"""


def interrupt_exit_code(exc: BaseException) -> int:
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def interrupt_name(exc: BaseException) -> str:
    return "收到 SIGTERM" if isinstance(exc, Terminated) else "Ctrl+C"


def is_main_rank() -> bool:
    """多进程（torchrun）时只有 0 号进程打印中断提示。"""
    return int(os.environ.get("RANK", 0)) == 0


# ---------------------------------------------------------------- 参数校验（argparse 的 type=）
def _parse_int(text: str) -> int:
    try:
        return int(str(text).strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为整数，收到 {text!r}") from None


def int_range(minimum: int, maximum: int | None = None, hint: str = ""):
    """整数，且 minimum ≤ 值（≤ maximum）。hint 附在错误消息后面，说明为什么有这个范围。"""

    def check(text: str) -> int:
        value = _parse_int(text)
        if value < minimum or (maximum is not None and value > maximum):
            span = f"{minimum} 到 {maximum} 之间的整数" if maximum is not None else f"≥ {minimum} 的整数"
            raise argparse.ArgumentTypeError(f"应为 {span}，收到 {text!r}{hint}")
        return value

    check.__name__ = "int"
    return check


positive_int = int_range(1)
non_negative_int = int_range(0)
seed_int = int_range(0, runtime.SEED_MAX)


def positive_float(text: str) -> float:
    """有限的正数（拒绝 0、负数、nan、inf）。"""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为数字，收到 {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"应为有限的正数，收到 {text!r}")
    return value


def float_range(minimum: float, maximum: float, hint: str = ""):
    """有限的数，且 minimum ≤ 值 ≤ maximum。hint 附在错误消息后面。"""

    def check(text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"应为数字，收到 {text!r}") from None
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"应为 {minimum:g} 到 {maximum:g} 之间的数，收到 {text!r}{hint}")
        return value

    check.__name__ = "float"
    return check


def device_name(text: str) -> str:
    """设备名：在解析时就确认写法正确、设备可用（auto、cpu、cuda、cuda:N；不支持 mps）。"""
    try:
        runtime.select_device(text)
    except runtime.DeviceError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return str(text).strip().lower()


DEVICE_HELP = "计算设备：auto（默认：有 CUDA 用 CUDA，否则 CPU）、cpu、cuda、cuda:1。不支持 mps：SpikingJelly 2.0 的神经元只能在 CPU 和 CUDA 上运行"


# ---------------------------------------------------------------- 中文的解析错误
def _translate_detail(detail: str) -> str:
    rules = [
        (r"invalid choice: '?([^']*?)'? \(choose from (.*)\)", lambda m: f"取值 {m[1]!r} 无效，可选：{m[2].replace(chr(39), '')}"),
        (r"expected one argument", lambda m: "需要一个值"),
        (r"expected (\d+) arguments", lambda m: f"需要 {m[1]} 个值"),
        (r"expected at least one argument", lambda m: "至少需要一个值"),
        (r"expected at most one argument", lambda m: "至多接受一个值"),
        (r"not allowed with argument (.*)", lambda m: f"不能与 {m[1]} 同时使用"),
        (r"ignored explicit argument (.*)", lambda m: f"不接受取值 {m[1]}"),
        (r"invalid \S+ value: (.*)", lambda m: f"取值 {m[1]} 无效"),
    ]
    for pattern, make in rules:
        m = re.fullmatch(pattern, detail, flags=re.S)
        if m:
            return make(m)
    return detail


def translate_argparse(message: str) -> str:
    """把 argparse 的英文错误改写成中文；我们自己的校验函数与 parser.error 给出的本来就是中文。"""
    if re.match(r"[^\n]*[\u4e00-\u9fff]", message) and not message.startswith("argument "):
        return message
    m = re.fullmatch(r"argument (\S+?): (.*)", message, flags=re.S)
    if m:
        return f"参数 {m[1]}：{_translate_detail(m[2])}"
    for pattern, make in [
        (r"unrecognized arguments: (.*)", lambda m: f"无法识别的参数：{m[1]}"),
        (r"the following arguments are required: (.*)", lambda m: f"缺少必需的参数：{m[1]}"),
        (r"ambiguous option: (\S+) could match (.*)", lambda m: f"参数 {m[1]} 有歧义，可能是：{m[2]}"),
    ]:
        m = re.fullmatch(pattern, message, flags=re.S)
        if m:
            return make(m)
    return f"命令行参数有误：{message}"


class ArgumentParser(argparse.ArgumentParser):
    """解析失败时打印一行中文错误（不打印英文的 usage），退出码 2。"""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"错误：{translate_argparse(message)}（用 {self.prog} --help 查看全部参数）\n")


# ---------------------------------------------------------------- 输出位置
def resolve_out(text: str | os.PathLike, default_name: str) -> Path:
    """--out 的约定：已存在的目录、或以 / 结尾的路径表示“放在这个文件夹里”，文件名用 default_name。"""
    raw = os.fspath(text)
    if not raw.strip():
        raise OutputError("--out 不能是空字符串：请给出文件名（例如 checkpoints/csnn.pt）或目录（例如 checkpoints/）。")
    path = Path(raw).expanduser()
    if path.is_dir() or raw.endswith(("/", os.sep)):
        path = path / default_name
    return path


def check_output_file(path: Path, option: str = "--out", size_hint: int = 0, not_started: str = "训练还没有开始") -> None:
    """开始干活前确认能把文件写到 path：目录可建、可新建文件、磁盘空间够。不能时抛出 OutputError。
    not_started 说明此时什么还没发生（写进报错里）。"""
    if path.is_dir():
        raise OutputError(f"{option} {path} 是一个已存在的目录，不能当作文件名。{not_started}；请换一个文件名。")
    problem = runtime.writable_dir_problem(path.parent)
    if problem is None and size_hint:
        free = shutil.disk_usage(path.parent).free
        if free < 2 * size_hint:
            problem = f"磁盘空间不足：{path.parent} 所在的磁盘只剩 {free / 1e6:.1f} MB，检查点约需 {size_hint / 1e6:.1f} MB"
    if problem is not None:
        raise OutputError(f"{option} {path} 不能用：{problem}。{not_started}；请换一个可写的位置。")


def check_output_dir(path: str | os.PathLike, option: str = "--log-dir") -> None:
    """确认 path 是（或能建成）一个可写的目录。"""
    if not os.fspath(path).strip():
        raise OutputError(f"{option} 不能是空字符串：请给出一个目录，例如 runs/csnn。")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} 是一个文件，不是目录。训练还没有开始；请换一个目录。")
    problem = runtime.writable_dir_problem(path)
    if problem is not None:
        raise OutputError(f"{option} {path} 不能用：{problem}。训练还没有开始；请换一个可写的目录。")


# ---------------------------------------------------------------- 运行：中文报错、Ctrl+C、SIGTERM
def fail(message: str, code: int = EXIT_USAGE):
    """打印“错误：…”到标准错误并以 code 退出。"""
    print(f"错误：{message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


@contextlib.contextmanager
def handle_signals():
    """在主线程里：Ctrl+C 一定变成 KeyboardInterrupt，SIGTERM 变成 Terminated，结束后恢复原来的处理方式。

    torchrun 的非 0 号进程保留默认的 SIGTERM（torchrun 靠它立即结束卡在通信里的进程）。
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        raise Terminated()

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, on_term) if is_main_rank() else None
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_int)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


def command(interrupted: str = "已中断（{how}）。"):
    """装饰命令行的 main(argv)：已知的错误 → “错误：…”，退出码 2；Ctrl+C/SIGTERM → 一行中文，退出码 130/143。

    interrupted 是被中断时打印的话，{how} 换成“Ctrl+C”或“收到 SIGTERM”。
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(argv=None):
            from .checkpoint import CheckpointError
            from .data import DataError

            with handle_signals():
                try:
                    return func(argv)
                except (DataError, CheckpointError, runtime.DeviceError, OutputError) as err:
                    fail(str(err))
                except KeyboardInterrupt as exc:
                    if is_main_rank():
                        print(interrupted.format(how=interrupt_name(exc)), file=sys.stderr, flush=True)
                    raise SystemExit(interrupt_exit_code(exc)) from None

        return wrapper

    return decorate
