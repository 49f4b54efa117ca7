"""练习的自查：读者填好答案后运行单元格，得到 ✓ 或 ✗ 与提示。"""

import math


def check(answer, expected, *, tol: float | None = None, hint: str = "") -> bool | None:
    """比较读者的答案与正确答案；answer 为 None 表示还没作答。

    tol 给出时按数值容差比较（相对或绝对误差不超过 tol 均算对），否则要求相等。
    """
    if answer is None:
        print("还没有作答：把这一题的答案填进上面的 answer（换掉 None），再运行本单元格。")
        return None
    if tol is not None:
        ok = math.isclose(float(answer), float(expected), rel_tol=tol, abs_tol=tol)
    else:
        ok = answer == expected
    print("✓ 正确！" if ok else f"✗ 不对，再想想。{hint}")
    return ok
