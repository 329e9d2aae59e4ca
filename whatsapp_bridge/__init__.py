"""WhatsApp Cloud API, as a library chat-server wires in. Imports nothing from ``server``.

Inbound (Meta -> us)::

    GET  /webhooks/whatsapp   webhook.verify_handshake(params, verify_token) -> challenge | None
    POST /webhooks/whatsapp   signature.verify_signature(app_secret, raw, X-Hub-Signature-256)
                              -> webhook.parse_webhook(json) -> models.WebhookBatch
                                 (InboundMessage with readable text via describe.py, StatusUpdate)

Outbound (us -> Meta)::

    cloud_api.CloudApiClient.send_text / send_template / send_media / mark_read
        -> POST /{version}/{phone_number_id}/messages, paced per number, retried on 429/5xx
        -> SendResult(wamid) | errors.CloudApiError(state=...)
    upload_media -> POST /{version}/{phone_number_id}/media (multipart, streamed) -> media id

Media from contacts::

    media_info -> GET /{version}/{media-id} -> media.MediaInfo(url, mime_type, file_size, sha256)
    download_media(url) -> the bytes in chunks, bounded in size and time

Modules:

- ``signature.py``  ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body, constant-time compare)
- ``webhook.py``    the verify handshake; the envelope of webhook payloads, into typed records
- ``describe.py``   readable text and metadata for every inbound message type
- ``models.py``     inbound messages, delivery statuses, the monotonic status rule
- ``cloud_api.py``  the Graph API client: retries with backoff, pacing, token hygiene
- ``media.py``      media kinds, WhatsApp's supported types and size limits, inbound file names
- ``errors.py``     ``CloudApiError`` and Meta error codes mapped to readable states
- ``rules.py``      the 4096-character split, the 24-hour window, the OTP template shape
"""
