"""在真实的浏览器里像学习者一样使用 JupyterLab。

启动 `jupyter lab`（本机的空闲端口、随机令牌、快速模式），然后：
- 打开笔记本 00，运行自检单元格，从页面上读出 ✓/✗ 表，并确认表里的中文用 CJK 字体显示；
- 打开笔记本 02，从头运行到交互式神经元，拖动 τ 的滑块，确认图变了；
- 打开笔记本 03，从头运行到第一次训练，确认进度条显示成控件（而不是一行文字），然后中断内核。
每一步都截图到 _build/screenshots/。服务器的根目录是笔记本的临时副本，并关掉了自动保存：测试不会改动仓库里的文件。
"""

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from snn_tutorial import data
from browser_support import NOTEBOOKS, Steps, cjk_fonts_used, platform_fonts

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SECOND = 1000   # Playwright 的超时以毫秒计


def _notebook(number: str) -> Path:
    found = [p for p in NOTEBOOKS if p.name.startswith(f"{number}_")]
    assert len(found) == 1, f"notebooks/ 下应当正好有一本 {number}_*.ipynb，找到 {found}"
    return found[0]


def _cell_index(path: Path, description: str, match) -> int:
    """按保存的内容找单元格（不写死编号：笔记本改了也能找到）。"""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and match("".join(cell["source"]), cell.get("outputs", [])):
            return i
    raise AssertionError(f"{path.name} 里找不到{description}")


def _output_text(outputs) -> str:
    return "".join("".join(o.get("text", "")) for o in outputs)


def _has_widget(outputs) -> bool:
    return any(WIDGET_VIEW in o.get("data", {}) for o in outputs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data_dir() -> Path:
    """内核用的数据目录（与包里的规则相同），换成绝对路径：内核的当前目录是临时副本，相对路径在那里不成立。"""
    return Path(os.path.abspath(data.resolve_data_root()[0]))


def _has_mnist(folder: Path) -> bool:
    raw = folder / "MNIST" / "raw"
    return all((raw / n).exists() or (raw / f"{n}.gz").exists() for n, _ in data.ALL_FILES)


def _digest(paths) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


class Lab:
    """一个在后台运行的 JupyterLab 服务器。"""

    def __init__(self, root: Path, log: Path):
        self.root, self.log_path = root, log
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def api(self, method: str, path: str, timeout: float = 10):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def start(self, env: dict) -> None:
        command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   "--ServerApp.allow_root=True",   # CI 以 root 运行
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"jupyter lab 启动失败（退出码 {self.process.returncode}）：\n{self.log()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.api("GET", "/api/status", timeout=2)
                return
            time.sleep(0.5)
        raise AssertionError(f"jupyter lab 在 120 秒内没有启动：\n{self.log()}")

    def session(self, notebook: str) -> dict | None:
        return next((s for s in self.api("GET", "/api/sessions") if s["path"].endswith(notebook)), None)

    def wait_kernel(self, notebook: str, state: str = "idle", timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        current = None
        while time.monotonic() < deadline:
            session = self.session(notebook)
            current = session and session["kernel"]["execution_state"]
            if current == state:
                return
            time.sleep(0.5)
        raise AssertionError(f"{notebook} 的内核 {timeout:.0f} 秒内没有变成 {state}（现在：{current}）")

    def close_sessions(self) -> None:
        with contextlib.suppress(Exception):
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)

    def stop(self) -> None:
        """关掉服务器和它的所有内核（内核在各自的进程组里，只杀服务器的进程组会留下它们，所以先请服务器自己关）。"""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(Exception):
            self.api("POST", "/api/shutdown")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
            return
        self.close_sessions()
        for sig, wait in [(signal.SIGTERM, 10), (getattr(signal, "SIGKILL", signal.SIGTERM), 10)]:
            if hasattr(os, "killpg"):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
            else:
                self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait)
                return


