"""中文字体：系统字体优先；没有系统中文字体时用 pip 装的 Noto Sans SC，图里的中文照样不是方框。

这台机器上可能装着系统中文字体，所以“只有 pip 字体的机器”在测试里模拟：把 matplotlib 的字体列表与系统字体扫描里
所有能显示汉字的文件都去掉，只留下 pip 包里的那一个。
"""

import logging
import json
import re
import shutil
import warnings
from pathlib import Path

import matplotlib
import pytest
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from snn_tutorial import plotting

ROOT = Path(__file__).resolve().parents[1]
TEXT = "膜电位随时间的变化（毫伏）"
# 汉字、中文标点与全角字符
CJK_CHARS = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _has_han(path: str, _cache: dict = {}) -> bool:
    if path not in _cache:
        try:
            _cache[path] = FT2Font(path).get_char_index(ord("膜")) != 0
        except (OSError, RuntimeError):
            _cache[path] = False
    return _cache[path]


def _forget_lookups():
    font_manager.fontManager._findfont_cached.cache_clear()


@pytest.fixture
def no_system_cjk(monkeypatch):
    """模拟一台没有系统中文字体的机器（只在本测试里，结束后一切复原）。"""
    kept = [f for f in font_manager.fontManager.ttflist if not _has_han(f.fname)]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", kept)
    real_scan = font_manager.findSystemFonts
    monkeypatch.setattr(font_manager, "findSystemFonts",
                        lambda *args, **kwargs: [p for p in real_scan(*args, **kwargs) if not _has_han(p)])
    _forget_lookups()
    with matplotlib.rc_context():
        yield kept
    _forget_lookups()
    plotting._state.update(font=None, checked=False)


def _missing_glyph_warnings(family: list[str] | None = None) -> list[str]:
    """画一张带中文标题、坐标轴标签与文字的图，返回 matplotlib 的缺字警告。"""
    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0.0, -0.5, 1.0])
    ax.set_title(TEXT)
    ax.set_xlabel("时间步 t")
    ax.set_ylabel("膜电位 V / 毫伏")
    ax.text(0.5, 0.5, "脉冲神经网络", family=family)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_only_pip_font_renders_chinese(no_system_cjk):
    pip_file = plotting.pip_font_file()
    assert pip_file is not None, f"没有装 {plotting.PIP_FONT_PACKAGE}：在仓库根目录运行 pip install -e ."
    assert not any(_has_han(f.fname) for f in font_manager.fontManager.ttflist), "模拟失败：还有系统中文字体"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        family = plotting.setup_matplotlib()
    assert not [w for w in caught if "中文字体" in str(w.message)], "有 pip 字体时不应警告"
    found = plotting.cjk_font()
    assert found is not None and family == found.family == "Noto Sans SC"
    assert found.source == plotting.SOURCE_PIP and found.path == pip_file
    assert found.describe() == f"Noto Sans SC（pip 包 {plotting.PIP_FONT_PACKAGE}）"
    assert plotting.zh("膜电位", "membrane potential") == "膜电位"
    # 画标签时 matplotlib 打开的正是 pip 包里的字体文件，并且没有一个字缺字形
    label_font = font_manager.findfont(font_manager.FontProperties(family=["sans-serif"]), fallback_to_default=False)
    assert Path(label_font).resolve() == pip_file.resolve()
    assert _missing_glyph_warnings() == []


def test_missing_glyphs_are_detected(no_system_cjk):
    """反例：同一张图只用 DejaVu Sans 画，会得到缺字警告（说明上面的检查真能发现方框）。"""
    matplotlib.rcParams["font.sans-serif"] = ["DejaVu Sans"]
    matplotlib.rcParams["font.family"] = "sans-serif"
    missing = _missing_glyph_warnings(family=["DejaVu Sans"])
    assert missing and any("DejaVu Sans" in m for m in missing)


