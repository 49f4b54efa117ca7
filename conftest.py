"""pytest 启动时自动打开快速模式；笔记本内核（nbval）会继承这个环境变量。"""

import os


def pytest_configure(config):
    os.environ.setdefault("SNN_TUTORIAL_QUICK", "1")
