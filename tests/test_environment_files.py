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
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    in_pyproject = {CONDA_NAMES.get(_name(d), _name(d)) for d in wanted}
    assert in_pyproject - in_env == set(), "pyproject.toml 里有、environment.yml 里没有"
    assert in_env - in_pyproject == set(), "environment.yml 里有、pyproject.toml 里没有"
    # 版本约束也要一致
    assert "spikingjelly==2.0.0" in [d.replace(" ", "") for d in project["dependencies"]]
    assert any(d.replace(" ", "") == "spikingjelly==2.0.0" for e in env["dependencies"] if isinstance(e, dict) for d in e["pip"])
    assert any(str(d).replace(" ", "") == "pytorch>=2.11" for d in env["dependencies"])
    assert any(d.replace(" ", "") == "torch>=2.11" for d in project["dependencies"])
