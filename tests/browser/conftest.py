"""浏览器测试的 fixture：启动 Playwright 驱动的无头 Chromium（中文字体见 browser_support.write_fontconfig）。

没有浏览器时这些测试跳过并说明原因，学习者的电脑上 `pytest` 照样能跑完；
CI 设置 SNN_TUTORIAL_REQUIRE_BROWSER=1，此时找不到浏览器算失败，而不是悄悄跳过。
"""

import os
from pathlib import Path

import pytest

from browser_support import BROWSER_ENV, SCREENSHOTS, find_chromium, skip_or_fail, write_fontconfig


@pytest.fixture(scope="session")
def chromium():
    """Playwright 与系统里装好的 Chromium（不下载 Playwright 自己的浏览器）。"""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("没有安装 playwright（pip install -e \".[dev]\"）/ playwright is not installed")
    executable = find_chromium()
    if executable is None:
        skip_or_fail(f"没有找到 Chromium：请安装（Debian/Ubuntu：apt-get install chromium）或用 {BROWSER_ENV} 指定 / "
                     f"no Chromium found: install it or set {BROWSER_ENV}")
    manager = sync_playwright().start()
    yield manager, executable
    manager.stop()


def _launch(chromium, fontconfig: Path):
    manager, executable = chromium
    # chromium_sandbox=False 即 --no-sandbox：以 root 运行（如 CI 里）时 Chromium 的沙箱起不来。
    # FONTCONFIG_FILE：在系统字体之外再让 Chromium 看到 pip 装的中文字体（没有系统中文字体的机器上也不是方框）
    return manager.chromium.launch(executable_path=executable, headless=True, chromium_sandbox=False,
                                   env={**os.environ, "FONTCONFIG_FILE": str(fontconfig)})


@pytest.fixture(scope="session")
def browser(chromium, tmp_path_factory):
    """无头 Chromium：系统字体，外加 pip 装的中文字体（两者都有时 fontconfig 也可能选 pip 的 Noto Sans SC，同样是 CJK 字体）。"""
    instance = _launch(chromium, write_fontconfig(tmp_path_factory.mktemp("fontconfig")))
    yield instance
    instance.close()


@pytest.fixture(scope="session")
def fontconfig_only_pip_font(tmp_path_factory) -> Path:
    """模拟没有系统中文字体的机器：fontconfig 排除其他所有支持简体中文的字体，只留 pip 装的那一个。"""
    return write_fontconfig(tmp_path_factory.mktemp("fontconfig-pip-only"), only_pip_font=True)


@pytest.fixture(scope="session")
def browser_only_pip_font(chromium, fontconfig_only_pip_font):
    """同一个 Chromium，但只看得到 pip 装的中文字体。"""
    instance = _launch(chromium, fontconfig_only_pip_font)
    yield instance
    instance.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
