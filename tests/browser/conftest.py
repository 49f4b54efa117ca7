"""浏览器测试的 fixture：启动 Playwright 驱动的无头 Chromium。

没有浏览器时这些测试跳过并说明原因，学习者的电脑上 `pytest` 照样能跑完；
CI 设置 SNN_TUTORIAL_REQUIRE_BROWSER=1，此时找不到浏览器算失败，而不是悄悄跳过。
"""

from pathlib import Path

import pytest

from browser_support import BROWSER_ENV, SCREENSHOTS, find_chromium, skip_or_fail


@pytest.fixture(scope="session")
def browser():
    """无头 Chromium（Playwright 驱动系统里装好的浏览器，不下载自己的浏览器）。"""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("没有安装 playwright（pip install -e \".[dev]\"）/ playwright is not installed")
    executable = find_chromium()
    if executable is None:
        skip_or_fail(f"没有找到 Chromium：请安装（Debian/Ubuntu：apt-get install chromium）或用 {BROWSER_ENV} 指定 / "
                     f"no Chromium found: install it or set {BROWSER_ENV}")
    manager = sync_playwright().start()
    try:
        # chromium_sandbox=False 即 --no-sandbox：以 root 运行（如 CI 里）时 Chromium 的沙箱起不来
        instance = manager.chromium.launch(executable_path=executable, headless=True, chromium_sandbox=False)
    except Exception:
        manager.stop()
        raise
    yield instance
    instance.close()
    manager.stop()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
