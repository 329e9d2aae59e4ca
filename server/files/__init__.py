"""Files: uploads, the store their bytes live in, and the signed URLs that serve them.

- ``store.py``: the ``FileStore`` interface and the local-filesystem back-end (the default).
- ``s3.py``: the S3-compatible back-end (``FILE_STORE=s3``).
- ``content.py``: type detection from the bytes, name sanitising, image size and thumbnail.
- ``service.py``: ``FileService`` (store + URL signer + settings), built by ``create_app``.

The flow: ``POST /api/v1/uploads`` (``transport/http_files.py``) -> ``actions/files.py``
streams the part into the store and records a ``files`` row (``storage/files.py``); a
``message:send`` with ``attachments`` links the uploads in the message's insert statement
(``storage/messages.py``); every record served carries freshly signed URLs
(``chatcore/files.py``); ``GET /files/{id}/{name}`` checks the signature and streams the bytes.
The sweep (``actions/files.py``) deletes orphans, deleted messages' files and archive-expired
files. Details: docs/FILES.md.
"""
