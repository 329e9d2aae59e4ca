// Minimal socket.io 4 server with chat-server's event names, no auth, no storage: the reference
// for the benchmark. Node's defaults (perMessageDeflate off). With REDIS_URL set, rooms span
// nodes through @socket.io/redis-adapter (Redis pub/sub), the two-node reference.
const { createServer } = require("http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const httpServer = createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });
const seqs = new Map();
let nextId = 1;

io.on("connection", (socket) => {
  socket.on("room:join", (data, ack) => {
    socket.join(`r:${data.room_id}`);
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("message:send", (data, ack) => {
    // per-node sequence: enough for a reference without storage
    const seq = (seqs.get(data.room_id) || 0) + 1;
    seqs.set(data.room_id, seq);
    const message = { id: nextId++, room_id: data.room_id, seq, body: data.body, client_id: data.client_id };
    io.to(`r:${data.room_id}`).emit("message", message);
    if (typeof ack === "function") ack({ ok: true, message });
  });
});

async function main() {
  if (process.env.REDIS_URL) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: process.env.REDIS_URL, socket: { connectTimeout: 5000 } });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  httpServer.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
