"""The load generator: Engine.IO 4 / Socket.IO 5 over raw WebSockets, in worker processes.

- ``wsclient.py``    one client connection: RFC 6455 framing, Engine.IO/Socket.IO packets,
                     latency from the send timestamp in each received ``message`` body
- ``worker.py``      a worker process owning a share of the clients; runs measured steps on
                     command (fanout, rooms, persist, idle)
- ``coordinator.py`` spawns and pins the workers, starts every step at one wall-clock instant,
                     merges counts and raw samples, samples the server's CPU
- ``stats.py``       nearest-rank percentiles over all merged samples
- ``__main__.py``    a command line for one ladder against any running server

Data flow: coordinator --"go t0 rate step"--> workers --emit--> server --message--> workers
(latency = receipt time - send time in the body) --counts + raw .bin--> coordinator.
"""

from .coordinator import Loadgen

__all__ = ["Loadgen"]
