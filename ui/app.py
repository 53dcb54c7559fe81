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

import atexit
import html
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from index import Encoder
from ingest import DEFAULT_CORPUS_TITLE, Document, IngestError, document_from_bytes
from qa import QA, QuestionError, default_engine

logger = logging.getLogger(__name__)

MAX_PASSAGES = 10
"""Most passages the page shows (the slider's maximum); the widgets are created up front."""

DEFAULT_TOP_K = 3

MAX_UPLOAD = "20mb"
"""Per-file upload limit, enforced by Gradio before our code sees the bytes."""

UPLOAD_TYPES = [".txt", ".md", ".pdf", ".docx", ".html"]

DEFAULT_CONCURRENCY = 4
"""Questions answered at once; a question takes tens of milliseconds, so a few suffice."""

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

ANSWER_LABEL = "answer"
"""HighlightedText category of the best answering sentence."""
ALSO_LABEL = "also relevant"
"""Category of a passage's other answering sentences."""

COLOURS = {ANSWER_LABEL: "#facc15", ALSO_LABEL: "#fde68a"}
"""Gradio draws these at half opacity: a clear yellow for the answer, a faint amber for the rest."""

CSS = """
.gradio-container { max-width: 920px !important; margin: 0 auto !important; }
#title h1 { margin-bottom: 0.1em; }
#subtitle p { margin-top: 0; color: var(--body-text-color-subdued); }
#ask-row { align-items: stretch; flex-wrap: nowrap; gap: 8px; }
#ask-row > * { min-width: 0 !important; }
#ask-button { max-width: 96px; min-width: 72px !important; }
.answer-box { border-left: 6px solid #eab308; background: var(--block-background-fill);
              padding: 14px 18px; border-radius: 8px; }
.answer-box .answer-kicker { font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.06em;
                             color: var(--body-text-color-subdued); margin: 0 0 4px 0; }
.answer-box .answer-text { font-size: 1.3rem; line-height: 1.45; font-weight: 600; margin: 0; }
.answer-box .answer-meta { font-size: 0.85rem; color: var(--body-text-color-subdued); margin: 6px 0 0 0; }
.answer-box.no-answer { border-left-color: #94a3b8; }
.answer-box.no-answer .answer-text { font-size: 1.1rem; font-weight: 500; }
.passage-head { font-size: 0.9rem; color: var(--body-text-color-subdued); margin: 0; }
.passage-head b { color: var(--body-text-color); }
.passage { gap: 0 !important; border: 1px solid var(--border-color-primary) !important;
           border-radius: 10px !important; overflow: hidden;
           background: var(--block-background-fill) !important; }
.passage > div, .passage .block, .passage .styler { border: none !important; box-shadow: none !important;
           background: var(--block-background-fill) !important; }
.passage .html-container { padding: 10px 14px 0 14px !important; }
.passage .passage { border: none !important; border-radius: 0 !important; }  /* Gradio nests a group twice */
#status .html-container { padding-top: 0 !important; padding-bottom: 0 !important; }
#page-body { gap: var(--layout-gap); }
/* Gradio lays tokens out as flex boxes and breaks words anywhere; a passage reads better as
   one paragraph of running text with the answering sentence marked inline. */
.passage-text .textfield { display: block !important; word-break: normal !important;
                           overflow-wrap: break-word; line-height: 1.7 !important; }
.passage-text .token-container { display: inline !important; }
.passage-text .token, .passage-text .token.highlighted { display: inline !important; margin: 0 !important;
    padding: 2px 0 !important; box-decoration-break: clone; -webkit-box-decoration-break: clone;
    cursor: text !important; }
.passage-text .token.highlighted { padding: 2px 3px !important; }
.passage-text .text { white-space: normal !important; }
.corpus-status p { margin: 0.2em 0; }
.upload-problem { color: #b91c1c; }
@media (max-width: 480px) {
  .gradio-container { padding: 0 6px !important; }
  #page-body > #options { order: 2; }
  #page-body > #results { order: 1; }
  #examples button { font-size: 0.85rem; padding: 4px 8px; text-align: left; }
  .answer-box .answer-text { font-size: 1.12rem; }
}
"""


@dataclass(frozen=True)
class SessionCorpus:
    """A session's own corpus: the base documents plus its uploads, with their engine.

    Attributes:
        engine: Answers over base + uploads (built for this session only).
        uploads: Display names of the uploaded documents, in upload order.
    """

    engine: QA
    uploads: tuple[str, ...]


