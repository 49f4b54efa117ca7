"""提交的笔记本必须干净：带着真实运行的输出，但没有执行时间戳、本机路径、错误输出或注释式的 nbval 标记。"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
ALLOWED_TAGS = {"nbval-ignore-output", "nbval-skip", "raises-exception"}
# 本机或用户的绝对路径：/home/…、/root/…、/tmp/…、/Users/…、C:\Users\…；site-packages 说明输出里混进了安装路径
MACHINE_PATH = re.compile(r"(?<![\w.])/(home|root|tmp|work|Users|private|opt)/[\w.-]+|[A-Za-z]:\\\\Users|site-packages")
NBVAL_COMMENT = re.compile(r"^\s*#\s*(NBVAL|PYTEST_VALIDATE)_", re.MULTILINE)


def _code_cells(path: Path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    problems = []
    for i, cell in enumerate(_code_cells(path)):
        where = f"{path.name} 的第 {i} 个代码单元格"
        meta = cell.get("metadata", {})
        if "execution" in meta or "ExecuteTime" in meta:
            problems.append(f"{where} 带着执行时间戳（用 --ExecutePreprocessor.record_timing=False 运行）")
        tags = set(meta.get("tags", []))
        if tags - ALLOWED_TAGS:
            problems.append(f"{where} 有未知的标签 {sorted(tags - ALLOWED_TAGS)}")
        source = "".join(cell["source"])
        if NBVAL_COMMENT.search(source):
            problems.append(f"{where} 用注释标记 nbval；请改用单元格标签（tags）")
        if source.strip() and cell.get("execution_count") is None:
            problems.append(f"{where} 没有运行过：提交的笔记本要带着完整运行的输出")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and "raises-exception" not in tags:
                problems.append(f"{where} 保存了错误输出 {out.get('ename')}")
        text = json.dumps(cell, ensure_ascii=False)
        text = re.sub(r'"image/png": "[^"]*"', "", text)      # 图片的 base64 里可能偶然出现类似路径的字节
        for match in MACHINE_PATH.finditer(text):
            problems.append(f"{where} 含有本机路径 {match.group(0)!r}")
    assert not problems, "\n".join(problems)
