"""matplotlib 设置：找一个能显示中文的字体。

先找系统里装的中文字体（Noto Sans CJK、文泉驿、黑体、微软雅黑、苹方……）；没有时用随 pip 安装的 Noto Sans SC
（依赖包 pylopdf-fonts-zh-cn，所以 `pip install -e .` 之后在任何机器上都有中文）；两者都没有时退回英文标签并只警告一次。
"""

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

# 按优先级排列的系统中文字体（字体族名）
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

# 系统里没有中文字体时用的 pip 包：只含 Noto Sans SC 与 Noto Serif SC 两个字体文件（SIL Open Font License 1.1）
PIP_FONT_PACKAGE = "pylopdf-fonts-zh-cn"
SOURCE_SYSTEM, SOURCE_PIP = "系统", "pip"


@dataclass(frozen=True)
class CJKFont:
    """图中所用的中文字体：字体族名、文件、来源（"系统" 或 "pip"）。"""

    family: str
    path: Path
    source: str

    def describe(self) -> str:
        where = "系统字体" if self.source == SOURCE_SYSTEM else f"pip 包 {PIP_FONT_PACKAGE}"
        return f"{self.family}（{where}）"


_state: dict = {"font": None, "checked": False}


def pip_font_file() -> Path | None:
    """随 pip 包 pylopdf-fonts-zh-cn 安装的 Noto Sans SC 字体文件；没装这个包时返回 None。"""
    try:
        import pylopdf_fonts_zh_cn
    except ImportError:
        return None
    path = Path(pylopdf_fonts_zh_cn.sans_path())
    return path if path.is_file() else None


def _pip_font_dir() -> Path | None:
    pip_file = pip_font_file()
    return pip_file.resolve().parent if pip_file else None


def _is_pip_font(path, pip_dir: Path | None) -> bool:
    return pip_dir is not None and Path(path).resolve().parent == pip_dir


def _system_families() -> set[str]:
    """matplotlib 认识的系统字体族名（不算我们自己加进去的 pip 字体）。"""
    pip_dir = _pip_font_dir()
    return {f.name for f in font_manager.fontManager.ttflist if not _is_pip_font(f.fname, pip_dir)}


def _font_file(family: str) -> Path:
    """matplotlib 画这个字体族时实际打开的文件。"""
    prop = font_manager.FontProperties(family=[family])
    try:
        return Path(font_manager.fontManager.findfont(prop, fallback_to_default=False))
    except ValueError:
        raise ValueError(f"matplotlib 找不到字体 {family!r}。请检查字体族名的拼写，"
                         "或者不指定 font，让 setup_matplotlib() 自动选择中文字体。") from None


def _system_cjk_family() -> str | None:
    installed = _system_families()
    for family in CJK_FONT_FAMILIES:
        if family in installed:
            return family
    for path in font_manager.findSystemFonts():
        if any(h in Path(path).name.lower().replace("-", "").replace("_", "") for h in _CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError):
                continue
    installed = _system_families()
    return next((family for family in CJK_FONT_FAMILIES if family in installed), None)


def _describe_family(family: str) -> CJKFont:
    path = _font_file(family)
    return CJKFont(family, path, SOURCE_PIP if _is_pip_font(path, _pip_font_dir()) else SOURCE_SYSTEM)


def locate_cjk_font() -> CJKFont | None:
    """找一个能显示中文的字体：先找系统字体，没有时加载 pip 装的 Noto Sans SC；都没有时返回 None。"""
    family = _system_cjk_family()
    if family is not None:
        return _describe_family(family)
    pip_file = pip_font_file()
    if pip_file is None:
        return None
    pip_dir = pip_file.resolve().parent
    if not any(_is_pip_font(f.fname, pip_dir) for f in font_manager.fontManager.ttflist):
        font_manager.fontManager.addfont(str(pip_file))      # 只在本进程里加入，不改动 matplotlib 的字体缓存
    return CJKFont(FT2Font(str(pip_file)).family_name, pip_file, SOURCE_PIP)


def find_cjk_font() -> str | None:
    """返回一个能显示中文的字体族名（系统字体优先，其次是 pip 装的 Noto Sans SC）；没有则返回 None。"""
    found = locate_cjk_font()
    return found.family if found else None


class _SingleWeightFilter(logging.Filter):
    """只有常规体的字体（例如 pip 装的 Noto Sans SC）遇到粗体时，matplotlib 改用常规体，并在标准错误上提示一次。
    这是预期的退回（字照样显示，只是不加粗），所以只滤掉这一条提示，其余日志不变。"""

    def filter(self, record: logging.LogRecord) -> bool:
        family = _state["font"].family if _state.get("font") else None
        message = record.getMessage()
        return not (family and message.startswith("findfont: Failed to find font weight") and family in message)


_FONT_LOG = logging.getLogger("matplotlib.font_manager")
if not any(isinstance(f, _SingleWeightFilter) for f in _FONT_LOG.filters):
    _FONT_LOG.addFilter(_SingleWeightFilter())


def setup_matplotlib(font: str | None = "auto") -> str | None:
    """配置 matplotlib 的中文显示，返回所用字体名；没有中文字体时返回 None。

    没有中文字体时发出一次警告，之后 zh() 返回英文标签，图中不会出现方框（豆腐块）。
    font 可指定字体族名，传 None 则模拟“没有中文字体”。所用字体的文件与来源见 cjk_font()。
    """
    if font == "auto":
        found = locate_cjk_font()
    else:
        found = _describe_family(font) if font else None
    family = found.family if found else None
    _state.update(font=found, checked=True)
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
            f"没有找到中文字体，图中标签将改用英文。安装方法：pip install {PIP_FONT_PACKAGE}"
            "（本教程的依赖里有它，在仓库根目录重新运行 pip install -e . 也行）；"
            "或者 Ubuntu/Debian 上 sudo apt-get install fonts-noto-cjk。装好后重启内核。"
            "(No CJK font found; plot labels fall back to English.)",
            stacklevel=2,
        )
    return family


def cjk_font() -> CJKFont | None:
    """当前设置下图中所用的中文字体（字体族名、文件、来源）；没有中文字体时返回 None。"""
    if not _state["checked"]:
        setup_matplotlib()
    return _state["font"]


def has_cjk_font() -> bool:
    """当前设置下能否显示中文（首次调用会自动执行 setup_matplotlib）。"""
    return cjk_font() is not None


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