# ---------------------------------------------------------------------------- rendering
def _highlight_value(passage: dict[str, Any], answer: str | None) -> dict[str, Any]:
    """A ``HighlightedText`` value marking the passage's answering sentences in place.

    The best answering sentence (the answer itself) gets the strong colour, the passage's
    other highlights a pale one. With no answer nothing is marked: the closest passages
    are context, and a yellow sentence would read as an answer that is not there. Spans
    are clipped and de-overlapped because Gradio slices the text between consecutive
    entities and would repeat text for overlapping spans.
    """
    text: str = passage["text"]
    entities: list[dict[str, Any]] = []
    if answer is None:
        return {"text": text, "entities": entities}
    cursor = 0
    spans = sorted(passage.get("highlights", []), key=lambda span: (span["start"], span["end"]))
    for span in spans:
        start, end = max(span["start"], cursor), min(span["end"], len(text))
        if start >= end:
            continue
        is_answer = text[start:end].strip() == answer.strip()
        entities.append({"entity": ANSWER_LABEL if is_answer else ALSO_LABEL, "start": start, "end": end})
        cursor = end
    return {"text": text, "entities": entities}


def _corpus_name(session: SessionCorpus | None) -> str:
    return "your documents and the speech" if session else "the speech"


def _answer_html(result: dict[str, Any], session: SessionCorpus | None) -> str:
    """The prominent box above the passages: the answer sentence, or a plain 'no answer'."""
    if result["answer"] is None:
        closest = "The closest passages are below." if result["passages"] else ""
        return (
            '<div class="answer-box no-answer" id="answer-box">'
            f'<p class="answer-kicker">No answer</p>'
            f'<p class="answer-text">{html.escape(_corpus_name(session)).capitalize()} '
            f"{'do' if session else 'does'} not seem to answer this question. {closest}</p>"
            "</div>"
        )
    best = result["passages"][0] if result["passages"] else None
    where = f" · {html.escape(best['source'])}, paragraph {best['paragraph']}" if best else ""
    return (
        '<div class="answer-box" id="answer-box">'
        '<p class="answer-kicker">Answer</p>'
        f'<p class="answer-text">{html.escape(result["answer"])}</p>'
        f'<p class="answer-meta">confidence {result["confidence"]:.2f}{where}</p>'
        "</div>"
    )


def _passage_head(rank: int, passage: dict[str, Any], answered: bool) -> str:
    """One line over a passage: its rank, document, paragraph and score."""
    kind = "Passage" if answered else "Closest passage"
    return (
        f'<p class="passage-head"><b>{kind} {rank}</b> · {html.escape(passage["source"])}, '
        f'paragraph {passage["paragraph"]} · score {passage["score"]:.2f}</p>'
    )


def render_answer(result: dict[str, Any] | None, session: SessionCorpus | None) -> list[Any]:
    """Turn ``Answer.to_dict()`` into updates: the answer box, then each passage's widgets.

    Returns:
        ``[answer_html, (column, head, text) * MAX_PASSAGES]`` updates, unused slots hidden.
    """
    if not result:
        return [gr.update(value="", visible=False)] + [gr.update(visible=False)] * (3 * MAX_PASSAGES)
    answered = result["answer"] is not None
    updates: list[Any] = [gr.update(value=_answer_html(result, session), visible=True)]
    passages = result["passages"][:MAX_PASSAGES]
    for rank in range(MAX_PASSAGES):
        if rank < len(passages):
            passage = passages[rank]
            updates += [
                gr.update(visible=True),
                gr.update(value=_passage_head(rank + 1, passage, answered)),
                gr.update(value=_highlight_value(passage, result["answer"])),
            ]
        else:
            updates += [gr.update(visible=False), gr.update(), gr.update()]
    return updates


# ---------------------------------------------------------------------------- uploads
class MemoEncoder:
    """Wraps an encoder and remembers the embeddings of texts it has seen.

    Why: every upload builds a session index over the base corpus *plus* the files, and
    re-embedding the whole speech costs seconds on a CPU for every upload. The base texts
    are the same each time, so after the first upload only the new files are embedded.
    Bounded (least recently used first out) so a busy server's memory stays flat.
    """

    def __init__(self, inner: Encoder, max_items: int = 50_000) -> None:
        self._inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max_items = max_items
        self._lock = threading.Lock()

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts``; only texts not seen before reach the model."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            fresh = self._inner.encode(missing, batch_size=batch_size, show_progress=show_progress)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._memo[text] = vector
                while len(self._memo) > self._max_items:
                    self._memo.popitem(last=False)
        with self._lock:
            rows = []
            for text in texts:
                vector = self._memo.get(text)
                if vector is None:  # evicted meanwhile by a concurrent upload: embed again
                    vector = self._inner.encode([text])[0]
                else:
                    self._memo.move_to_end(text)
                rows.append(vector)
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def _unique(name: str, taken: set[str]) -> str:
    """A display name not yet used in the corpus (the same file name can be uploaded twice)."""
    label, counter = name, 2
    while label in taken:
        label = f"{Path(name).stem} ({counter}){Path(name).suffix}"
        counter += 1
    taken.add(label)
    return label