def test_system_font_is_preferred(no_system_cjk, tmp_path):
    """系统里有中文字体时用系统的，不用 pip 的（这里把 pip 的字体文件复制一份当作“系统字体”）。"""
    pip_file = plotting.pip_font_file()
    assert pip_file is not None
    system_copy = tmp_path / "fonts" / pip_file.name
    system_copy.parent.mkdir()
    shutil.copyfile(pip_file, system_copy)
    font_manager.fontManager.addfont(str(system_copy))
    _forget_lookups()
    assert plotting.setup_matplotlib() == "Noto Sans SC"
    found = plotting.cjk_font()
    assert found.source == plotting.SOURCE_SYSTEM and found.path == system_copy
    assert found.describe() == "Noto Sans SC（系统字体）"
    assert not any(Path(f.fname).resolve() == pip_file.resolve() for f in font_manager.fontManager.ttflist), \
        "有系统字体时不应再加载 pip 的字体"
    assert _missing_glyph_warnings() == []


def test_no_font_at_all_falls_back_to_english(no_system_cjk, monkeypatch):
    """连 pip 包也没有时：警告一次（说明怎么装），图中标签改用英文。"""
    monkeypatch.setattr(plotting, "pip_font_file", lambda: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert plotting.setup_matplotlib() is None
    messages = [str(w.message) for w in caught if "中文字体" in str(w.message)]
    assert len(messages) == 1 and f"pip install {plotting.PIP_FONT_PACKAGE}" in messages[0]
    assert plotting.cjk_font() is None
    assert plotting.zh("膜电位", "membrane potential") == "membrane potential"


def test_unknown_font_name_is_a_clear_error():
    with pytest.raises(ValueError, match="找不到字体"):
        plotting.setup_matplotlib(font="没有这个字体 Sans")


def test_pip_font_covers_every_chinese_character_in_notebook_code():
    """笔记本代码里的每个汉字与中文标点（图的标题、坐标轴、图例都写在代码里）在 pip 字体里都有字形。"""
    pip_file = plotting.pip_font_file()
    assert pip_file is not None
    font = FT2Font(str(pip_file))
    chars: set[str] = set()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] == "code":
                chars |= set(CJK_CHARS.findall("".join(cell["source"])))
    assert len(chars) > 100, f"笔记本代码里只找到 {len(chars)} 个中文字符？"
    missing = sorted(ch for ch in chars if font.get_char_index(ord(ch)) == 0)
    assert not missing, f"pip 字体缺这些字的字形：{''.join(missing)}"


def test_bold_with_single_weight_pip_font_is_quiet(no_system_cjk, caplog):
    """pip 字体只有常规体：粗体退回常规体是预期的，不应在标准错误上留下 findfont 的提示（nbval 会把它当成多出来的输出）。"""
    assert plotting.setup_matplotlib() == "Noto Sans SC"
    _forget_lookups()
    with caplog.at_level(logging.INFO, logger="matplotlib.font_manager"):
        path = font_manager.findfont(font_manager.FontProperties(family=["sans-serif"], weight="bold"))
    assert Path(path).resolve() == plotting.pip_font_file().resolve()       # 仍用 pip 字体（常规体）
    assert not [r for r in caplog.records if "Failed to find font weight" in r.getMessage()]
    # 反例：去掉过滤器，同样的查找会留下这条提示（说明上面的检查真能发现它）
    log = logging.getLogger("matplotlib.font_manager")
    filters = [f for f in log.filters if isinstance(f, plotting._SingleWeightFilter)]
    for f in filters:
        log.removeFilter(f)
    try:
        _forget_lookups()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="matplotlib.font_manager"):
            font_manager.findfont(font_manager.FontProperties(family=["sans-serif"], weight="bold"))
        assert [r for r in caplog.records if "Failed to find font weight" in r.getMessage()]
    finally:
        for f in filters:
            log.addFilter(f)
