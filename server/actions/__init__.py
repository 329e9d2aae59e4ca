"""Actions: the only code that changes state, and the only code that emits events (after commit).

- ``notify.py``     Socket.IO channel names and the after-commit emit helper
- ``auth.py``       register, login, refresh rotation with reuse detection, logout, token checks
- ``rooms.py``      create, access checks, join/leave, invite, direct messages, read cursors
- ``messages.py``   send (idempotent), edit, delete, history (continuing into the archive), sync
- ``presence.py``   online/offline fan-out
- ``assistant.py``  the bridge to ``ai.Assistant`` (triggers, message source, reply sink)
- ``whatsapp.py``   WhatsApp conversations: inbound, outbound, AI/human state machine, OTP login
"""
