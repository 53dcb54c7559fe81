"""``GET/POST/DELETE /api/documents``: the served collection over HTTP, behind the admin token.

Why the CLI's own code path: an upload is saved under its own name in a private temporary
folder and handed to ``QA.add``, exactly what ``speech-qa add FILE`` runs, so the readers,
the limits, the duplicate and replace rules and the one-line refusals are the CLI's. The
temporary folder's paths never reach the caller: every message names the uploaded file.

Why the update lock and a fresh writer per request: the index directory is the one truth.
Each write is a ``QA.load(dir, lazy=True)`` plus ``add``/``remove``, serialised with every
other writer (this server's other requests, ``speech-qa add`` in a shell) by the lock in
``index.collection``; the served engine then reloads it like any new version
(``qa.live.LiveIndex.refresh``), so a write's reply means the new version is being served.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from qa import QA, IndexBuildError, SpeechQAError, UpdateReport
from qa.live import LiveIndex
from ui.access import Access

logger = logging.getLogger(__name__)

UPLOAD_BODY_LIMIT = 64 * 1024 * 1024 + 64 * 1024
"""Largest ``POST /api/documents`` body: the CLI's per-file limit (64 MB, ``ingest.readers``)
plus room for the multipart framing. Several files together share it."""

MAX_UPLOAD_FILES = 32
"""Most files in one upload (more is a folder: copy it and run ``speech-qa add``)."""

MAX_NAME_BYTES = 255
"""Longest file name accepted (a file system's limit)."""

READ_ONLY_DEFAULT = ("the bundled speech is read-only package data; serve a collection of your own "
                     "to change it: speech-qa index FILES --index DIR, then speech-qa serve --index DIR")


class UploadRefused(ValueError):
    """An upload refused as a whole (no usable file): one line, a 400."""


class NotFound(LookupError):
    """A name to remove that the collection does not hold (nothing was removed): a 404."""


class DocumentStore(Protocol):
    """What the routes need of a collection: the local server and the Ray ingress differ."""

    @property
    def read_only(self) -> str | None:
        """Why writes are refused whatever the token (None: the collection can be changed)."""

    async def documents(self) -> list[dict[str, Any]]:
        """Every served document, as ``DocumentInfo.to_dict()``."""

    async def add(self, files: list[Path]) -> UpdateReport:
        """``QA.add`` of saved uploads (each under its uploaded name)."""

    async def remove(self, sources: list[str]) -> UpdateReport:
        """``QA.remove``; raises ``NotFound`` naming the unknown names (nothing removed)."""


@dataclass
class FolderStore:
    """The collection in an index directory, written here and read by ``served``.

    Attributes:
        served: The engine answering questions (its documents are what is listed).
        live: Follows the directory; ``None`` when the engine is not an index directory.
        after_write: Awaited after each write (the local server reloads at once; the Ray
            ingress leaves that to the replicas' own polling).
    """

    served: Callable[[], Awaitable[list[dict[str, Any]]]]
    folder: Path | None
    writer: Callable[[], QA]
    after_write: Callable[[], Awaitable[None]]

    @property
    def read_only(self) -> str | None:
        """Only an index directory of the user's own can be changed."""
        return None if self.folder is not None else READ_ONLY_DEFAULT

    async def documents(self) -> list[dict[str, Any]]:
        """What is being served now."""
        return await self.served()

    async def add(self, files: list[Path]) -> UpdateReport:
        """Add on disk (under the lock, off the event loop), then serve the new version."""
        report = await asyncio.to_thread(lambda: self.writer().add(files))
        await self.after_write()
        return report

    async def remove(self, sources: list[str]) -> UpdateReport:
        """Remove on disk, refusing unknown names before anything changes."""
        def run() -> UpdateReport:
            writer = self.writer()
            known = set(writer.sources)
            unknown = [source for source in dict.fromkeys(sources) if source not in known]
            if unknown:
                raise NotFound(f"no document named {', '.join(repr(s[:200]) for s in unknown[:5])}"
                               f"{' and more' if len(unknown) > 5 else ''} in this collection; "
                               "nothing was removed")
            return writer.remove(sources)
        report = await asyncio.to_thread(run)
        await self.after_write()
        return report


def local_store(engine: QA, live: LiveIndex | None) -> FolderStore:
    """The store of a one-machine server: writes by a lazy engine sharing the model, then
    an immediate reload of the served one (``live.refresh``)."""
    folder = engine.index_dir if live is not None else None

    def writer() -> QA:
        assert folder is not None
        return QA.load(folder, encoder=engine.encoder, lazy=True)

    async def served() -> list[dict[str, Any]]:
        return [document.to_dict() for document in await asyncio.to_thread(lambda: engine.documents)]

    async def reload() -> None:
        if live is not None:
            await asyncio.to_thread(live.refresh)

    return FolderStore(served, folder, writer, reload)


# ---------------------------------------------------------------------------- uploads
def upload_name(raw: str | None) -> str:
    """The file name an upload is indexed under: the last part of what the client sent.

    Raises:
        UploadRefused: No usable name (empty, ``..``, control characters, too long).
    """
    name = PurePosixPath((raw or "").replace("\\", "/")).name.strip()
    if not name or name in (".", "..") or name.startswith("."):
        raise UploadRefused(f"{(raw or '')[:100]!r}: not a usable file name")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise UploadRefused(f"{name[:100]!r}: the file name holds control characters")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise UploadRefused(f"{name[:100]!r}...: the file name is longer than {MAX_NAME_BYTES} bytes")
    return name


async def save_uploads(files: list[UploadFile], folder: Path) -> tuple[list[Path], dict[str, str]]:
    """Save each upload as ``folder/<n>/<its name>``; the paths, and path -> name.

    Why a folder each: two uploads may share a name (the second is then a duplicate or a
    replacement, as in ``speech-qa add a/x.txt b/x.txt``), and the name itself is the
    document's name in answers.
    """
    if not files:
        raise UploadRefused("no file: send one or more files in the multipart field 'files'")
    if len(files) > MAX_UPLOAD_FILES:
        raise UploadRefused(f"{len(files)} files in one upload; at most {MAX_UPLOAD_FILES}")
    paths: list[Path] = []
    names: dict[str, str] = {}
    for number, upload in enumerate(files):
        name = upload_name(upload.filename)
        place = folder / str(number)
        place.mkdir()
        path = place / name
        with path.open("wb") as out:
            while chunk := await upload.read(1 << 20):
                out.write(chunk)
        paths.append(path)
        names[str(path)] = name
    return paths, names


def _named(text: str, names: dict[str, str]) -> str:
    """``text`` with every temporary path replaced by the uploaded file's name."""
    for path, name in sorted(names.items(), key=lambda item: -len(item[0])):
        text = text.replace(path, name)
    return text


def report_json(report: UpdateReport, names: dict[str, str] | None = None) -> dict[str, Any]:
    """The update report as the routes answer it (uploaded names, never server paths)."""
    names = names or {}
    return {
        "added": list(report.added),
        "replaced": list(report.replaced),
        "removed": list(report.removed),
        "skipped": [{"file": _named(item.path, names), "reason": item.reason,
                     "detail": _named(item.detail, names)} for item in report.skipped],
        "partial": report.partial,
    }


# ---------------------------------------------------------------------------- routes
def add_document_routes(api: FastAPI, store: DocumentStore, access: Access,
                        error: Callable[[int, str], JSONResponse],
                        refusals: dict[int | str, dict[str, Any]]) -> None:
    """Declare the three routes on ``api`` (before the page is mounted)."""

    def client(request: Request) -> str:
        return f"{request.client.host}:{request.client.port}" if request.client else "unknown"

    def refused_write(request: Request) -> JSONResponse | None:
        if store.read_only is not None:
            logger.info("refused %s %s from %s: read-only collection", request.method,
                        request.url.path, client(request))
            return error(409, store.read_only)
        refusal = access.check_write(request.headers.get("authorization"))
        if refusal is None:
            return None
        logger.info("refused %s %s from %s: %s", request.method, request.url.path, client(request),
                    refusal.message)
        response = error(refusal.status, refusal.message)
        if refusal.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    def refused_read(request: Request) -> JSONResponse | None:
        refusal = access.check_read(request.headers.get("authorization"))
        if refusal is None:
            return None
        logger.info("refused %s %s from %s: %s", request.method, request.url.path, client(request),
                    refusal.message)
        return error(refusal.status, refusal.message)

    write_refusals: dict[int | str, dict[str, Any]] = {
        401: {"model": refusals[400]["model"], "description": "No admin token, or a wrong one."},
        403: {"model": refusals[400]["model"],
              "description": "Writes are disabled: no admin token is configured."},
        409: {"model": refusals[400]["model"],
              "description": "The collection cannot be changed (the bundled speech; or the change "
                             "would leave it empty)."},
    }

    @api.get("/api/documents", tags=["documents"],
             responses={401: write_refusals[401]})
    async def list_documents(request: Request) -> Any:
        """Every document being served: its name (``source``, as answers cite it), passages,
        sentences, size of its text in bytes, when it was added (UTC), and pages for
        paged formats (PDF; null otherwise)."""
        refused = refused_read(request)
        if refused is not None:
            return refused
        return {"documents": await store.documents()}

    @api.post("/api/documents", tags=["documents"],
              responses={**write_refusals, 400: refusals[400], 413: refusals[413]})
    async def add_documents(request: Request,
                            files: list[UploadFile] = File(description="One or more files (txt, md, "  # noqa: B008
                                                           "html, pdf, docx), up to 64 MB together.")
                            ) -> Any:
        """Add files, as ``speech-qa add`` does: a file whose text is already served is a
        duplicate (skipped), one with the name of a served document and new text replaces
        it. Answers the update report; ``partial`` is true when a file was left out, each
        named in ``skipped`` with its reason. The new version is served when this returns."""
        refused = refused_write(request)
        if refused is not None:
            return refused
        folder = Path(tempfile.mkdtemp(prefix="speech-qa-api-upload-"))
        names: dict[str, str] = {}
        try:
            paths, names = await save_uploads(files, folder)
            report = await store.add(paths)
        except UploadRefused as exc:
            logger.info("refused an upload from %s: %s", client(request), exc)
            return error(400, str(exc))
        except IndexBuildError as exc:
            logger.info("refused an upload from %s: %s", client(request), _named(str(exc), names))
            return error(409, _named(str(exc), names))
        except SpeechQAError as exc:  # nothing readable: the reader's own line, the file named
            message = _named(str(exc), names)
            logger.info("refused an upload from %s: %s", client(request), message)
            return error(400, message)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        body = report_json(report, names)
        logger.info("documents changed by %s: added %s, replaced %s, skipped %s", client(request),
                    body["added"] or "nothing", body["replaced"] or "nothing",
                    [item["file"] for item in body["skipped"]] or "nothing")
        return body

    @api.delete("/api/documents", tags=["documents"],
                responses={**write_refusals, 404: {"model": refusals[400]["model"],
                                                   "description": "A name is not in the collection "
                                                                  "(nothing was removed)."}})
    async def remove_documents(request: Request,
                               source: list[str] = Query(description="A document's name, as "  # noqa: B008
                                                         "GET /api/documents lists it; repeatable.")
                               ) -> Any:
        """Remove documents by name. Answers what was removed; an unknown name is a 404
        naming it, and then nothing is removed."""
        refused = refused_write(request)
        if refused is not None:
            return refused
        try:
            report = await store.remove(source)
        except NotFound as exc:
            logger.info("refused a removal from %s: %s", client(request), exc)
            return error(404, str(exc))
        except SpeechQAError as exc:  # e.g. it would leave the collection empty
            logger.info("refused a removal from %s: %s", client(request), exc)
            return error(409, str(exc))
        logger.info("documents changed by %s: removed %s", client(request), list(report.removed))
        return report_json(report)


__all__ = ["MAX_UPLOAD_FILES", "UPLOAD_BODY_LIMIT", "DocumentStore", "FolderStore", "add_document_routes",
           "local_store", "report_json", "upload_name"]
