"""matplotlib 设置：找一个能显示中文的字体；找不到时退回英文标签并只警告一次。"""

import warnings
from pathlib import Path

import matplotlib
from matplotlib import font_manager

# 按优先级排列的中文字体（字体族名）
CJK_FONT_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
    "Hiragino Sans GB",
    "Arial Unicode MS",
)
# 字体缓存过期（例如先建缓存、后装字体）时，按文件名在系统字体里再找一遍
_CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "simhei", "msyh", "pingfang")

_state = {"font": None, "checked": False}


def find_cjk_font() -> str | None:
    """返回一个已安装的中文字体族名；没有则返回 None。"""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FONT_FAMILIES:
        if family in installed:
            return family
    for path in font_manager.findSystemFonts():
        if any(h in Path(path).name.lower().replace("-", "").replace("_", "") for h in _CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError):
                continue
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FONT_FAMILIES if family in installed), None)


def setup_matplotlib(font: str | None = "auto") -> str | None:
    """配置 matplotlib 的中文显示，返回所用字体名；没有中文字体时返回 None。

    没有中文字体时发出一次警告，之后 zh() 返回英文标签，图中不会出现方框（豆腐块）。
    font 可指定字体族名，传 None 则模拟“没有中文字体”。
    """
    family = find_cjk_font() if font == "auto" else font
    _state.update(font=family, checked=True)
    rc = matplotlib.rcParams
    rc["axes.unicode_minus"] = False  # 负号用 ASCII，避免部分中文字体缺字
    rc["figure.dpi"] = 100
    rc["savefig.dpi"] = 150
    rc["figure.autolayout"] = False
    if family:
        rc["font.sans-serif"] = [family, "DejaVu Sans"]
        rc["font.family"] = "sans-serif"
    else:
        rc["font.sans-serif"] = ["DejaVu Sans"]
        warnings.warn(
            "没有找到中文字体，图中标签将改用英文。安装方法：Ubuntu/Debian 运行 "
            "sudo apt-get install fonts-noto-cjk；conda 用户可 conda install -c conda-forge font-ttf-noto-cjk；"
            "装好后重启内核。(No CJK font found; plot labels fall back to English.)",
            stacklevel=2,
        )
    return family


def has_cjk_font() -> bool:
    """当前设置下能否显示中文（首次调用会自动执行 setup_matplotlib）。"""
    if not _state["checked"]:
        setup_matplotlib()
    return _state["font"] is not None


def zh(chinese: str, english: str) -> str:
    """图中文字：有中文字体时用中文，否则用英文。"""
    return chinese if has_cjk_font() else english


FIGURES_ENV = "SNN_TUTORIAL_WRITE_FIGURES"
FIGURES_DIR = Path(__file__).resolve().parent.parent / "img"


def save_readme_figure(fig, name: str) -> Path | None:
    """把 README 引用的图写到仓库的 img/ 下，但只在环境变量 SNN_TUTORIAL_WRITE_FIGURES=1 时写。

    平时运行笔记本不改动任何受版本控制的文件；维护者重新生成 README 的图时才打开它（命令见 README）。
    返回写入的路径；没有写时返回 None。
    """
    import os

    if os.environ.get(FIGURES_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}:
        return None
    FIGURES_DIR.mkdir(exist_ok=True)
    path = FIGURES_DIR / name
    fig.savefig(path, bbox_inches="tight")
    return path
