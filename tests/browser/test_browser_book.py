"""网页版教程：用 README 里的命令构建，再在真实的浏览器里逐页打开检查。

每一页：页面、图片、脚本、样式表没有 404 或加载失败；每张图都加载出来了；公式由 MathJax 渲染（正文里没有原样的 $...$）；
中文用 CJK 字体渲染（不是方框）。另外检查目录按编号列出全部笔记本，以及搜索“膜电位”能找到含有它的笔记本。
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from browser_support import NOTEBOOKS, ROOT, Steps, cjk_fonts_used, platform_fonts

OUT = ROOT / "_build" / "book"
# 与 README 中的命令相同（sphinx-build -c book . _build/book），另加 -E（从头构建，conf.py 改了也不会用旧结果）与 -W（任何警告都算失败）
BUILD = [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-c", "book", ".", str(OUT.relative_to(ROOT))]
SEARCH_TERM = "膜电位"
BOOK_PAGES = sorted((ROOT / "book").glob("*.md"))      # 首页与参考页（术语表、实验记录……）


def _markdown_text(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _has_math(path: Path) -> bool:
    """正文（去掉代码块与行内代码）里有没有 $...$ 公式。"""
    text = re.sub(r"```.*?```|`[^`\n]*`", "", _markdown_text(path), flags=re.DOTALL)
    return re.search(r"\$[^$\n]+\$", text) is not None


@pytest.fixture(scope="module")
def book() -> Path:
    start = time.monotonic()
    result = subprocess.run(BUILD, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"构建网页版失败：\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    print(f"\n构建网页版用时 {time.monotonic() - start:.1f} 秒")
    return OUT


@pytest.fixture(scope="module")
def site(book, browser):
    """用一个本机的静态文件服务器提供 _build/book（端口由系统分配）。"""
    handler = functools.partial(QuietHandler, directory=str(book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    yield context.new_page()
    context.close()


def test_book_builds_and_lists_every_notebook(book):
    """不需要浏览器：构建成功（没有警告），首页目录按编号列出 notebooks/ 下的每一本笔记本。"""
    assert NOTEBOOKS, "notebooks/ 下没有带编号的笔记本"
    index = (book / "book" / "index.html").read_text(encoding="utf-8")
    start = index.index('class="toctree-wrapper')
    toc = index[start:index.index("</div>", start)]
    listed = re.findall(r'href="\.\./notebooks/([0-9]{2}_[^"#]+)\.html"', toc)
    assert listed == [p.stem for p in NOTEBOOKS], "首页目录应当按编号列出全部笔记本"
    for path in NOTEBOOKS:
        assert (book / "notebooks" / f"{path.stem}.html").is_file(), f"{path.name} 没有对应的网页"
    for path in BOOK_PAGES:
        assert (book / "book" / f"{path.stem}.html").is_file(), f"book/{path.name} 没有对应的网页"
    assert (book / "index.html").is_file(), "根目录应当有跳到首页的 index.html"


def _pages(book: Path) -> list[str]:
    """网页版的全部页面（按当前的笔记本列出，不会去看旧构建留下的页面）。"""
    pages = ["index.html", "book/index.html", "genindex.html", "search.html"]
    pages += [f"book/{p.stem}.html" for p in BOOK_PAGES if p.stem != "index"]
    pages += [f"notebooks/{p.stem}.html" for p in NOTEBOOKS]
    missing = [page for page in pages if not (book / page).is_file()]
    assert not missing, f"网页版缺少这些页面：{missing}"
    return pages


def _broken_links(book: Path, site: str, links: list[str]) -> list[str]:
    """站内链接（去掉 #锚点与 ?查询）指向的文件必须存在；站外链接不检查（测试时没有网络）。"""
    broken = []
    for link in links:
        if not link.startswith(site + "/"):
            continue
        target = link[len(site) + 1:].split("#")[0].split("?")[0]
        path = book / target
        if not (path.is_file() or (path / "index.html").is_file()):
            broken.append(link)
    return sorted(set(broken))


# 正文里还留着的 TeX：$...$、$$、\( \[（跳过代码、输出与 MathJax 已渲染的部分）
RAW_MATH_JS = """() => {
  const article = document.querySelector('article') || document.body;
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT, {acceptNode(n) {
    return n.parentElement.closest('pre, code, script, style, mjx-container, .highlight, .output')
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT; }});
  const bad = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (/\\$[^$\\s][^$]*\\$|\\$\\$|\\\\\\(|\\\\\\[/.test(n.textContent)) bad.push(n.textContent.trim().slice(0, 80));
  }
  return bad;
}"""

MATH_DONE_JS = """() => {
  const maths = [...document.querySelectorAll('.math')];
  return maths.length === 0 || maths.every(m => m.querySelector('mjx-container'));
}"""

# 标出第一个看得见的、直接含有汉字的标题或段落，再问 Chromium 用什么字体画了它
MARK_CHINESE_JS = """() => {
  const chinese = e => e.offsetParent !== null &&
      [...e.childNodes].some(n => n.nodeType === Node.TEXT_NODE && /[\\u4e00-\\u9fff]/.test(n.textContent));
  const el = [...document.querySelectorAll('article h1, article p')].find(chinese) ||
             [...document.querySelectorAll('h1, h2, p')].find(chinese);
  if (!el) return null;
  el.setAttribute('data-cjk-probe', '');
  return el.textContent.trim().slice(0, 40);
}"""

IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(img => { img.loading = 'eager'; });
  await Promise.all(imgs.map(img => img.decode().catch(() => null)));
  return imgs.map(img => ({src: img.getAttribute('src').slice(0, 80), ok: img.complete && img.naturalWidth > 0}));
}"""


def test_every_page_in_browser(site, book, page, screenshots):
    """逐页打开：没有失败的请求，图片都加载了，公式都渲染了，中文用 CJK 字体。"""
    failed: list[str] = []
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    page.on("requestfailed", lambda r: failed.append(f"{r.failure} {r.url}"))
    steps = Steps(page, screenshots, "book")
    pages = _pages(book)
    with_math = {f"notebooks/{p.stem}.html" for p in NOTEBOOKS if _has_math(p)}
    problems: list[str] = []
    for rel in pages:
        failed.clear()
        with steps(f"打开 {rel}"):
            response = page.goto(f"{site}/{rel}", wait_until="load")
            assert response is not None and response.ok, f"{rel}：{response and response.status}"
        if rel == "index.html":        # 根目录只是跳转到首页
            page.wait_for_url("**/book/index.html")
            continue
        with steps(f"{rel}：公式"):
            page.wait_for_function(MATH_DONE_JS, timeout=60_000)
            rendered = page.locator("mjx-container").count()
            if rel in with_math and rendered == 0:
                problems.append(f"{rel}：笔记本里有公式，页面上却没有 MathJax 渲染的公式")
            problems += [f"{rel}：原样的 TeX {text!r}" for text in page.evaluate(RAW_MATH_JS)]
            problems += [f"{rel}：MathJax 排版出错 {text!r}" for text in page.locator("mjx-merror").all_inner_texts()]
        with steps(f"{rel}：站内链接"):
            links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
            problems += [f"{rel}：链接指向不存在的页面 {link}" for link in _broken_links(book, site, links)]
        with steps(f"{rel}：图片"):
            images = page.evaluate(IMAGES_JS)
            problems += [f"{rel}：图片没有加载 {img['src']}" for img in images if not img["ok"]]
        with steps(f"{rel}：中文字体"):
            text = page.evaluate(MARK_CHINESE_JS)
            fonts = platform_fonts(page, "[data-cjk-probe]")
            if not cjk_fonts_used(fonts):
                problems.append(f"{rel}：中文 {text!r} 没有用 CJK 字体渲染，实际字体 {fonts}")
        page.evaluate("document.fonts.ready.then(() => true)")    # MathJax 的字体在排版之后才加载
        problems += [f"{rel}：请求失败 {item}" for item in failed]
        if rel == "book/index.html" or rel.startswith("notebooks/02_"):
            steps.shot(Path(rel).stem)
    print(f"\n逐页检查 {len(pages)} 页，用时 {sum(seconds for _, seconds in steps.timings):.1f} 秒")
    assert not problems, "\n".join(problems)


def test_search_finds_membrane_potential(site, page, screenshots):
    """在搜索页搜“膜电位”：每一本正文里写到膜电位的笔记本都要出现在结果里。"""
    expected = {p.stem for p in NOTEBOOKS if SEARCH_TERM in _markdown_text(p)}
    assert expected, f"没有一本笔记本的正文提到“{SEARCH_TERM}”？"
    steps = Steps(page, screenshots, "book-search")
    with steps(f"搜索“{SEARCH_TERM}”"):
        page.goto(f"{site}/search.html?q={SEARCH_TERM}", wait_until="load")
        # 搜索结束时 Sphinx 才写出结果摘要（找到几页，或没有找到）
        page.wait_for_function("() => document.querySelector('#search-results .search-summary')?.textContent.trim()",
                               timeout=60_000)
    hrefs = page.eval_on_selector_all("#search-results ul.search li a", "links => links.map(a => a.getAttribute('href'))")
    found = {m.group(1) for h in hrefs if (m := re.search(r"notebooks/([0-9]{2}_[^/#?]+)\.html", h))}
    steps.shot("results", full_page=False)
    assert expected <= found, f"搜索“{SEARCH_TERM}”缺少 {sorted(expected - found)}；找到 {sorted(found)}"


def test_chinese_with_only_the_pip_font(site, browser_only_pip_font, fontconfig_only_pip_font, screenshots):
    """模拟没有系统中文字体的机器（CI 不装 fonts-noto-cjk）：fontconfig 只留 pip 装的 Noto Sans SC，中文仍不是方框。"""
    from snn_tutorial.plotting import pip_font_file

    if shutil.which("fc-list"):      # fontconfig 自己的命令行：确认这份配置里能显示简体中文的只剩 pip 的字体
        listed = subprocess.run(["fc-list", ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "FONTCONFIG_FILE": str(fontconfig_only_pip_font)}).stdout
        files = {Path(line.strip().rstrip(":")).resolve() for line in listed.splitlines() if line.strip()}
        assert files == {pip_font_file().resolve()}, f"排除系统中文字体之后还剩：{sorted(files)}"
    context = browser_only_pip_font.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page = context.new_page()
    steps = Steps(page, screenshots, "book-pip-font")
    try:
        for rel in ["book/index.html", f"notebooks/{NOTEBOOKS[0].stem}.html"]:
            with steps(f"{rel}：只有 pip 字体时的中文"):
                page.goto(f"{site}/{rel}", wait_until="load")
                text = page.evaluate(MARK_CHINESE_JS)
                fonts = platform_fonts(page, "[data-cjk-probe]")
                assert cjk_fonts_used(fonts) == ["Noto Sans SC"], f"中文 {text!r} 用的字体是 {fonts}"
        steps.shot("notebook-00")
    finally:
        context.close()
