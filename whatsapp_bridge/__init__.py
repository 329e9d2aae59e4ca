"""WhatsApp Cloud API, as a library chat-server wires in.

- ``signature.py``  ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body, constant-time compare)
- ``webhook.py``    the verify handshake and parsing of webhook payloads into typed records
- ``models.py``     inbound messages, delivery statuses, the monotonic status rule
- ``cloud_api.py``  the Graph API client: text (split at 4096), templates, retries, pacing,
                    error codes mapped to readable states, the 24-hour window
"""
