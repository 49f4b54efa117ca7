"""浏览器测试的共用工具：找到 Chromium、给它配好中文字体、按步骤截图。"""

import contextlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from xml.sax.saxutils import escape

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


# Chromium 实际用来画汉字的字体，名字里有这些之一才算 CJK 字体（不是方框）
CJK_FONT = re.compile(r"CJK|Han Sans|Han Serif|WenQuanYi|Droid Sans Fallback|AR PL|YaHei|SimSun|SimHei|DengXian|"
                      r"PingFang|Hiragino|Heiti|Songti|STHeiti|Noto Sans SC|Noto Serif SC", re.IGNORECASE)


def write_fontconfig(folder: Path, *, only_pip_font: bool = False) -> Path:
    """写一份 fontconfig 配置交给 Chromium（环境变量 FONTCONFIG_FILE）：系统原有的配置，再加上 pip 装的中文字体的目录。

    没有系统中文字体的机器（CI 不装 fonts-noto-cjk）上，网页版与 JupyterLab 里的中文就用这个字体显示。
    only_pip_font=True 时排除其他所有支持简体中文的字体，模拟一台只有 pip 字体的机器。
    """
    from snn_tutorial.plotting import PIP_FONT_PACKAGE, pip_font_file

    pip_file = pip_font_file()
    if pip_file is None:
        pytest.fail(f"没有安装 {PIP_FONT_PACKAGE}（pip install -e \".[dev]\"）/ the CJK font package is missing",
                    pytrace=False)
    pip_file = pip_file.resolve()
    # 原有的配置：用户自己设了 FONTCONFIG_FILE 就沿用它，否则是 fontconfig 在其配置目录里的 fonts.conf
    base = os.environ.get("FONTCONFIG_FILE", "").strip() or "fonts.conf"
    lines = ['<?xml version="1.0"?>', '<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">', "<fontconfig>",
             f"  <cachedir>{escape(str(folder / 'cache'))}</cachedir>",
             f'  <include ignore_missing="yes">{escape(base)}</include>',
             f"  <dir>{escape(str(pip_file.parent))}</dir>"]
    if only_pip_font:
        lines += ['  <selectfont><rejectfont><pattern><patelt name="lang"><string>zh-cn</string></patelt>'
                  "</pattern></rejectfont></selectfont>",
                  f'  <selectfont><acceptfont><pattern><patelt name="file"><string>{escape(str(pip_file))}</string>'
                  "</patelt></pattern></acceptfont></selectfont>"]
    lines.append("</fontconfig>")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fonts.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def platform_fonts(page, selector: str) -> list[dict]:
    """Chromium 实际用来画这个元素里文字的字体（DevTools 协议 CSS.getPlatformFontsForNode）。"""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, f"页面上没有 {selector}"
        return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()


def cjk_fonts_used(fonts: list[dict]) -> list[str]:
    """platform_fonts 的结果里真的画了字的 CJK 字体。"""
    return [f["familyName"] for f in fonts if CJK_FONT.search(f["familyName"]) and f["glyphCount"] > 0]
