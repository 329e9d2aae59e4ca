"""chat-archive: the archive tier's own process.

- ``config.py``    frozen config from the environment
- ``storage.py``   MongoDB through PyMongo's ``AsyncMongoClient``: indexes, upserts, queries, retention
- ``consumer.py``  Kafka consumer group: decode, bulk upsert, then commit (dead letters for bad records)
- ``api.py``       the staff query API under ``/archive/v1`` (staff and admin tokens only)
- ``app.py``       ``create_app(config)``: the composition root

Flow: chat-server's relay -> Kafka ``chat.messages.archive`` -> consumer -> MongoDB -> api.
"""
