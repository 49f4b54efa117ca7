"""命令行工具（train、evaluate、bench、export、data）共用的部分：参数校验、中文报错、退出码、Ctrl+C、SIGTERM 与 SIGHUP。

原则：坏的输入在开始干活之前就被发现。参数在解析时由 type= 校验（不合法 → 一行中文错误，退出码 2）；
输出位置在训练开始前试写一次；运行中的错误只打印一段中文说明，不打印 Python 的调用栈。

退出码：0 成功；1 工作没有按要求完成（结果已另存到别处，或运行中出错、训练发散）；2 输入有误，在开始工作前就停下了；
129 收到 SIGHUP（终端或 SSH 连接断开）；130 被 Ctrl+C 中断；143 收到 SIGTERM（例如 kill 或作业系统要求退出）。
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import math
import os
import re
import signal
import sys
import threading

from . import runtime
from .errors import TutorialError
from .outputs import (  # noqa: F401 -- 输出位置的检查定义在 outputs 里，命令行从这里用它们
    TEMP_SUFFIX_BYTES, OutputError, check_output_dir, check_output_file, existing_file_problem, resolve_out, same_file)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_HANGUP = 129
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """收到 SIGTERM。把它当作一种中断来处理，清理代码（删除临时文件等）照样会运行。"""


class HungUp(Terminated):
    """收到 SIGHUP：终端窗口被关掉、SSH 连接断开。与 SIGTERM 一样处理（保存最近一次评估的权重）。"""


def interrupt_exit_code(exc: BaseException) -> int:
    if isinstance(exc, HungUp):
        return EXIT_HANGUP
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def interrupt_name(exc: BaseException) -> str:
    if isinstance(exc, HungUp):
        return "收到 SIGHUP：终端或 SSH 连接已断开"
    return "收到 SIGTERM" if isinstance(exc, Terminated) else "Ctrl+C"


def is_main_rank() -> bool:
    """多进程（torchrun）时只有 0 号进程打印中断提示。"""
    return int(os.environ.get("RANK", 0)) == 0


def eprint(*args, **kwargs) -> None:
    """打印到标准错误；终端已经关闭（SIGHUP 之后）或管道已断开时不再打印，也不让它打断保存与退出。"""
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("flush", True)
    try:
        print(*args, **kwargs)
    except (OSError, ValueError):
        _detach(kwargs["file"])


def say(*args, **kwargs) -> None:
    """打印到标准输出（进度、结果）；输出被关掉（例如 | head 之后、终端断开）时改为不打印，训练照常进行。"""
    kwargs.setdefault("file", sys.stdout)
    try:
        print(*args, **kwargs)
    except (OSError, ValueError):
        _detach(kwargs["file"])


def settle_streams() -> None:
    """退出前把标准输出与标准错误清空；清不进去（终端已断开、管道已关闭）就换成 /dev/null，
    免得解释器退出时再报 BrokenPipeError、把退出码改成 120。"""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            _detach(stream)


def _detach(stream) -> None:
    """把写不进去的 sys.stdout / sys.stderr 换成 /dev/null：之后的打印与退出时的 flush 都不再出错。"""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is stream:
            with contextlib.suppress(OSError):
                setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))


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
seed_int = int_range(0, runtime.SEED_MAX)
thread_count = int_range(1, runtime.max_threads(), hint=f"；本机有 {os.cpu_count()} 个 CPU 核，线程比核多只会更慢")
THREADS_HELP = f"CPU 线程数，1 … {runtime.max_threads()}"


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


# ---------------------------------------------------------------- 共用的参数（父解析器）
def _common_flags() -> dict[str, tuple[str, dict]]:
    from .data import DATA_ENV   # data 不导入 cli，这里没有导入环

    return {
        "data_dir": ("--data-dir", dict(default=None, help=f"数据目录（默认：环境变量 {DATA_ENV}，否则仓库下的 data/）")),
        "threads": ("--threads", dict(type=thread_count, default=None, help=f"{THREADS_HELP}（默认：全部可用核）")),
        "device": ("--device", dict(type=device_name, default="auto", help=DEVICE_HELP)),
        "checkpoint": ("--checkpoint", dict(default=None, help="检查点路径")),
        "out": ("--out", dict(default=None, help="输出文件")),
        "compile": ("--compile", dict(action="store_true", help="用 torch.compile 编译模型（实验性，默认关闭）")),
    }


def common_parser(*names: str, **helps: str) -> argparse.ArgumentParser:
    """几个命令行共用的参数（--data-dir、--threads、--device、--checkpoint、--out、--compile），
    作为 argparse 的父解析器（parents=[...]）：类型、校验与默认值只在这里定义一次。
    names 选用哪几个（按名字，如 "data_dir"）；helps 按名字换掉说明（各命令的默认值不同，例如 --out 的默认文件名）。"""
    flags = _common_flags()
    unknown = set(names) - set(flags) | set(helps) - set(names)
    if unknown:
        raise ValueError(f"未知的共用参数：{', '.join(sorted(unknown))}")
    parent = argparse.ArgumentParser(add_help=False)
    for name in names:
        flag, spec = flags[name]
        parent.add_argument(flag, **{**spec, **({"help": helps[name]} if name in helps else {})})
    return parent


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


# ---------------------------------------------------------------- 运行：中文报错、Ctrl+C、SIGTERM、SIGHUP
def fail(message: str, code: int = EXIT_USAGE):
    """打印“错误：…”到标准错误并以 code 退出。"""
    eprint(f"错误：{message}")
    raise SystemExit(code)


@contextlib.contextmanager
def handle_signals():
    """在主线程里：Ctrl+C 一定变成 KeyboardInterrupt，SIGTERM 变成 Terminated，SIGHUP 变成 HungUp，结束后恢复原来的处理方式。

    torchrun 的非 0 号进程保留默认的 SIGTERM 与 SIGHUP（torchrun 靠它们立即结束卡在通信里的进程）。
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        raise Terminated()

    def on_hup(signum, frame):
        raise HungUp()

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}
    if is_main_rank():
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_term)
        if hasattr(signal, "SIGHUP"):
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ignore_interrupts_at_exit() -> None:
    """解释器退出时（运行 atexit 里的收尾函数，例如 torch._dynamo 的）再按 Ctrl+C 不应打印调用栈：退出阶段忽略它。"""
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _register_exit_guard() -> None:
    # atexit 按注册的逆序运行：每次都挪到最后注册，保证它在别的收尾函数之前运行
    atexit.unregister(_ignore_interrupts_at_exit)
    atexit.register(_ignore_interrupts_at_exit)


