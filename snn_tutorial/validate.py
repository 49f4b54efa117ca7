"""库函数的参数校验：一处定义什么算“整数”“数”“开关”。

整数：Python 的 int 与 NumPy 的整数（np.int64(3) 等，numbers.Integral），不含 bool（True 不是 1 个批次）。
数：整数或浮点数（numbers.Real，含 NumPy 的），不含 bool。
不合格时抛出 ValueError（类型对、取值不对）或 TypeError，消息为中文。
"""

from __future__ import annotations

import math
import numbers


def _subject(name: str, verb: str) -> str:
    """“seed 应为”“线程数须为”：英文参数名后空一格，中文名直接接上。"""
    return f"{name}{verb}" if "\u4e00" <= name[-1] <= "\u9fff" else f"{name} {verb}"


def is_int(value) -> bool:
    """value 是不是整数（int、NumPy 整数；不含 bool）。"""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """value 是不是实数（整数或浮点数，含 NumPy 的；不含 bool）。"""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def int_at_least(name: str, value, minimum: int, verb: str = "应为") -> int:
    """value 须为 ≥ minimum 的整数；返回 int(value)。"""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{_subject(name, verb)} ≥ {minimum} 的整数，收到 {value!r}")
    return int(value)


def int_between(name: str, value, minimum: int, maximum: int, verb: str = "应为", note: str = "", hint: str = "") -> int:
    """value 须为 minimum … maximum 之间的整数；返回 int(value)。note 放在“收到”之前，hint 附在消息最后。"""
    if not is_int(value) or not minimum <= value <= maximum:
        raise ValueError(f"{_subject(name, verb)} {minimum} 到 {maximum} 之间的整数{note}，收到 {value!r}{hint}")
    return int(value)


def real_between(name: str, value, low: float, high: float) -> float:
    """value 须为 low … high 之间的数；返回 float(value)。"""
    if not is_real(value) or not low <= value <= high:
        raise ValueError(f"{_subject(name, '应为')} {low:g} 到 {high:g} 之间的数，收到 {value!r}")
    return float(value)


def positive_real(name: str, value, verb: str = "应为") -> float:
    """value 须为有限的正数；返回 float(value)。"""
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{_subject(name, verb)}有限的正数，收到 {value!r}")
    return float(value)


def flag(name: str, value) -> bool:
    """开关须为 True 或 False（1、"yes" 之类都不算）。"""
    if not isinstance(value, bool):
        raise TypeError(f"{name} 应为 True 或 False，收到 {value!r}")
    return value
