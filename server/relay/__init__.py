"""The archive relay (runs inside chat-server) and the client for history in the archive.

- ``relay.py``           moves aged messages PostgreSQL -> Kafka, one leader at a time
- ``archive_client.py``  reads a room's archived history from chat-archive
"""
