"""environment.yml 与 pyproject.toml 的依赖必须一致。"""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}          # PyPI 名 → conda-forge 名
NOT_PACKAGES = {"python", "pip", "-e ."}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[;]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert env["name"] == "snn-tutorial" and env["channels"] == ["conda-forge"]
    conda, pip = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip |= {_name(d) for d in dep["pip"] if d.strip() != "-e ."}
            assert "-e ." in dep["pip"], "environment.yml 应通过 pip 安装本项目（-e .）"
        else:
            conda.add(_name(dep))
    assert "python" in conda and "pip" in conda
    in_env = (conda | pip) - NOT_PACKAGES
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    wanted = [*project["dependencies"], *extras["dev"], *extras["interop"]]
    in_pyproject = {CONDA_NAMES.get(_name(d), _name(d)) for d in wanted}
    assert in_pyproject - in_env == set(), "pyproject.toml 里有、environment.yml 里没有"
    assert in_env - in_pyproject == set(), "environment.yml 里有、pyproject.toml 里没有"
    # 版本约束也要一致
    assert "spikingjelly==2.0.0" in [d.replace(" ", "") for d in project["dependencies"]]
    assert any(d.replace(" ", "") == "spikingjelly==2.0.0" for e in env["dependencies"] if isinstance(e, dict) for d in e["pip"])
    assert any(str(d).replace(" ", "") == "pytorch>=2.11" for d in env["dependencies"])
    assert any(d.replace(" ", "") == "torch>=2.11" for d in project["dependencies"])


def _minimum_python(spec: str) -> tuple[int, int]:
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)(?:\.\d+)?", spec.strip())
    assert match, f"无法解析的 Python 版本要求：{spec!r}"
    return int(match[1]), int(match[2])


def test_python_requirement_matches_spikingjelly():
    """本项目声明的最低 Python 版本必须与 spikingjelly 的 Requires-Python 一致（不能更低，否则用户装不上）。"""
    from importlib.metadata import metadata

    required = _minimum_python(metadata("spikingjelly")["Requires-Python"])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert _minimum_python(project["requires-python"]) == required
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pinned = next(str(d) for d in env["dependencies"] if isinstance(d, str) and _name(d) == "python")
    assert tuple(int(p) for p in pinned.split("=")[-1].split(".")[:2]) >= required
    text = f"Python {required[0]}.{required[1]}"
    assert f"需要 {text} 以上" in (ROOT / "README.md").read_text(encoding="utf-8"), "README 应写明最低 Python 版本"
    setup_nb = (ROOT / "notebooks" / "00_setup.ipynb").read_text(encoding="utf-8")
    assert f"Python ≥ {required[0]}.{required[1]}" in setup_nb, "笔记本 00 的自检表应检查同样的最低版本"


def test_cjk_font_package_is_a_core_dependency():
    """pip install -e . 就要带上中文字体（不放在 dev 里）；两个环境文件里版本相同。"""
    from snn_tutorial.plotting import PIP_FONT_PACKAGE

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    in_pyproject = [d.replace(" ", "") for d in project["dependencies"] if _name(d) == PIP_FONT_PACKAGE]
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    in_env = [d.replace(" ", "") for e in env["dependencies"] if isinstance(e, dict)
              for d in e["pip"] if _name(d) == PIP_FONT_PACKAGE]
    assert len(in_pyproject) == 1, f"pyproject.toml 的 dependencies 里应当有 {PIP_FONT_PACKAGE}"
    assert in_env == in_pyproject, f"environment.yml 的 pip 部分应当有同样的 {in_pyproject}"


def test_interop_extra_is_pinned_the_same_in_both_files():
    """snnTorch 与 Norse 的版本在 pyproject.toml 的 interop 附加依赖与 environment.yml 里相同（都固定版本），CI 安装它们。"""
    from snn_tutorial.interop import VERSIONS

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = sorted(d.replace(" ", "") for d in project["optional-dependencies"]["interop"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    in_env = sorted(d.replace(" ", "") for e in env["dependencies"] if isinstance(e, dict) for d in e["pip"] if _name(d) in VERSIONS)
    assert extra == in_env == sorted(f"{name}=={version}" for name, version in VERSIONS.items())
    assert '-e ".[dev,interop]"' in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
