"""快速模式：测试与 CI 用它缩短训练和采样，教学内容不变。"""

import os
import sys

QUICK_ENV = "SNN_TUTORIAL_QUICK"
TRUE = {"1", "true", "yes", "on"}
FALSE = {"", "0", "false", "no", "off"}
_warned: set[str] = set()


def is_quick() -> bool:
    """环境变量 SNN_TUTORIAL_QUICK 为 1/true/yes/on 时返回 True（默认完整模式）。

    认不出的值（例如拼错的 "ture"）按完整模式处理，并在标准错误上警告一次：否则拼错一个字母就会悄悄跑完整的 30 轮。
    """
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    if value in TRUE:
        return True
    if value not in FALSE and value not in _warned:
        _warned.add(value)
        try:
            print(f"警告：环境变量 {QUICK_ENV}={os.environ[QUICK_ENV]!r} 无法识别，按完整模式运行。"
                  f"要快速模式请设为 1（或 true、yes、on），完整模式设为 0 或不设。", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
    return False


def pick(full, quick):
    """完整模式返回 full，快速模式返回 quick。"""
    return quick if is_quick() else full
