// Minimal socket.io 4 server with chat-server's event names, no auth, no storage: the reference
// for the fan-out benchmark. Node's defaults (perMessageDeflate off).
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
    const seq = (seqs.get(data.room_id) || 0) + 1;
    seqs.set(data.room_id, seq);
    const message = { id: nextId++, room_id: data.room_id, seq, body: data.body, client_id: data.client_id };
    io.to(`r:${data.room_id}`).emit("message", message);
    if (typeof ack === "function") ack({ ok: true, message });
  });
});
httpServer.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
