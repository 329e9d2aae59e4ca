"""File routes: ``POST /api/v1/uploads`` (multipart, bearer token) and ``GET /files/{id}/{name}``
(signed URL, no token, so ``<img src>`` works).

The upload handler hands the ``file`` part to the action as a stream of chunks: nothing here
reads the body whole. The download handler streams the stored bytes with the headers that make
untrusted content safe to serve from our origin: ``Content-Disposition`` (``inline`` only for
raster images, audio, video and plain text; SVG, HTML and everything else download as a file),
``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: sandbox`` (a document opened
from here runs no script and has no access to our origin). Single byte ranges are served
(``206``) for audio and video seeking.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from fnmatch import fnmatchcase
from urllib.parse import quote

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from chatcore.api import Call, RawBody, Reply
from chatcore.errors import Invalid, TooLarge
from chatcore.schemas import AttachmentWire

from ..actions import files as file_actions
from ..files.service import files_of
from ..files.store import CHUNK
from .http import routes, svc_of, user_of

MULTIPART_OVERHEAD = 16 * 1024  # boundaries and part headers around the one file part
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif", "audio/*",
                "video/*", "text/plain")
NEVER_INLINE = ("image/svg+xml", "text/html", "application/xhtml+xml", "text/xml", "application/xml")
DOWNLOAD_CSP = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")



# the multipart body is streamed by the handler, so the route declares it raw
UPLOAD_BODY = RawBody("multipart/form-data", {
    "type": "object", "required": ["file"], "additionalProperties": False,
    "properties": {"file": {"type": "string", "format": "binary", "description": "the file; at most MAX_UPLOAD_BYTES"}},
})


@routes.post("/api/v1/uploads", "Upload a file (multipart/form-data, one part named file) to attach to a message"
             " within UPLOAD_ORPHAN_TTL; see docs/FILES.md", raw_body=UPLOAD_BODY, responses={201: AttachmentWire})
async def upload(call: Call[None, None, None]) -> Reply:
    request = call.request
    user = user_of(call)
    svc = svc_of(request)
    limit = files_of(svc).settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise TooLarge(f"the file is larger than {limit} bytes", limit=limit)
    if request.content_type != "multipart/form-data":
        raise Invalid("send the file as multipart/form-data with one part named file", field="file")
    reader, part = await _file_part(request)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await part.read_chunk(CHUNK):
            yield chunk
        await _only_part(reader)  # raised inside the store's write: the partial file is removed

    return Reply(await file_actions.do_upload(svc, user, part.filename, chunks()), 201)



async def _file_part(request: web.Request) -> tuple[MultipartReader, BodyPartReader]:
    """The reader and its one part, named ``file``; a body that is not well-formed multipart, or
    whose first part is something else, is ``invalid``."""
    try:
        reader = await request.multipart()
        part = await reader.next()
    except (BadHttpMessage, ValueError, AssertionError, RuntimeError, UnicodeDecodeError) as exc:  # aiohttp's parse errors
        raise Invalid(f"not a well-formed multipart body: {exc}", field="file") from None
    if not isinstance(part, BodyPartReader) or part.name != "file":
        raise Invalid("send one part, named file", field="file")
    return reader, part


async def _only_part(reader: MultipartReader) -> None:
    """After the file: the body must end (another part is refused before the upload is kept)."""
    try:
        ended = await reader.next() is None
    except (BadHttpMessage, ValueError, AssertionError, RuntimeError, UnicodeDecodeError):
        ended = False  # junk after the file part
    if not ended:
        raise Invalid("send one part, named file, and nothing else", field="file")


def _disposition(mime: str, name: str) -> str:
    inline = not any(fnmatchcase(mime, p) for p in NEVER_INLINE) and any(fnmatchcase(mime, p) for p in INLINE_TYPES)
    fallback = re.sub(r'[^A-Za-z0-9._ -]', "_", name) or "file"
    return f"{'inline' if inline else 'attachment'}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single satisfiable range; None: serve it all. Raises
    ``HTTPRequestRangeNotSatisfiable`` for a range past the end."""
    m = _RANGE.match(header.strip()) if header else None
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # absent, multiple ranges or another unit: the whole file
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:
        start, end = max(0, size - int(m.group(2))), size - 1
    if start >= size or start > end:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


async def download(request: web.Request) -> web.StreamResponse:
    svc = svc_of(request)
    q = request.query
    d = await file_actions.open_download(svc, request.match_info["id"], q.get("v", "o"), q.get("exp", ""),
                                         q.get("sig", ""))
    span = _range(request.headers.get("Range"), d.size)
    start, end = span if span is not None else (0, d.size - 1)
    resp = web.StreamResponse(status=206 if span is not None else 200, headers={
        "Content-Type": d.mime,
        "Content-Disposition": _disposition(d.mime, d.name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": DOWNLOAD_CSP,
        "Cross-Origin-Resource-Policy": "same-origin",
        "Referrer-Policy": "no-referrer",
        "Accept-Ranges": "bytes",
        # the URL itself expires; a browser may keep what it fetched for the session
        "Cache-Control": "private, max-age=300",
    })
    if span is not None:
        resp.headers["Content-Range"] = f"bytes {start}-{end}/{d.size}"
    resp.content_length = max(0, end - start + 1)
    await resp.prepare(request)
    if request.method != "HEAD" and d.size > 0:
        async for chunk in d.read(start, end):
            await resp.write(chunk)
    await resp.write_eof()
    return resp


def add_file_routes(app: web.Application) -> None:
    """The download route (signed URLs, no token: not part of the /api/v1 document); the upload
    route is declared in the API's table above."""
    app.router.add_get("/files/{id}/{name}", download)
