"""pytest 的项目级设置（README 里的 `pytest --nbval notebooks` 不需要任何额外参数）：

- 自动打开快速模式；笔记本内核（nbval）会继承这个环境变量；
- 没有指定 --nbval-sanitize-with 时，使用仓库里的 notebooks/nbval_sanitize.cfg，
  把因机器而异的内容（路径、核数、设备名、字体名）替换成占位符后再比较。
"""

import os
from pathlib import Path

SANITIZE_FILE = Path(__file__).resolve().parent / "notebooks" / "nbval_sanitize.cfg"


def pytest_configure(config):
    os.environ.setdefault("SNN_TUTORIAL_QUICK", "1")
    if hasattr(config.option, "nbval_sanitize_with") and not config.option.nbval_sanitize_with:
        config.option.nbval_sanitize_with = str(SANITIZE_FILE)
