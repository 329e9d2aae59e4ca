"""All SQL lives here (asyncpg, ``$n`` parameters only).

- ``db.py``        pool creation (codecs, timeouts) and the numbered schema migrations
- ``users.py``     users and refresh tokens
- ``rooms.py``     rooms and memberships
- ``messages.py``  messages with per-room ``seq``
- ``whatsapp.py``  WhatsApp accounts, contacts/conversations and message delivery state
"""
