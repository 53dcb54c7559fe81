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

import logging
from typing import TYPE_CHECKING, Any

import gradio as gr

from qa import DEFAULT_CORPUS_TITLE, QA, QuestionError, default_engine
from ui.render import COLOURS, MAX_PASSAGES, render_answer
from ui.uploads import MemoEncoder, SessionCorpus, read_uploads, status_html

if TYPE_CHECKING:
    from ui.server import RunningServer

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 3

MAX_UPLOAD = "20mb"
"""Per-file upload limit, enforced by Gradio before our code sees the bytes."""

UPLOAD_TYPES = [".txt", ".md", ".pdf", ".docx", ".html"]

EXAMPLES = [
    "When did Dalian receive the Global 500 award?",
    "Who proposed the Dalian Environmental Model Zone?",
    "When did Ryutaro Hashimoto visit China?",
    "How many projects did the investment include?",
    "What is Dalian's urban development idea?",
]

TITLE = "Ask the Dalian speech"
SUBTITLE = (
    f"Questions are answered from the speech <em>“{DEFAULT_CORPUS_TITLE}”</em>: how Dalian "
    "improved its environment and worked with Kitakyushu and Japan to do it."
)


def build_app(engine: QA) -> gr.Blocks:
    """The page over ``engine`` (the bundled speech, or an index given to ``serve``).

    Args:
        engine: Shared by every session; never modified (uploads get their own engine).

    Returns:
        The Blocks app; call ``.queue(...)`` and ``.launch(...)`` on it, or use ``launch``.
    """

    session_encoder = MemoEncoder(engine.encoder)

    def ask(question: str, top_k: float, session: SessionCorpus | None) -> dict[str, Any]:
        """Answer over the session's corpus; returns ``Answer.to_dict()`` (the API result)."""
        current = session.engine if session else engine
        try:
            return current.ask(question or "", int(top_k or DEFAULT_TOP_K)).to_dict()
        except QuestionError as exc:
            raise gr.Error(str(exc), title="Please check the question") from exc

    def ask_again(question: str, top_k: float, session: SessionCorpus | None) -> Any:
        """Re-ask with a new passage count; nothing to do before a first question."""
        if not (question or "").strip():
            return gr.skip()
        return ask(question, top_k, session)

    def use_files(files: list[str] | None) -> tuple[SessionCorpus | None, str]:
        """Build this session's corpus from the files now in the upload box."""
        session, problems = read_uploads(engine, files, session_encoder)
        return session, status_html(session, problems)

    def use_speech() -> tuple[None, None, str]:
        """Back to the base corpus alone: forget the uploads and empty the upload box."""
        return None, None, status_html(None)

    def mirror(message: str) -> str:
        """The same status under the upload box, where a phone user is looking."""
        return message

    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        session_state = gr.State(None)
        gr.Markdown(f"# {TITLE}", elem_id="title")
        gr.Markdown(SUBTITLE, elem_id="subtitle")

        with gr.Row(elem_id="ask-row", equal_height=True):
            question = gr.Textbox(
                show_label=False, placeholder="Ask a question about the speech, then press Enter",
                lines=1, max_lines=3, scale=5, autofocus=True, elem_id="question", submit_btn=False,
            )
            ask_button = gr.Button("Ask", variant="primary", scale=0, elem_id="ask-button")
        examples = gr.Dataset(
            components=[question], samples=[[q] for q in EXAMPLES], label="Examples (click to ask)",
            elem_id="examples", samples_per_page=len(EXAMPLES),
        )
        status = gr.HTML(status_html(None), elem_id="status")
        with gr.Column(elem_id="page-body"):
            # Options first on a desktop; on a phone CSS moves them under the results so
            # the answer is on screen right after asking.
            with gr.Column(elem_id="options"):
                top_k = gr.Slider(1, MAX_PASSAGES, value=DEFAULT_TOP_K, step=1, label="Passages to show",
                                  elem_id="top-k")
                with gr.Accordion("Your own documents", open=False, elem_id="uploads"):
                    files = gr.File(
                        label=f"Upload .txt, .md, .pdf, .docx or .html (up to {MAX_UPLOAD.upper()} each)",
                        file_count="multiple", file_types=UPLOAD_TYPES, type="filepath", elem_id="upload",
                    )
                    upload_status = gr.HTML(status_html(None), elem_id="upload-status")
                    speech_button = gr.Button("Back to the speech alone", size="sm", elem_id="use-speech")
            with gr.Column(elem_id="results"):
                answer_box = gr.HTML(visible=False, elem_id="answer")
                passage_widgets: list[Any] = []
                for rank in range(MAX_PASSAGES):
                    with gr.Group(visible=False, elem_classes=["passage"],
                                  elem_id=f"passage-{rank + 1}") as column:
                        head = gr.HTML()
                        text = gr.HighlightedText(
                            show_label=False, color_map=COLOURS, show_legend=False,
                            show_inline_category=False, combine_adjacent=False,
                            elem_classes=["passage-text"], interactive=False,
                        )
                    passage_widgets += [column, head, text]
        with gr.Accordion("JSON (what the /ask API returns)", open=False):
            result_json = gr.JSON(show_label=False, elem_id="result-json")

        render_outputs = [answer_box, *passage_widgets]
        inputs = [question, top_k, session_state]

        def then_render(event: Any) -> None:
            """Draw the event's ``Answer.to_dict()`` into the page once it succeeded."""
            event.success(render_answer, inputs=[result_json, session_state], outputs=render_outputs,
                          api_visibility="private", show_progress="hidden", scroll_to_output=True)

        then_render(gr.on(
            triggers=[question.submit, ask_button.click], fn=ask, inputs=inputs, outputs=[result_json],
            api_name="ask", api_description="Answer a question; returns Answer.to_dict().",
        ))
        then_render(examples.click(
            lambda sample: sample[0], inputs=[examples], outputs=[question],
            api_visibility="private", show_progress="hidden",
        ).then(ask, inputs=inputs, outputs=[result_json], api_visibility="private"))
        then_render(gr.on(triggers=[top_k.change, top_k.release], fn=ask_again, inputs=inputs,
                          outputs=[result_json], trigger_mode="always_last",
                          api_visibility="private", show_progress="hidden"))

        for event in (
            gr.on(triggers=[files.upload, files.delete], fn=use_files, inputs=[files],
                  outputs=[session_state, status], api_name="upload",
                  api_description="Use these files (plus the speech) for this session's questions."),
            gr.on(triggers=[speech_button.click, files.clear], fn=use_speech,
                  outputs=[session_state, files, status], api_name="use_speech",
                  api_description="Forget this session's uploads: questions go to the speech alone."),
        ):
            event.then(mirror, inputs=[status], outputs=[upload_status], api_visibility="private",
                       show_progress="hidden")
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

__all__ = ["EXAMPLES", "MAX_PASSAGES", "build_app", "launch"]
