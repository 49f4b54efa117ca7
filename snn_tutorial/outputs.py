"""输出位置（--out、--log-dir）：在开始干活之前确认结果能写到那里。不能时抛出 OutputError（中文，说明怎么办）。"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import runtime
from .errors import TutorialError


class OutputError(TutorialError):
    """输出位置（--out、--log-dir）不能用。"""


TEMP_SUFFIX_BYTES = 40   # 保存时的临时文件名、.interrupted-N.pt 之类比 --out 的文件名长出的字节数（留足余量）


def resolve_out(text: str | os.PathLike, default_name: str) -> Path:
    """--out 的约定：已存在的目录、或以 / 结尾的路径表示“放在这个文件夹里”，文件名用 default_name。"""
    raw = os.fspath(text)
    if not raw.strip():
        raise OutputError("--out 不能是空字符串：请给出文件名（例如 checkpoints/csnn.pt）或目录（例如 checkpoints/）。")
    path = Path(raw).expanduser()
    if _is_dir(path) or raw.endswith(("/", os.sep)):
        path = path / default_name
    return path


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:   # 文件名太长等：不是目录，问题留给 check_output_file 报告
        return False


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """a 与 b 是不是同一个文件（不论怎么写：相对/绝对路径、符号链接、硬链接、../）。有一个不存在时为 False。"""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def existing_file_problem(path: Path, option: str = "--out") -> str | None:
    """path 已存在、但不是普通文件（设备、命名管道、套接字）时说明原因；写入会用一个普通文件替换掉它。"""
    for getter in (os.lstat, os.stat):
        try:
            mode = getter(path).st_mode
        except OSError:
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode)):
            return (f"{option} {path} 是一个{runtime.file_kind(mode)}，不是普通文件：保存时会用一个普通文件替换掉它"
                    f"（/dev/null 之类的系统文件也会被替换）")
    return None


def check_output_file(path: Path, option: str = "--out", size_hint: int = 0, not_started: str = "训练还没有开始",
                      inputs: tuple = ()) -> None:
    """开始干活前确认能把文件写到 path：不是已有的目录、设备或输入文件，文件名不太长，目录可建、可新建文件、磁盘空间够。
    不能时抛出 OutputError。not_started 说明此时什么还没发生（写进报错里）；inputs 是本次要读的文件，不能被覆盖。"""
    if _is_dir(path):
        raise OutputError(f"{option} {path} 是一个已存在的目录，不能当作文件名。{not_started}；请换一个文件名。")
    for source in inputs:
        if same_file(path, source):
            raise OutputError(f"{option} {path} 就是输入文件 {source}：写进去会毁掉它。{not_started}；请换一个输出文件名。")
    special = existing_file_problem(path, option)
    if special is not None:
        raise OutputError(f"{special}。{not_started}；请换一个文件名。")
    problem = runtime.name_length_problem(path, TEMP_SUFFIX_BYTES)
    if problem is None:
        problem = runtime.writable_dir_problem(path.parent)
    if problem is None and size_hint:
        problem = runtime.free_space_problem(path.parent, 2 * size_hint, what=f"保存约需 {size_hint / 1e6:.1f} MB，连同余量")
    if problem is not None:
        raise OutputError(f"{option} {path} 不能用：{problem}。{not_started}；请换一个可写的位置。")


def check_output_dir(path: str | os.PathLike, option: str = "--log-dir") -> None:
    """确认 path 是（或能建成）一个可写的目录，而且磁盘还有空间。"""
    if not os.fspath(path).strip():
        raise OutputError(f"{option} 不能是空字符串：请给出一个目录，例如 runs/csnn。")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        mode = path.stat().st_mode
        kind = "文件" if stat.S_ISREG(mode) else runtime.file_kind(mode)
        raise OutputError(f"{option} {path} 是一个{kind}，不是目录。训练还没有开始；请换一个目录。")
    problem = runtime.writable_dir_problem(path) or runtime.free_space_problem(path)
    if problem is not None:
        raise OutputError(f"{option} {path} 不能用：{problem}。训练还没有开始；请换一个可写的目录。")
