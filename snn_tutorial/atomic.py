"""原子写入：先写同一目录下的临时文件，写完才改名为目标文件。

中途失败、被中断或进程被强行结束时，目标文件要么是原来的样子，要么是完整的新文件，不会是半个文件。
权限：写成的文件与普通新建的文件一样按 umask（通常是 0644：别的账户也能读）；
tempfile.mkstemp 建的临时文件只有本人可读（0600），发布前改回来。检查点、导出的模型、解压的数据文件都用这里。
临时文件名是 .<文件名>.<8 个随机字符>.tmp（checkpoint.remove_stale_temp_files 按这个样子清理残留）。
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """本进程的 umask（读一次要先设再改回）。"""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def file_mode() -> int:
    """新文件应有的权限：0o666 去掉 umask 里的位。"""
    return 0o666 & ~current_umask()


def publish(tmp: str | os.PathLike, path: str | os.PathLike, overwrite: bool = True) -> None:
    """把写好的临时文件改名为 path。overwrite=False 时 path 已存在就抛出 FileExistsError（用硬链接做到“原子地只建新文件”）。"""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:   # 不支持硬链接的文件系统（FAT、部分网络盘）：先查再改名
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True):
    """给出一个临时文件的路径（同一目录，已建好、为空）；with 块正常结束时把它按 umask 设好权限、改名为 path。

    with 块里出错（包括 Ctrl+C、SystemExit）时删掉临时文件，path 保持原样。overwrite=False 见 publish。
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        publish(tmp, path, overwrite)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", overwrite: bool = True, **kwargs):
    """像 open(path, mode) 一样写文件，但先写临时文件，with 块正常结束才替换 path（见 atomic_path）。"""
    with atomic_path(path, overwrite) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
