"""chat-server: the real-time chat process.

Layout (calls go one way: transport -> actions -> storage):

- ``config.py``      frozen, typed configuration read once from the environment
- ``app.py``         ``create_app(config)``: the composition root
- ``errors.py``      ``ChatError`` hierarchy with stable codes
- ``events.py``      typed records that cross a process or package boundary
- ``tokens.py``      JWT access tokens (Ed25519) issue and verify
- ``background.py``  supervised background tasks
- ``embedded.py``    the embedded PostgreSQL and Redis under ``CHAT_DATA_DIR``, shared, never replaced
- ``readiness.py``   what ``/readyz`` checks: a new connection to PostgreSQL and to Redis
- ``passwords.py``   Argon2id hashing, rehash when the configured costs changed
- ``transport/``     aiohttp routes and the Socket.IO namespace
- ``actions/``       the only code that changes state and emits events (after commit)
- ``storage/``       all SQL (asyncpg) and the numbered schema files
- ``realtime/``      presence, typing, fan-out helpers
"""
