"""Real-time state kept in Redis: presence across nodes, typing throttle, rate limits."""
