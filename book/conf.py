"""网页版教程（Sphinx + MyST-NB）的配置。

在仓库根目录运行 `sphinx-build -c book . _build/book`：源目录是仓库根目录，配置在 book/。
只读入 book/ 下的页面（首页、术语表、实验记录……）与 notebooks/ 下带编号的笔记本；笔记本不重新执行，直接用提交时保存的输出。
"""

import html
import json
import logging
from pathlib import Path

try:
    import jieba
except ImportError:
    pass
else:
    jieba.setLogLevel(logging.WARNING)   # 不打印加载词典的消息

ROOT = Path(__file__).resolve().parents[1]

project = "脉冲神经网络（SNN）中文教程"
author = "SNN 中文教程的作者们"
copyright = "本教程的作者们，MIT 许可"
language = "zh_CN"
html_search_language = "zh"          # 中文分词用 jieba；没有 jieba 时 Sphinx 不为中文建索引，搜不到任何中文词

extensions = ["myst_nb", "sphinx-mathjax-offline"]   # 后者把 MathJax 3 复制进输出目录，离线也能显示公式

root_doc = "book/index"
include_patterns = ["book/*.md", "notebooks/[0-9][0-9]_*.ipynb"]
# Sphinx 会遍历源目录下没有被排除的每个文件夹：把 book/ 与 notebooks/ 以外的一切都排除（.venv、data、runs、_build……）
exclude_patterns = sorted({p.name for p in ROOT.iterdir()} - {"book", "notebooks"} | {"_build"})
exclude_patterns += ["**/.ipynb_checkpoints"]

nb_execution_mode = "off"            # 不重新执行：网页上是笔记本里保存的、在完整 MNIST 上真实运行的输出
nb_merge_streams = True              # 把同一个单元格里连续的多段打印输出合成一段
nb_render_markdown_format = "myst"  # 代码单元输出的 Markdown（例如表格、公式）按 MyST 解析：commonmark 不认表格与 $…$
nb_ipywidgets_js = {}                # 不从 CDN 加载交互控件的脚本；控件在下面换成静态内容
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "脉冲神经网络（SNN）中文教程"
html_theme_options = {"show_toc_level": 2}
html_show_sourcelink = False         # 页面右上角的下载按钮仍然可以下载 .ipynb
html_last_updated_fmt = None

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS = {"FloatProgressModel", "IntProgressModel"}
CONTROLS = {"FloatSliderModel", "IntSliderModel", "FloatLogSliderModel", "DropdownModel", "CheckboxModel",
            "ToggleButtonsModel", "RadioButtonsModel", "SelectModel", "TextModel", "IntTextModel", "FloatTextModel"}


def _hidden(models: dict, model: dict) -> bool:
    """控件被隐藏了（例如 tqdm 的 leave=False 在结束时把进度条藏起来），JupyterLab 里看不到它，网页上也不显示。"""
    layout = models.get(str(model["state"].get("layout", "")).removeprefix("IPY_MODEL_"), {}).get("state", {})
    return layout.get("visibility") == "hidden" or layout.get("display") == "none"


def _children(model: dict) -> list[str]:
    return [c.removeprefix("IPY_MODEL_") for c in model["state"].get("children", [])]


def _progress_line(models: dict, box: dict) -> str | None:
    """tqdm 的进度条是 HBox(HTML 左侧文字, 进度条, HTML 右侧文字)：按 tqdm 的文本格式还原它最后的样子。"""
    kids = [models.get(k, {}) for k in _children(box)]
    names = [k.get("model_name") for k in kids]
    if len(kids) != 3 or names[0] != "HTMLModel" or names[1] not in PROGRESS or names[2] != "HTMLModel":
        return None
    bar = kids[1]["state"]
    frac = min(max(bar.get("value", 0) / (bar.get("max") or 1), 0.0), 1.0)
    filled = round(10 * frac)
    text = lambda m: html.unescape(m["state"].get("value", "")).replace("\u2007", " ")
    return f"{text(kids[0])}|{'█' * filled}{' ' * (10 - filled)}|{text(kids[2])}"


def _control_text(model: dict) -> str | None:
    state = model["state"]
    if model.get("model_name") not in CONTROLS:
        return None
    if "_options_labels" in state and state.get("index") is not None:
        value = state["_options_labels"][state["index"]]
    else:
        value = state.get("value")
    return f"{state.get('description', '')} = {value}"


def _static_outputs(models: dict, model_id: str) -> list[dict]:
    """把一个控件换成它保存下来的最后状态：进度条 → 一行文字；滑块等 → 当时的取值；Output 控件 → 里面的输出（图）；
    隐藏了的控件 → 什么也不显示。"""
    lines, outputs = [], []

    def walk(mid: str) -> None:
        model = models.get(mid)
        if model is None or _hidden(models, model):
            return
        name = model.get("model_name")
        if name in {"HBoxModel", "VBoxModel", "BoxModel", "GridBoxModel"}:
            progress = _progress_line(models, model)
            if progress is not None:
                outputs.append({"output_type": "display_data", "metadata": {}, "data": {"text/plain": progress}})
                return
            for child in _children(model):
                walk(child)
        elif name == "OutputModel":
            outputs.extend(model["state"].get("outputs", []))
        elif (line := _control_text(model)) is not None:
            lines.append(line)

    walk(model_id)
    if lines:
        note = "交互控件（网页上是保存时的静态快照；在 JupyterLab 里运行这本笔记本即可调节）："
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        outputs.insert(0, {"output_type": "display_data", "metadata": {},
                           "data": {"text/html": f"<p>{note}</p><ul>{items}</ul>",
                                    "text/plain": note + "；".join(lines)}})
    return outputs


def static_widgets(app, docname: str, source: list[str]) -> None:
    """网页是静态的，运行不了 ipywidgets：用笔记本里保存的控件状态把每个控件换成静态的输出。"""
    if not docname.startswith("notebooks/"):
        return
    nb = json.loads(source[0])
    widgets = nb.get("metadata", {}).pop("widgets", None)
    if widgets is None:
        return
    models = widgets.get(WIDGET_STATE, {}).get("state", {})
    for cell in nb["cells"]:
        new = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            new.extend(_static_outputs(models, view["model_id"]) if view else [out])
        if "outputs" in cell:
            cell["outputs"] = new
    source[0] = json.dumps(nb, ensure_ascii=False)


def write_redirect(app, exc) -> None:
    """根目录的 index.html 跳到首页 book/index.html，这样 `python -m http.server` 打开的就是首页。"""
    if exc is None and app.builder.format == "html":
        target = "book/index.html"
        (Path(app.outdir) / "index.html").write_text(
            f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0; url={target}"><title>{project}</title></head>'
            f'<body><a href="{target}">{project}</a></body></html>', encoding="utf-8")


def setup(app):
    app.connect("source-read", static_widgets)
    app.connect("build-finished", write_redirect)