def _write_settings(folder: Path) -> None:
    """只给这台测试服务器用的 JupyterLab 设置（不碰用户自己的设置）。"""
    settings = {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},        # 不自动保存
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},   # 所有单元格都在页面上
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    if importlib.util.find_spec("jupyterlab_language_pack_zh_CN") is not None:
        settings["@jupyterlab/translation-extension/plugin"] = {"locale": "zh_CN"}   # 中文界面
    for plugin, values in settings.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "repo"
    (root / "notebooks").mkdir(parents=True)
    for path in NOTEBOOKS:                       # 笔记本的副本：仓库里的文件不会被打开，更不会被保存
        shutil.copy2(path, root / "notebooks" / path.name)
    _write_settings(base / "settings")
    env = {**os.environ,
           "SNN_TUTORIAL_QUICK": "1",
           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime")}
    if os.environ.get("SNN_DATA_DIR", "").strip():
        env["SNN_DATA_DIR"] = str(_data_dir())
    before = _digest(NOTEBOOKS)
    server = Lab(root, base / "jupyterlab.log")
    start = time.monotonic()
    try:
        server.start(env)
        print(f"\nJupyterLab 启动用时 {time.monotonic() - start:.1f} 秒")
        yield server
    finally:
        server.stop()
    changed = [name for name, digest in _digest(NOTEBOOKS).items() if before.get(name) != digest]
    assert not changed, f"浏览器测试期间仓库里的笔记本被改动了：{changed}"


@pytest.fixture(scope="module")
def lab_page(browser, lab):
    """一个浏览器标签页，打开 JupyterLab（文件浏览器停在 notebooks/）；三个测试依次在里面打开笔记本，JupyterLab 只加载一次。"""
    context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{lab.url}/lab/tree/notebooks?reset&token={lab.token}")
    page.locator(".jp-DirListing-item").filter(has_text=NOTEBOOKS[0].name).wait_for(timeout=120 * SECOND)
    yield page
    context.close()


@pytest.fixture
def page(lab_page):
    lab_page.keyboard.press("Escape")      # 万一上一个测试留下了对话框
    return lab_page


def _open(page, lab: Lab, path: Path, steps: Steps):
    """像学习者一样在文件浏览器里双击打开笔记本，等内核启动完毕；返回单元格的定位器。"""
    with steps(f"打开 {path.name}"):
        page.locator(".jp-DirListing-item").filter(has_text=path.name).dblclick()
        notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
        notebook.wait_for(timeout=120 * SECOND)
        expected = len(json.loads(path.read_text(encoding="utf-8"))["cells"])
        page.wait_for_function(f"() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
                               f".jp-Notebook .jp-Cell').length === {expected}", timeout=60 * SECOND)
        cells = notebook.locator(".jp-Cell")
    with steps("等内核启动"):
        lab.wait_kernel(path.name, "idle", timeout=120)
    return cells


def _run_through(page, cells, last: int, steps: Steps):
    """像学习者一样从第一个单元格开始一格一格按 Shift+Enter，直到运行完第 last 个单元格。"""
    with steps(f"按 Shift+Enter 运行第 0–{last} 个单元格"):
        cells.nth(0).locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Escape")            # 命令模式
        for _ in range(last + 1):
            page.keyboard.press("Shift+Enter")
        assert "jp-mod-active" in (cells.nth(last + 1).get_attribute("class") or ""), "选中的单元格不对"


def test_setup_self_check(lab, page, screenshots):
    path = _notebook("00")
    index = _cell_index(path, "打印 ✓ 表的自检单元格", lambda src, outs: "✓ " in _output_text(outs))
    steps = Steps(page, screenshots, "lab-00")
    cells = _open(page, lab, path, steps)
    steps.shot("opened")
    _run_through(page, cells, index, steps)
    cell = cells.nth(index)
    with steps("读出 ✓/✗ 表"):
        output = cell.locator(".jp-OutputArea-output").filter(has_text="Python ≥")
        output.wait_for(timeout=180 * SECOND)
        rows = [line for line in output.inner_text().splitlines() if line[:1] in "✓✗·" and line.strip()]
        cell.scroll_into_view_if_needed()
        steps.shot("self-check")
        assert len(rows) >= 8, f"自检表只有 {len(rows)} 行：{rows}"
        assert rows[0].startswith("✓ Python"), rows
        failed = [row for row in rows if row.startswith("✗")]
        assert not failed, "自检表里有 ✗：\n" + "\n".join(failed)
        errors = cell.locator("[data-mime-type='application/vnd.jupyter.stderr'], .jp-OutputArea-output.jp-mod-error")
        assert errors.count() == 0, errors.all_inner_texts()
    with steps("自检表里的中文用 CJK 字体显示（不是方框）"):
        output.locator("pre").first.evaluate("el => el.setAttribute('data-cjk-probe', '')")
        fonts = platform_fonts(page, "[data-cjk-probe]")
        assert cjk_fonts_used(fonts), f"自检表的中文没有用 CJK 字体渲染，实际字体 {fonts}"
        page.locator("[data-cjk-probe]").evaluate("el => el.removeAttribute('data-cjk-probe')")
    print(f"\n笔记本 00：{steps.report()}；自检表的中文字体 {', '.join(cjk_fonts_used(fonts))}")


def test_neuron_playground_slider(lab, page, screenshots):
    path = _notebook("02")
    index = _cell_index(path, "交互式神经元（带滑块的控件）",
                        lambda src, outs: _has_widget(outs) and "Slider" in src)
    steps = Steps(page, screenshots, "lab-02")
    cells = _open(page, lab, path, steps)
    _run_through(page, cells, index, steps)
    cell = cells.nth(index)
    slider = cell.locator(".widget-slider").filter(has_text="τ")
    figure = cell.locator(".widget-output img")
    with steps("等交互式神经元显示出来"):
        figure.first.wait_for(timeout=240 * SECOND)
        lab.wait_kernel(path.name, "idle", timeout=120)
        before = figure.first.get_attribute("src")
        readout = slider.locator(".widget-readout")
        old_value = readout.inner_text()
        slider.scroll_into_view_if_needed()
        cell.locator(".widget-output").scroll_into_view_if_needed()
        steps.shot("playground")
    with steps("用键盘把 τ 的滑块向右拨一大格（PageUp）"):
        handle = slider.locator(".noUi-handle")
        handle.focus()
        page.keyboard.press("PageUp")           # 只触发一次重画，截图里的图与滑块的取值一致
        page.wait_for_function("([el, old]) => el.innerText !== old", arg=[readout.element_handle(), old_value],
                               timeout=30 * SECOND)
    with steps("等图重画"):
        page.wait_for_function(
            "([cell, old]) => { const img = cell.querySelector('.widget-output img'); return img && img.src !== old; }",
            arg=[cell.element_handle(), before], timeout=120 * SECOND)
        after = figure.first.get_attribute("src")
        assert after != before
        steps.shot("slider-moved")
    print(f"\n笔记本 02：τ 从 {old_value} 变为 {readout.inner_text()}；{steps.report()}")


def test_training_progress_bar_is_a_widget(lab, page, screenshots):
    if not _has_mnist(_data_dir()):
        pytest.skip(f"没有 MNIST 数据（{_data_dir()}）：设置 SNN_DATA_DIR 或先运行笔记本 01 下载 / MNIST not found")
    path = _notebook("03")
    index = _cell_index(path, "第一个显示进度条的训练单元格", lambda src, outs: _has_widget(outs))
    steps = Steps(page, screenshots, "lab-03")
    cells = _open(page, lab, path, steps)
    _run_through(page, cells, index, steps)
    cell = cells.nth(index)
    with steps("等进度条出现"):
        bar = cell.locator(".jp-OutputArea-output .widget-hprogress")
        bar.first.wait_for(state="visible", timeout=240 * SECOND)
        label = cell.locator(".jp-OutputArea-output .widget-hbox").first.inner_text()
        cell.scroll_into_view_if_needed()
        steps.shot("progress-bar")
    with steps("检查进度条是控件，不是一行文字"):
        assert re.search(r"第\s*1/\d+\s*轮", label), f"进度条的标签是 {label!r}"
        texts = cell.locator(".jp-OutputArea-output pre").all_inner_texts()
        as_text = [t for t in texts if re.search(r"\d+%\|", t)]
        assert not as_text, f"进度条被显示成了文字：{as_text}"
    prompt = cell.locator(".jp-InputPrompt").first
    if prompt.inner_text().strip().startswith("[*]"):      # 还在训练（很快的机器上可能已经训练完了）
        with steps("按两下 I 中断内核"):
            page.keyboard.press("Escape")
            page.keyboard.press("i")
            page.keyboard.press("i")
            page.wait_for_function("el => !el.innerText.includes('*')", arg=prompt.element_handle(),
                                   timeout=120 * SECOND)
            assert "KeyboardInterrupt" in cell.locator(".jp-OutputArea").inner_text()
            steps.shot("interrupted")
    print(f"\n笔记本 03：{steps.report()}")
