"""The Gradio page: ask the speech (or your own documents) and see the answering sentence.

Everything here is presentation. Retrieval, ranking and reading files belong to ``qa`` and
``ingest``; this module only calls their public API and turns an ``Answer`` into widgets.

Why the question is two chained events: the first (``api_name="ask"``) returns exactly
``Answer.to_dict()``, so ``gradio_client`` callers get the same JSON as ``speech-qa ask
--json``; the second, private step draws that dict into the page. One code path serves
people and programs, and the page can never show something the API would not return.

Uploaded documents live in the browser session (``gr.State``): each session that uploads
gets its own engine over the base corpus plus its files, and the shared engine (the
bundled speech's cached index) is never modified.
"""

from __future__ import annotations

import html
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from qa import (
    DEFAULT_CORPUS_TITLE,
    MAX_QUESTION_CHARS,
    QA,
    SUPPORTED_SUFFIXES,
    QuestionError,
    UploadSessions,
    default_engine,
    question_problem,
)
from ui.render import COLOURS, MAX_PASSAGES, render_answer, render_problem
from ui.uploads import status_html

if TYPE_CHECKING:
    from ui.server import RunningServer

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 3

MAX_UPLOAD = "20mb"
"""Per-file upload limit, enforced by Gradio before our code sees the bytes."""

UPLOAD_TYPES = list(SUPPORTED_SUFFIXES)
"""Every format the product reads (one list for the CLI, the API and the page)."""

DEFAULT_CONCURRENCY = 4
"""Questions answered at once; a question takes tens of milliseconds, so a few suffice."""

PROGRESS = gr.Progress()
"""Default of the upload handler's ``progress`` parameter: Gradio sees it and injects the
event's progress tracker (shown over the status line)."""

UNREAD_UPLOAD_SECONDS = 600
"""Uploads never read (the tab closed between Gradio receiving the file and our handler
running) are deleted after this long. Files that are read are deleted at once."""

PROGRESS_POLL_SECONDS = 0.25
"""How often an upload's progress bar is refreshed while its documents are indexed."""


COUNTER_JS = f"""(text) => {{
  const used = (text || "").length, limit = {MAX_QUESTION_CHARS};
  const near = used > limit * 0.9 ? ' class="near-limit"' : "";
  return `<span${{near}}>${{used.toLocaleString()}} / ${{limit.toLocaleString()}}</span>`;
}}"""
"""Browser-side counter under the question box (the box itself stops at the limit)."""


def whole_top_k(top_k: object) -> object:
    """The slider sends 3.0; ``2.5`` or ``"3"`` from an API caller is refused, not rounded.

    Why: one range and one type on every surface (Python, CLI, page, API): whole numbers
    from 1 to ``MAX_TOP_K``. Anything else reaches ``QA.ask``, which names the problem.
    """
    if top_k is None:
        return DEFAULT_TOP_K
    if isinstance(top_k, float) and top_k.is_integer():
        return int(top_k)
    return top_k


class SessionCloser:
    """The page state's delete callback: ``sessions.close(key)``, never copied.

    Why not the bound method ``sessions.close``: Gradio puts a ``State``'s delete callback
    into the page's config, and its ``/config`` route deep-copies that config for every
    page load and every ``gradio_client``. A bound method is deep-copied with its object,
    so each visitor cloned the ``UploadSessions`` and, through it, the shared engine and its
    index: about 430 MB of resident memory per ``/config``, never returned (20
    ``gradio_client`` users took a server past 9 GB in under a minute; ``bench/RESULTS.md``,
    Load). Copies of this object are the object itself.
    """

    def __init__(self, sessions: UploadSessions) -> None:
        self.sessions = sessions

    def __call__(self, key: str | None) -> None:
        self.sessions.close(key)

    def __copy__(self) -> SessionCloser:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SessionCloser:
        return self


@dataclass(frozen=True)
class PageText:
    """What the page calls its collection: title, subtitle, examples, button and labels.

    Why derived from the engine: over ``serve --index DIR`` the page must describe that
    collection, never the bundled speech.
    """

    title: str
    subtitle: str
    examples: tuple[str, ...]
    base_label: str  # "the speech", "the collection": what questions go to without uploads
    placeholder: str
    back_button: str


