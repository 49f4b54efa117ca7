"""浏览器测试的共用工具：找到 Chromium、按步骤截图。"""

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "_build" / "screenshots"      # 被 git 忽略
BROWSER_ENV = "SNN_TUTORIAL_CHROMIUM"             # 可指定浏览器的可执行文件（名字或路径）
REQUIRE_ENV = "SNN_TUTORIAL_REQUIRE_BROWSER"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def browser_problem(executable: str) -> str | None:
    """先让浏览器报一下版本：起不来（例如 /bin/false、坏掉的安装）时返回一句说明，能用时返回 None。"""
    try:
        res = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"无法运行（{type(err).__name__}: {err}）"
    if res.returncode != 0 or "chrom" not in (res.stdout + res.stderr).lower():
        said = (res.stdout + res.stderr).strip().splitlines()
        return f"运行 --version 得到退出码 {res.returncode}{'、输出 ' + repr(said[0][:80]) if said else '、没有输出'}，不像 Chromium"
    return None


def find_chromium() -> str | None:
    """按顺序找：环境变量 SNN_TUTORIAL_CHROMIUM，再是 PATH 上的 chromium、chromium-browser、google-chrome。

    环境变量指定的浏览器先试运行一次（--version）：不能用时给出一行说明就失败，而不是 Playwright 的一长串调用栈。
    """
    wanted = os.environ.get(BROWSER_ENV, "").strip()
    if wanted:
        found = shutil.which(wanted) or (wanted if Path(wanted).is_file() else None)
        if found is None:
            pytest.fail(f"{BROWSER_ENV}={wanted!r} 不是可执行文件 / is not an executable", pytrace=False)
        problem = browser_problem(found)
        if problem is not None:
            pytest.fail(f"{BROWSER_ENV}={wanted!r} 不能用：{problem} / is not a working Chromium", pytrace=False)
        return found
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def skip_or_fail(reason: str):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1，但{reason}")
    pytest.skip(reason)


class Steps:
    """把一个测试分成有名字的步骤：哪一步失败，报错就写哪一步，并把失败时的页面截图留下。"""

    def __init__(self, page, folder: Path, prefix: str):
        self.page, self.folder, self.prefix = page, folder, prefix
        self.timings: list[tuple[str, float]] = []
        (folder / f"{prefix}-FAILED.png").unlink(missing_ok=True)     # 上一次失败留下的截图

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.monotonic()
        try:
            yield
        except Exception as err:
            shot = self.folder / f"{self.prefix}-FAILED.png"
            with contextlib.suppress(Exception):
                self.page.screenshot(path=shot)
            raise AssertionError(f"步骤“{name}”失败（失败时的截图：{shot.relative_to(ROOT)}）：{err}") from err
        finally:
            self.timings.append((name, time.monotonic() - start))

    def shot(self, name: str, **kwargs) -> Path:
        path = self.folder / f"{self.prefix}-{name}.png"
        self.page.screenshot(path=path, **kwargs)
        return path

    def report(self) -> str:
        return "；".join(f"{name} {seconds:.1f} 秒" for name, seconds in self.timings)
