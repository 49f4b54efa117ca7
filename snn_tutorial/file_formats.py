"""认出“不是 PyTorch 检查点”的常见文件（空文件、Git LFS 指针、NIR、ONNX、gzip、NumPy、JSON……），给出中文说明。"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path


def looks_like_onnx(head: bytes) -> bool:
    """ONNX 文件是 protobuf：第一个字段是 ir_version（标签字节 0x08，接一个小整数），接着是 producer_name 等字段。"""
    return len(head) >= 3 and head[0] == 0x08 and 0 < head[1] < 0x40 and head[2] in (0x12, 0x1A, 0x22, 0x2A, 0x3A, 0x42)


def foreign_format(path: str | os.PathLike, head: bytes) -> str | None:
    """按文件开头的字节（head，至少 64 字节或整个文件）认出“不是 PyTorch 检查点”的常见文件，返回一句中文说明与处理办法；
    看起来可能是 PyTorch 的文件（zip 或 pickle）时返回 None。"""
    name = Path(path).name
    if not head:
        return "它是空文件（0 字节）：保存多半没有完成。请重新训练，或重新复制这个文件"
    if head.startswith(b"version https://git-lfs"):
        return ("它是 Git LFS 的指针文件（几百字节的文本），真正的检查点还没有下载。"
                "请在仓库里运行 git lfs install && git lfs pull，或从别处复制完整的文件")
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return ("它是 HDF5 文件，多半是导出的 NIR 模型（python -m snn_tutorial.export --format nir 的输出），不是检查点。"
                "NIR 文件请用 snn_tutorial.export.load_nir 读取；评估、导出需要的是训练保存的 .pt 检查点")
    if looks_like_onnx(head) or (name.lower().endswith(".onnx") and not head.startswith((b"PK", b"\x80"))):
        return ("它是 ONNX 模型（python -m snn_tutorial.export --format onnx 的输出），不是检查点。"
                "ONNX 文件请用 onnxruntime（或 snn_tutorial.export.onnx_session）运行；评估、导出需要的是训练保存的 .pt 检查点")
    if head.startswith(b"\x1f\x8b"):
        return "它是 gzip 压缩文件：请先解压（gunzip），再把解压出的 .pt 文件交给本程序"
    if head.startswith(b"\x93NUMPY"):
        return "它是 NumPy 的 .npy 数组文件，不是检查点"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return None   # 截断的检查点也是这样：交给 torch.load 报“已损坏/不完整”
        if names and not any(n.endswith("data.pkl") for n in names):
            if all(n.endswith(".npy") for n in names):
                return "它是 NumPy 的 .npz 文件，不是检查点"
            return f"它是一个 zip 压缩包（里面有 {', '.join(names[:3])}{' 等' if len(names) > 3 else ''}），不是 PyTorch 检查点"
        return None
    if head.startswith(b"\x80"):
        return None   # pickle：可能是旧格式的 torch.save，交给 torch.load（weights_only 不会执行其中的代码）
    if head.lstrip()[:1] in (b"{", b"["):
        return "它是文本文件（看起来是 JSON），不是检查点"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return f"它是文本文件（开头是 {text.splitlines()[0][:40]!r}），不是检查点"
    return f"它的格式无法识别（开头的字节是 {head[:8].hex(' ')}），不是 PyTorch 检查点（应以 zip 的 50 4b 03 04 开头）"
