"""本教程的错误：都继承 TutorialError。消息是中文，并说明怎么处理。

命令行（cli.command）只捕获这一个基类：打印“错误：…”，以 exit_code 退出（默认 2：输入有误，工作还没有开始）。
在笔记本里，IPython 调用 _render_traceback_：只显示中文说明，不显示长长的调用栈。
"""

from __future__ import annotations


def render_for_notebook(err: BaseException) -> list[str]:
    """IPython/Jupyter 显示本教程的异常时调用它（异常类的 _render_traceback_）：中文说明放在最前面，
    不显示几十行的调用栈与“During handling of the above exception”的异常链——那些是程序内部的细节，
    学习者要做的事都写在说明里。引起它的原始错误（若有）只列一行。"""
    lines = [f"\x1b[1;31m{type(err).__name__}\x1b[0m: {err}"]
    cause = err.__cause__
    if cause is not None:
        first = (str(cause).strip().splitlines() or [""])[0][:200]
        lines.append(f"（原始错误：{type(cause).__name__}{': ' + first if first else ''}）")
    return lines


class TutorialError(RuntimeError):
    """本教程所有错误的基类。exit_code 是命令行遇到它时的退出码。"""

    exit_code = 2

    def _render_traceback_(self):
        return render_for_notebook(self)