def _tolerant_stdout() -> None:
    """标准输出按严格的 UTF-8 编码时，打印含非 UTF-8 字节的路径会抛出 UnicodeEncodeError：改为用转义序列显示。"""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            if getattr(stream, "errors", None) == "strict":
                stream.reconfigure(errors="backslashreplace")


def is_memory_error(err: BaseException) -> bool:
    """内存（或线程等系统资源）不够：MemoryError，或 PyTorch 的 “can't allocate memory” / “out of memory”。"""
    text = str(err).lower()
    return isinstance(err, MemoryError) or (isinstance(err, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text or "resource temporarily unavailable" in text))


def describe_error(err: BaseException) -> str:
    """运行中出现的异常说成一句中文：磁盘、内存、多进程通信……认不出的异常给出类型与第一行消息。"""
    first = (str(err).strip().splitlines() or [""])[0][:300]
    if isinstance(err, OSError):
        return runtime.describe_os_error(err)
    if is_memory_error(err):
        return f"内存或系统资源不足（{type(err).__name__}: {first}）"
    from . import distributed   # 延迟导入：distributed 会导入 torch.distributed

    if distributed.is_communication_error(err):
        return (f"与其他进程的通信中断（{first}）：另一个进程可能已经退出、被暂停或卡住，"
                f"等待超过 {distributed.timeout_seconds():g} 秒（环境变量 {distributed.TIMEOUT_ENV}）就放弃")
    return f"{type(err).__name__}: {first}"


def command(interrupted: str = "已中断（{how}）。"):
    """装饰命令行的 main(argv)：本教程的错误（errors.TutorialError）→ “错误：…”，退出码 2（多进程没能建立时 1）；内存不足 → 退出码 1；
    Ctrl+C/SIGTERM/SIGHUP → 一行中文，退出码 130/143/129。

    interrupted 是被中断时打印的话，{how} 换成“Ctrl+C”“收到 SIGTERM”等。
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(argv=None):
            _tolerant_stdout()
            _register_exit_guard()
            with handle_signals():
                try:
                    return func(argv)
                except SystemExit:
                    settle_streams()
                    raise
                except TutorialError as err:   # 本教程的全部错误（数据、检查点、设备、输出位置、导出、多进程）
                    fail(str(err), err.exit_code)
                except (MemoryError, RuntimeError) as err:
                    if not is_memory_error(err):
                        raise
                    fail(f"{describe_error(err)}。请减小模型（--channels、--hidden、--T）、批大小或线程数后再试。", EXIT_FAILED)
                except KeyboardInterrupt as exc:
                    if is_main_rank():
                        eprint(interrupted.format(how=interrupt_name(exc)))
                    settle_streams()
                    raise SystemExit(interrupt_exit_code(exc)) from None

        return wrapper

    return decorate
