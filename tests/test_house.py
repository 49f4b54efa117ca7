"""包的“家规”：一个错误基类、一种“整数”的定义、一个原子写入的助手（权限按 umask）。"""

import ast
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from snn_tutorial import atomic, checkpoint, cli, data, distributed, errors, export, raw_files, runtime, validate
from snn_tutorial.models import build_model


def test_every_package_error_has_one_base():
    for cls in (data.DataError, data.DataNotFoundError, checkpoint.CheckpointError, runtime.DeviceError,
                cli.OutputError, export.ExportError, distributed.DistributedError):
        assert issubclass(cls, errors.TutorialError), cls
    assert distributed.DistributedError("x").exit_code == 1 and errors.TutorialError("x").exit_code == 2


def test_command_catches_the_base_class_once(capsys):
    """以前 cli.command 的元组里漏了 ExportError：现在任何 TutorialError 都变成一行中文，退出码取自异常。"""

    @cli.command()
    def main(argv):
        raise export.ExportError("导不出来")

    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2 and capsys.readouterr().err.strip() == "错误：导不出来"

    @cli.command()
    def main2(argv):
        raise distributed.DistributedError("连不上")

    with pytest.raises(SystemExit) as info:
        main2([])
    assert info.value.code == 1


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_numpy_integers_are_integers_everywhere(value):
    assert validate.is_int(value)
    data.TensorBatches(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(4), batch_size=value, seed=value,
                       max_shift=value)
    runtime.seed_everything(value)
    assert build_model("csnn", hidden=value * 2, T=value).T == 3


@pytest.mark.parametrize("value", [True, False, 3.0, "3", None])
def test_bools_floats_and_strings_are_not_integers(value):
    assert not validate.is_int(value)
    with pytest.raises((ValueError, TypeError)):
        data.TensorBatches(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(4), seed=value)
    with pytest.raises(ValueError):
        runtime.seed_everything(value)


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o640
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_files_follow_umask(tmp_path, umask_027):
    with atomic.atomic_open(tmp_path / "a.txt", "w") as f:
        f.write("x")
    assert _mode(tmp_path / "a.txt") == umask_027 and (tmp_path / "a.txt").read_text() == "x"
    saved = checkpoint.save_checkpoint(tmp_path / "m.pt", build_model("csnn", channels=(2, 2), hidden=4), "csnn")
    assert _mode(saved) == umask_027
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "m.pt"]   # 没有留下临时文件


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_open(target, "w") as f:
        f.write("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    with pytest.raises(FileExistsError), atomic.atomic_open(target, "w", overwrite=False) as f:
        f.write("new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_exported_file_follows_umask(tmp_path, umask_027, capsys):
    out = tmp_path / "m.onnx"
    export.main(["--format", "onnx", "--out", str(out), "--verify-images", "4", "--threads", "1"])
    assert _mode(out) == umask_027


def test_rebuilt_sample_follows_umask(tmp_path, umask_027, monkeypatch):
    x, y = data.load_sample()
    monkeypatch.setattr(raw_files, "load_raw", lambda *a, **k: (x, y))
    out = data.build_sample(out=tmp_path / "s.npz", per_class=2)
    assert _mode(out) == umask_027


# ---------------------------------------------------------------- 模块之间的导入
PACKAGE = Path(__file__).resolve().parents[1] / "snn_tutorial"
CLI_MODULES = {"train", "train_save", "evaluate", "bench", "data_cli", "split_check"}   # 命令行的模块（各有 main）


def _imports() -> dict[str, set[str]]:
    """包里每个模块导入了包里的哪些模块（模块顶层与函数里的都算；if __name__ == "__main__" 里的不算）。"""
    graph = {}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = [n for n in tree.body if not (isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))]
        found = set()
        for node in (n for top in body for n in ast.walk(top)):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module} if node.module else {a.name for a in node.names}
        graph[path.stem] = {m.split(".")[0] for m in found} - {path.stem}
    return graph


def test_no_import_cycle_and_library_does_not_import_cli_modules():
    graph = _imports()
    for module, deps in graph.items():
        if module not in CLI_MODULES:
            assert not deps & CLI_MODULES, f"{module} 导入了命令行模块 {deps & CLI_MODULES}"
    seen, done = set(), set()

    def visit(module, trail):
        assert module not in seen - done, f"导入环：{' → '.join([*trail, module])}"
        if module in done:
            return
        seen.add(module)
        for dep in sorted(graph.get(module, ())):
            visit(dep, [*trail, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_module_and_function_sizes():
    """模块不超过 350 行（数据层的模块不超过 300 行）；函数不超过 60 行（训练循环 training.fit 是参照实现，至多 80 行）。"""
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= (300 if path.stem in DATA_MODULES else 350), f"{path.name} 有 {len(text.splitlines())} 行"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                limit = 80 if (path.stem, node.name) == ("training", "fit") else 60
                assert size <= limit, f"{path.name}:{node.name} 有 {size} 行"


DATA_MODULES = {"data", "data_sources", "raw_checks", "raw_files", "batches", "sample", "split_check"}   # 数据层：每个至多 300 行
