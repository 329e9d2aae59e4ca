"""What chat-server, chat-archive and the assistant share, below all three.

No module here imports ``server``, ``archive`` or ``ai``; they import from here:

- ``events.py``: the typed records that cross a process or package boundary (message records,
  Socket.IO payloads, Kafka archive records).
- ``errors.py``: the error hierarchy (``ChatError`` and its stable codes).
- ``tokens.py``: access tokens (Ed25519 JWTs): chat-server issues, every service verifies.
- ``background.py``: supervised background loops and tasks.
- ``types.py``: shared aliases, roles and room kinds.
- ``api.py``: REST routes declared with pydantic models, which validate requests and generate the
  OpenAPI 3.1 document; ``openapi.py``: the Swagger UI page both HTTP services serve.
"""
