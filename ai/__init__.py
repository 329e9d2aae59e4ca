"""The AI assistant, as a library that chat-server wires in.

- ``settings.py``      ``AISettings`` from the environment
- ``provider.py``      the provider interface (``stream_reply``, ``summarise``), ``Turn``, errors
- ``gemini.py``        Google Gemini through the ``google-genai`` SDK (async, streaming)
- ``openai_compat.py`` any OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...)
- ``offline.py``       no network: answers from a knowledge base, extractive summaries
- ``context.py``       the context: summary + last K messages + the new one
- ``prompt.py``        requests: our rules in the system slot, the summary and messages as quoted data
- ``quota.py``         hourly quotas per person, per WhatsApp contact, summary refreshes per room
- ``summaries.py``     the rolling summary cached in Redis, refreshed past a threshold
- ``cache.py``         the answer cache, keyed by the exact context
- ``assistant.py``     ``Assistant.reply``: one job per room across nodes, streaming, failures

Data flow of a reply: trigger message -> dedupe the trigger, count it against its author's
quota and lock the room in Redis -> summary (Redis, rebuilt from the message source when cold)
+ last K messages -> a request of quoted data -> answer cache or provider stream ->
``sink.delta`` per chunk -> ``sink.final`` stores the reply.
"""
