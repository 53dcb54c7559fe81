"""The web page in a real browser: Debian's headless Chromium driven by Playwright.

This is what a person does: type a question, press Enter, and see the answering
sentence highlighted in its passage; upload a file and see it cited. Screenshots land in
``tests/artifacts/`` (git-ignored) so a reviewer can look at the page at phone and
desktop widths.

Without ``/usr/bin/chromium`` the tests skip with the reason; in CI (env ``CI``) or with
``SPEECH_QA_REQUIRE_BROWSER=1`` they fail instead, so a missing browser cannot pass quietly.
Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from qa import QA

pytestmark = [pytest.mark.browser, pytest.mark.server]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
GLOBAL_500 = "When did Dalian receive the Global 500 award?"
TIMEOUT_MS = 30_000


def _browser_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("SPEECH_QA_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str) -> None:
    """Skip on a developer machine; fail where the browser test must run."""
    if _browser_required():
        pytest.fail(f"browser test required (CI or SPEECH_QA_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


@dataclass
class Served:
    """A running page and the shared engine behind it."""

    url: str
    engine: QA


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (never Playwright's downloaded browsers)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """The page over the bundled speech on a free loopback port."""
    from ui.app import launch

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    engine = QA.default()
    app = launch(engine, host="127.0.0.1", port=port, block=False, quiet=True)
    try:
        yield Served(url=f"http://127.0.0.1:{port}/", engine=engine)
    finally:
        app.close()


def _ask(page: Any, question: str) -> None:
    """Type a question and press Enter, as a person would."""
    box = page.locator("#question textarea")
    box.click()
    box.fill(question)
    box.press("Enter")


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_enter_shows_the_highlighted_answer(browser: Any, served: Served, viewport: str) -> None:
    expected = served.engine.ask(GLOBAL_500, 3)
    assert expected.answer is not None and "2001" in expected.answer
    page = browser.new_page(viewport=VIEWPORTS[viewport])
    try:
        page.goto(served.url)
        _ask(page, GLOBAL_500)

        # The answer sentence is highlighted in place; its phrase (if any) is a token of its own
        # inside it, so the sentence is the run of highlighted tokens read together.
        page.locator("#passage-1 .token.highlighted").first.wait_for(timeout=TIMEOUT_MS)
        marked = page.evaluate("""() => [...document.querySelectorAll('#passage-1 .token.highlighted')]
                                    .map(t => t.innerText).join('')""")
        assert "".join(expected.answer.split()) in "".join(marked.split())  # tokens are padded
        if expected.phrase:
            phrase_tokens = page.locator("#passage-1 .token.highlighted", has_text=expected.phrase)
            assert phrase_tokens.count() >= 1
        answer_box = page.locator("#answer-box")
        assert expected.answer in answer_box.inner_text()
        head = page.locator("#passage-1 .passage-head").inner_text()
        best = expected.passages[0]
        assert f"{best.source}, paragraph {best.paragraph}" in head and "score" in head
        assert page.locator(".passage-head:visible").count() == 3
        # Readable at this width: nothing forces sideways scrolling.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[viewport]["width"], f"page is {width}px wide"

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"ui-{viewport}.png"), full_page=True)
    finally:
        page.close()


def test_a_question_about_the_speech_itself_gets_its_title(browser: Any, served: Served) -> None:
    expected = served.engine.ask("What is this speech about?", 3)
    assert expected.answer is not None  # the title line (qa.about)
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    try:
        page.goto(served.url)
        _ask(page, "What is this speech about?")
        page.locator("#passage-1 .token.highlighted").first.wait_for(timeout=TIMEOUT_MS)
        assert expected.answer in page.locator("#answer-box").inner_text()
        marked = page.evaluate("""() => [...document.querySelectorAll('#passage-1 .token.highlighted')]
                                    .map(t => t.innerText).join('')""")
        assert "".join(expected.answer.split()) == "".join(marked.split())
        assert page.locator("#passage-2 .token.highlighted").count() == 0  # the opening, unmarked
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-about.png"), full_page=True)
    finally:
        page.close()


def test_example_click_and_no_answer(browser: Any, served: Served) -> None:
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    try:
        page.goto(served.url)
        page.locator("#examples button", has_text="When did Ryutaro Hashimoto visit China?").click()
        page.locator("#answer-box", has_text="1997").wait_for(timeout=TIMEOUT_MS)
        assert page.locator("#question textarea").input_value() == "When did Ryutaro Hashimoto visit China?"
        assert page.locator(".passage-head:visible").count() == 3

        # A new passage count re-asks the same question.
        count = page.locator("#top-k input[type=number]")
        count.fill("5")
        count.press("Enter")
        page.wait_for_function("() => document.querySelectorAll('#passage-5 .passage-head').length > 0"
                               " && document.querySelector('#passage-5 .passage-head').offsetParent !== null",
                               timeout=TIMEOUT_MS)
        assert page.locator(".passage-head:visible").count() == 5

        _ask(page, "What is the recipe for chocolate cake?")
        page.locator("#answer-box", has_text="does not seem to answer").wait_for(timeout=TIMEOUT_MS)
        assert "Closest passage 1" in page.locator("#passage-1 .passage-head").inner_text()
        assert page.locator("#passage-1 .token.highlighted").count() == 0
        page.screenshot(path=str(ARTIFACTS / "ui-no-answer.png"), full_page=True)
    finally:
        page.close()


def test_upload_is_cited_then_back_to_the_speech(browser: Any, served: Served, tmp_path: Path) -> None:
    notes = tmp_path / "lighthouse.txt"
    notes.write_text("The Zorbland lighthouse was painted teal in 1887 by its keeper, Ana Vell.\n",
                     encoding="utf-8")
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"not a zip archive at all")
    page = browser.new_page(viewport=VIEWPORTS["phone"])
    try:
        page.goto(served.url)
        page.locator("#uploads").get_by_text("Your own documents").click()
        page.locator("#upload input[type=file]").set_input_files([str(notes), str(broken)])
        status = page.locator("#status", has_text="lighthouse.txt")
        status.wait_for(timeout=TIMEOUT_MS)
        assert "Could not read broken.docx" in status.inner_text()

        _ask(page, "What colour was the Zorbland lighthouse painted?")
        page.locator("#answer-box", has_text="teal").wait_for(timeout=TIMEOUT_MS)
        assert "lighthouse.txt" in page.locator("#passage-1 .passage-head").inner_text()
        page.screenshot(path=str(ARTIFACTS / "ui-upload-phone.png"), full_page=True)

        page.locator("#use-speech").click()
        page.locator("#status", has_text="Searching: the speech").wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => !document.querySelector('#status').innerText.includes('lighthouse')",
            timeout=TIMEOUT_MS)
        _ask(page, GLOBAL_500)
        page.locator("#answer-box", has_text="2001").wait_for(timeout=TIMEOUT_MS)
        assert "dalian_speech.txt" in page.locator("#passage-1 .passage-head").inner_text()
    finally:
        page.close()


def test_uploaded_pdf_answers_cite_their_page(browser: Any, served: Served, tmp_path: Path,
                                              make_pdf: Any) -> None:
    pdf = make_pdf(tmp_path, [
        "Annual report of the Brennan water board. This page introduces the board and its members.",
        "The Brennan wind farm produced 300 megawatts in 2024, enough for forty thousand homes.",
        "Lake Brennan holds 40 million cubic metres of water when full.",
    ], name="energy.pdf")
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    try:
        page.goto(served.url)
        page.locator("#uploads").get_by_text("Your own documents").click()
        page.locator("#upload input[type=file]").set_input_files([str(pdf)])
        page.locator("#status", has_text="energy.pdf").wait_for(timeout=TIMEOUT_MS)

        _ask(page, "How much power did the wind farm produce?")
        page.locator("#answer-box", has_text="300 megawatts").wait_for(timeout=TIMEOUT_MS)
        assert "energy.pdf, p. 2" in page.locator("#answer-box").inner_text()  # the card cites the page
        assert "energy.pdf, p. 2" in page.locator("#passage-1 .passage-head").inner_text()
        page.screenshot(path=str(ARTIFACTS / "ui-pdf-page.png"), full_page=True)
    finally:
        page.close()


def test_refused_question_replaces_the_stale_answer(browser: Any, served: Served) -> None:
    page = browser.new_page(viewport=VIEWPORTS["phone"])
    try:
        page.goto(served.url)
        _ask(page, GLOBAL_500)
        page.locator("#answer-box", has_text="2001").wait_for(timeout=TIMEOUT_MS)

        _ask(page, "   ")  # blank: refused
        problem = page.locator("#answer-box.problem", has_text="question is empty")
        problem.wait_for(timeout=TIMEOUT_MS)
        assert "2001" not in page.locator("#answer").inner_text()  # the stale answer is gone
        assert page.locator(".passage-head:visible").count() == 0
        assert page.locator(".toast-body:visible").count() == 0  # said in place, not in a toast

        # The box stops at the limit and counts as the user types.
        box = page.locator("#question textarea")
        assert box.get_attribute("maxlength") == "2000"
        box.fill("x" * 24)
        box.type("x")  # a key press, as a person types
        page.locator("#question-counter", has_text="25 / 2,000").wait_for(timeout=TIMEOUT_MS)
        page.screenshot(path=str(ARTIFACTS / "ui-refused-phone.png"), full_page=True)
    finally:
        page.close()


OVERLAP_JS = """() => {
  const label = document.querySelector('#upload label[data-testid=block-label]');
  const range = document.createRange(); range.selectNodeContents(label);
  const words = [...range.getClientRects()];
  const icons = [...document.querySelectorAll('#upload button')]
      .filter(b => b.offsetParent !== null).map(b => b.getBoundingClientRect());
  return words.some(w => icons.some(i => w.left < i.right && i.left < w.right
                                         && w.top < i.bottom && i.top < w.bottom));
}"""


def test_upload_icons_leave_the_label_readable_on_a_phone(browser: Any, served: Served,
                                                          tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The Zorbland lighthouse was painted teal in 1887.\n", encoding="utf-8")
    page = browser.new_page(viewport=VIEWPORTS["phone"])
    try:
        page.goto(served.url)
        page.locator("#uploads").get_by_text("Your own documents").click()
        page.locator("#upload input[type=file]").set_input_files([str(notes)])
        page.locator("#upload", has_text="notes.txt").wait_for(timeout=TIMEOUT_MS)
        assert page.evaluate(OVERLAP_JS) is False, "the upload box's icons cover its label"
    finally:
        page.close()
