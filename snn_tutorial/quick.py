"""快速模式：测试与 CI 用它缩短训练和采样，教学内容不变。"""

import os

QUICK_ENV = "SNN_TUTORIAL_QUICK"


def is_quick() -> bool:
    """环境变量 SNN_TUTORIAL_QUICK 为 1/true/yes 时返回 True（默认完整模式）。"""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, quick):
    """完整模式返回 full，快速模式返回 quick。"""
    return quick if is_quick() else full
