"""Transport: parse, authenticate, call one action, serialise.

- ``http.py``        REST routes under ``/api/v1`` and health/metrics
- ``middleware.py``  error -> JSON body, security headers, body size, request metrics
- ``socket.py``      the Socket.IO namespace and its ack wrapper
- ``http_whatsapp.py`` WhatsApp webhook, staff inbox, accounts, login by code (same route table)
- ``static.py``      the built web app
"""