def _status_html(session: SessionCorpus | None, problems: Sequence[str] = ()) -> str:
    """Which corpus questions go to, plus any upload that could not be read."""
    if session:
        names = ", ".join(html.escape(name) for name in session.uploads)
        lines = [f"<p><b>Searching:</b> the speech + {names}</p>"]
    else:
        lines = ["<p><b>Searching:</b> the speech</p>"]
    lines += [f'<p class="upload-problem">Could not read {html.escape(problem)}</p>'
              for problem in problems]
    if problems and not session:
        lines.append("<p>Questions still go to the speech.</p>")
    return '<div class="corpus-status">' + "".join(lines) + "</div>"


def read_uploads(base: QA, files: Sequence[str] | None,
                 encoder: Encoder | None = None) -> tuple[SessionCorpus | None, list[str]]:
    """Read uploaded files and index them together with the base corpus.

    A file that cannot be read is reported, not fatal: the readable ones are still used,
    and with none readable the session simply keeps asking the base corpus.

    Args:
        base: The shared engine; its documents and its (already loaded) model are reused.
        files: Paths of the uploaded copies (Gradio keeps the original file names).
        encoder: Embeds the session corpus (default: the base engine's encoder).

    Returns:
        The session corpus (None when nothing was readable) and one message per bad file.
    """
    documents: list[Document] = []
    problems: list[str] = []
    taken = {document.doc_id for document in base.documents}
    for file in files or []:
        path = Path(file)
        try:
            document = document_from_bytes(path.name, path.read_bytes())
        except IngestError as exc:
            problems.append(str(exc))
            continue
        except OSError as exc:
            problems.append(f"{path.name}: the upload could not be opened ({exc.strerror})")
            continue
        label = _unique(document.source, taken)
        documents.append(Document(doc_id=label, source=label, text=document.text))
    if not documents:
        return None, problems
    engine = QA.from_documents([*base.documents, *documents], encoder=encoder or base.encoder)
    logger.info("session corpus: %s", ", ".join(d.source for d in documents))
    return SessionCorpus(engine=engine, uploads=tuple(d.source for d in documents)), problems


# ---------------------------------------------------------------------------- the page
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
        return session, _status_html(session, problems)

    def use_speech() -> tuple[None, None, str]:
        """Back to the base corpus alone: forget the uploads and empty the upload box."""
        return None, None, _status_html(None)

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
        status = gr.HTML(_status_html(None), elem_id="status")
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
                    upload_status = gr.HTML(_status_html(None), elem_id="upload-status")
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


def private_upload_folder() -> Path:
    """Where Gradio keeps uploads: a fresh folder only this user can read, removed at exit.

    Why: Gradio's default, ``/tmp/gradio``, is shared and world-readable, so other users of
    the machine could read what visitors upload. Gradio sanitises upload names into this
    folder; ``GRADIO_TEMP_DIR`` set by the caller is respected.
    """
    folder = os.environ.get("GRADIO_TEMP_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="speech-qa-uploads-")  # mode 0700
        os.environ["GRADIO_TEMP_DIR"] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(folder)


def launch(engine: QA | None = None, host: str = "127.0.0.1", port: int = 7860, *,
           block: bool = True, concurrency: int = DEFAULT_CONCURRENCY,
           max_file_size: str | int = MAX_UPLOAD, quiet: bool = False) -> gr.Blocks:
    """Warm the engine, then serve the page.

    The model and index load before the server opens its port, so the first visitor's
    question is as fast as every later one.

    Args:
        engine: Defaults to the process-wide engine over the bundled speech.
        host: Interface to bind; loopback unless the caller deliberately opens it up.
        port: TCP port.
        block: Serve until interrupted (the CLI); False returns at once (tests).
        concurrency: Events run at once (Gradio's default of 1 would serialise visitors).
        max_file_size: Largest upload Gradio accepts, e.g. ``"20mb"``.
        quiet: Suppress Gradio's start-up banner.

    Returns:
        The running app (call ``.close()`` when ``block`` is False).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    private_upload_folder()
    engine = engine or default_engine()
    engine.warm_up()
    app = build_app(engine)
    app.queue(default_concurrency_limit=concurrency)
    theme = gr.themes.Soft(
        primary_hue="amber", neutral_hue="slate",
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )
    app.launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, quiet=quiet,
        max_file_size=max_file_size, show_error=True, theme=theme, css=CSS,
        footer_links=["api"], ssr_mode=False,
    )
    return app


__all__ = ["EXAMPLES", "MAX_PASSAGES", "MemoEncoder", "SessionCorpus", "build_app", "launch",
           "read_uploads", "render_answer"]