def page_text(engine: QA) -> PageText:
    """The page's wording for ``engine``'s collection (the speech's, or a neutral one)."""
    if engine.is_default_corpus:
        return PageText(
            title="Ask the Dalian speech",
            subtitle=(f"Questions are answered from the speech <em>“{DEFAULT_CORPUS_TITLE}”</em>: how "
                      "Dalian improved its environment and worked with Kitakyushu and Japan to do it."),
            examples=engine.examples, base_label="the speech",
            placeholder="Ask a question about the speech, then press Enter",
            back_button="Back to the speech alone")
    sources = engine.sources
    shown = ", ".join(html.escape(name) for name in sources[:3])
    more = f" and {len(sources) - 3} more" if len(sources) > 3 else ""
    called = f" <b>{html.escape(engine.name)}</b>" if engine.name else ""
    count = f"{len(sources)} document{'s' if len(sources) != 1 else ''}"
    return PageText(
        title="Ask your documents",
        subtitle=f"Questions are answered from the collection{called}: {count} ({shown}{more}).",
        examples=engine.examples, base_label="the collection",
        placeholder="Ask a question about your documents, then press Enter",
        back_button="Back to the collection alone")


def build_app(engine: QA, *, sessions: UploadSessions | None = None,
              unread_upload_seconds: int = UNREAD_UPLOAD_SECONDS) -> gr.Blocks:
    """The page over ``engine`` (the bundled speech, or an index given to ``serve``).

    Args:
        engine: Shared by every session; never modified (uploads are layered over it).
        sessions: Visitors' uploads (budget, indexing queue); one over ``engine`` by default.
        unread_upload_seconds: Age at which an upload that no handler ever read is deleted
            (Gradio's ``delete_cache`` sweep, run every half of that).

    Returns:
        The Blocks app; call ``.queue(...)`` and ``.launch(...)`` on it, or use ``launch``.
    """
    sessions = UploadSessions(engine) if sessions is None else sessions
    # Tokenize the shared corpus for the sessions' BM25 now, not on the first upload.
    threading.Thread(target=sessions.prepare, name="speech-qa-prepare", daemon=True).start()
    text = page_text(engine)

    def key_of(request: gr.Request | None) -> str | None:
        return getattr(request, "session_hash", None) if request is not None else None

    def current(request: gr.Request | None) -> QA:
        session = sessions.get(key_of(request))
        return session.engine if session else engine

    def ask(question: str, top_k: float, request: gr.Request) -> dict[str, Any]:
        """Answer over the session's corpus; returns ``Answer.to_dict()`` (the API result).

        A rejected question is an error for API callers (``AppError`` with our one-line
        message); the page shows the same message in place of the answer (``failure``),
        so no toast and no traceback in the server log.
        """
        try:
            return current(request).ask(question or "", whole_top_k(top_k)).to_dict()  # type: ignore[arg-type]
        except QuestionError as exc:
            logger.info("refused a page request: %s", exc)
            raise gr.Error(str(exc), title="Please check the question", visible=False,
                           print_exception=False) from exc

    def explain_refusal(question: str, top_k: float) -> list[Any]:
        """The reason a question was refused, drawn where the answer would be."""
        return render_problem(question_problem(question, whole_top_k(top_k)) or
                              "The question could not be answered; please try again.")

    def ask_again(question: str, top_k: float, request: gr.Request) -> Any:
        """Re-ask with a new passage count; nothing to do before a first question."""
        if not (question or "").strip():
            return gr.skip()
        return ask(question, top_k, request)

    def render(result: dict[str, Any] | None, request: gr.Request) -> list[Any]:
        session = sessions.get(key_of(request))
        if session and session.sources:
            return render_answer(result, f"your documents and {text.base_label}", plural=True)
        return render_answer(result, text.base_label)

    def upload(files: list[str] | None, request: gr.Request,
               progress: gr.Progress = PROGRESS) -> tuple[dict[str, Any], str | None]:
        """Add the files to this session; returns when they are searchable (the API result).

        The embedding runs in ``qa``'s indexing queue, not here: this only follows it with
        a progress bar, and questions asked meanwhile go to what is already indexed.
        """
        key = key_of(request)
        session = sessions.open(key)
        queued = session.add_files(files or [], delete_after_read=True)
        while not session.wait(timeout=PROGRESS_POLL_SECONDS):
            state = session.progress()
            progress(state.fraction, desc=state.message or "Indexing")
        indexed = set(session.sources)
        result = {"added": [name for name in queued.added if name in indexed],
                  "sources": list(session.sources),
                  "problems": [p.to_dict() for p in queued.problems], "pending": []}
        return result, key

    def use_base(request: gr.Request) -> dict[str, Any]:
        """Back to the shared collection alone: the session's documents are freed."""
        sessions.close(key_of(request))
        return {"added": [], "sources": [], "problems": [], "pending": []}

    def show_upload(result: dict[str, Any] | None) -> tuple[str, None]:
        """The one status line, and an empty upload box (accepted files are in the status;
        refused ones are not left looking accepted)."""
        result = result or {}
        return status_html(text.base_label, result.get("sources", []), result.get("problems", [])), None

    # Gradio writes each upload to disk before any handler runs; if the visitor leaves in
    # between, only this sweep removes it (read uploads are deleted by ``add_files``).
    sweep = (max(1, unread_upload_seconds // 2), unread_upload_seconds)
    with gr.Blocks(title=text.title, analytics_enabled=False, delete_cache=sweep) as app:
        # Holds this visitor's session key: Gradio calls the delete callback when it drops
        # the session's state (about an hour after the tab closed), a fallback to ``unload``.
        session_key = gr.State(None, delete_callback=SessionCloser(sessions))
        upload_result = gr.JSON(visible=False, elem_id="upload-result")
        gr.Markdown(f"# {text.title}", elem_id="title")
        gr.Markdown(text.subtitle, elem_id="subtitle")

        with gr.Row(elem_id="ask-row", equal_height=True):
            question = gr.Textbox(
                show_label=False, placeholder=text.placeholder,
                lines=1, max_lines=3, scale=5, autofocus=True, elem_id="question", submit_btn=False,
                max_length=MAX_QUESTION_CHARS,
            )
            ask_button = gr.Button("Ask", variant="primary", scale=0, elem_id="ask-button")
        counter = gr.HTML(f"0 / {MAX_QUESTION_CHARS:,}", elem_id="question-counter")
        # Counted in the browser as the user types: no round trip per key.
        question.input(None, inputs=[question], outputs=[counter], js=COUNTER_JS,
                       api_visibility="private", show_progress="hidden")
        examples = None
        if text.examples:
            examples = gr.Dataset(
                components=[question], samples=[[q] for q in text.examples],
                label="Examples (click to ask)", elem_id="examples", samples_per_page=len(text.examples),
            )
        with gr.Column(elem_id="page-body"):
            # Options first on a desktop; on a phone CSS moves them under the results so
            # the answer is on screen right after asking.
            with gr.Column(elem_id="options"):
                top_k = gr.Slider(1, MAX_PASSAGES, value=DEFAULT_TOP_K, step=1, label="Passages to show",
                                  elem_id="top-k")
                # The one status line: beside the uploads on a desktop (top of the side
                # column, visible with the uploads closed) and right above them on a phone.
                status = gr.HTML(status_html(text.base_label), elem_id="status")
                with gr.Accordion("Your own documents", open=False, elem_id="uploads"):
                    kinds = ", ".join(UPLOAD_TYPES[:-1]) + f" or {UPLOAD_TYPES[-1]}"
                    files = gr.File(
                        label=f"Upload {kinds} (up to {MAX_UPLOAD.upper()} each)",
                        file_count="multiple", file_types=UPLOAD_TYPES, type="filepath", elem_id="upload",
                    )
                    back_button = gr.Button(text.back_button, size="sm", elem_id="use-speech")
            with gr.Column(elem_id="results"):
                answer_box = gr.HTML(visible=False, elem_id="answer")
                passage_widgets: list[Any] = []
                for rank in range(MAX_PASSAGES):
                    with gr.Group(visible=False, elem_classes=["passage"],
                                  elem_id=f"passage-{rank + 1}") as column:
                        head = gr.HTML()
                        highlighted = gr.HighlightedText(
                            show_label=False, color_map=COLOURS, show_legend=False,
                            show_inline_category=False, combine_adjacent=False,
                            elem_classes=["passage-text"], interactive=False,
                        )
                    passage_widgets += [column, head, highlighted]
        with gr.Accordion("JSON (what the /ask API returns)", open=False):
            result_json = gr.JSON(show_label=False, elem_id="result-json")

        render_outputs = [answer_box, *passage_widgets]
        inputs = [question, top_k]

        def then_render(event: Any) -> None:
            """Draw the event's ``Answer.to_dict()`` into the page, or the reason it was refused."""
            event.success(render, inputs=[result_json], outputs=render_outputs,
                          api_visibility="private", show_progress="hidden", scroll_to_output=True)
            event.failure(explain_refusal, inputs=[question, top_k], outputs=render_outputs,
                          api_visibility="private", show_progress="hidden")

        then_render(gr.on(
            triggers=[question.submit, ask_button.click], fn=ask, inputs=inputs, outputs=[result_json],
            api_name="ask", api_description="Answer a question; returns Answer.to_dict().",
        ))
        if examples is not None:
            then_render(examples.click(
                lambda sample: sample[0], inputs=[examples], outputs=[question],
                api_visibility="private", show_progress="hidden",
            ).then(ask, inputs=inputs, outputs=[result_json], api_visibility="private"))
        then_render(gr.on(triggers=[top_k.change, top_k.release], fn=ask_again, inputs=inputs,
                          outputs=[result_json], trigger_mode="always_last",
                          api_visibility="private", show_progress="hidden"))

        gr.on(triggers=[files.upload], fn=upload, inputs=[files], outputs=[upload_result, session_key],
              api_name="upload", show_progress_on=[status],
              concurrency_limit=sessions.queue.max_size + 2, concurrency_id="upload",
              api_description=("Add files to this session's collection; returns when they are "
                               "searchable: {added, sources, problems, pending}."),
              ).then(show_upload, inputs=[upload_result], outputs=[status, files],
                     api_visibility="private", show_progress="hidden")
        gr.on(triggers=[back_button.click], fn=use_base, outputs=[upload_result], api_name="use_speech",
              api_description="Forget this session's uploads: questions go to the collection alone.",
              ).then(show_upload, inputs=[upload_result], outputs=[status, files],
                     api_visibility="private", show_progress="hidden")
        def visitor_left(request: gr.Request) -> None:
            """The tab closed: cancel this visitor's indexing and free their engine now."""
            sessions.close(key_of(request))

        app.unload(visitor_left)
    return app

def launch(engine: QA | None = None, host: str = "127.0.0.1", port: int = 7860, *,
           block: bool = True, concurrency: int | None = None,
           max_file_size: str | int = MAX_UPLOAD, quiet: bool = False) -> RunningServer:
    """Warm the engine, then serve the page and the JSON API (``ui.server``) with uvicorn.

    The model and index load before the server opens its port, so the first visitor's
    question is as fast as every later one.

    Args:
        engine: Defaults to the process-wide engine over the bundled speech.
        host: Interface to bind; loopback unless the caller deliberately opens it up.
        port: TCP port.
        block: Serve until interrupted (the CLI); False returns at once (tests).
        concurrency: Page events run at once (default ``ui.server.DEFAULT_PAGE_CONCURRENCY``).
        max_file_size: Largest upload Gradio accepts, e.g. ``"20mb"``.
        quiet: No access log.

    Returns:
        The running server (call ``.close()`` when ``block`` is False).
    """
    from ui.server import DEFAULT_PAGE_CONCURRENCY, serve

    return serve(engine or default_engine(), host, port, block=block,
                 concurrency=concurrency or DEFAULT_PAGE_CONCURRENCY, max_file_size=max_file_size,
                 quiet=quiet)

__all__ = ["MAX_PASSAGES", "PageText", "SessionCloser", "build_app", "launch", "page_text"]
