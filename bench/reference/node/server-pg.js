// The persisted-path reference: socket.io 4 with node-postgres doing the work chat-server does
// per message, as a team would write it without batching: sockets authenticated with
// chat-server's Ed25519 access tokens (signature, audience, issuer, expiry, token version
// against the users table), rooms joined after a membership check, and per `message:send`
// one statement that checks membership, takes the room's next seq and inserts the row
// (INSERT_SQL: chat-server's own statement, passed in by the harness), then the stored row to
// the room and in the ack. A retried client_id answers the stored row.
//
// Environment: PORT, JWT_PUBLIC_KEY_FILE, INSERT_SQL, and node-postgres's PGHOST (socket
// directory or host), PGPORT, PGUSER, PGDATABASE. Pool of 20 connections, like chat-server's.
const { createServer } = require("http");
const crypto = require("crypto");
const fs = require("fs");
const { Server } = require("socket.io");
const pg = require("pg");

pg.types.setTypeParser(20, Number); // bigint ids and seqs as numbers, as chat-server sends them

const port = Number(process.env.PORT || 3000);
const insertSql = process.env.INSERT_SQL;
const publicKey = crypto.createPublicKey(fs.readFileSync(process.env.JWT_PUBLIC_KEY_FILE));
const pool = new pg.Pool({ max: 20, connectionTimeoutMillis: 10000, query_timeout: 10000 });
const MAX_BODY = 4000;

function refused(code, message) {
  const err = new Error(message);
  err.data = { code, message };
  return err;
}

function verifyToken(token) {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) throw refused("unauthorized", "missing token");
  const [h, p, s] = parts;
  const header = JSON.parse(Buffer.from(h, "base64url").toString());
  if (header.alg !== "EdDSA") throw refused("unauthorized", "invalid token");
  if (!crypto.verify(null, Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, "base64url"))) {
    throw refused("unauthorized", "invalid token");
  }
  const c = JSON.parse(Buffer.from(p, "base64url").toString());
  if (c.aud !== "chat" || c.iss !== "chat-server" || c.typ !== "access" || !(c.exp > Date.now() / 1000)) {
    throw refused("unauthorized", "invalid token");
  }
  return c;
}

function wire(r) {
  return {
    id: r.id, room_id: r.room_id, seq: r.seq, author_id: r.author_id, author_kind: r.author_kind,
    author_name: r.author_name, body: r.body, client_id: r.client_id, reply_to: r.reply_to, meta: r.meta,
    created_at: r.created_at.toISOString(), edited_at: null, deleted_at: null,
    attachments: r.attachments || [], reactions: r.reactions || [],
  };
}

const httpServer = createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });

io.use(async (socket, next) => {
  try {
    const claims = verifyToken(socket.handshake.auth && socket.handshake.auth.token);
    const { rows } = await pool.query({
      name: "user", text: "SELECT id, display_name, token_version, kind FROM users WHERE id = $1",
      values: [Number(claims.sub)],
    });
    if (!rows.length || rows[0].token_version !== claims.tv) throw refused("unauthorized", "token revoked");
    socket.data.user = rows[0];
    next();
  } catch (err) {
    next(err.data ? err : refused("unavailable", "try again shortly"));
  }
});

io.on("connection", (socket) => {
  const user = socket.data.user;
  socket.on("room:join", async (data, ack) => {
    if (typeof ack !== "function") return;
    try {
      const { rows } = await pool.query({
        name: "member", text: "SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2",
        values: [data.room_id, user.id],
      });
      if (!rows.length) return ack({ ok: false, error: { code: "forbidden", message: "not a member" } });
      socket.join(`r:${data.room_id}`);
      ack({ ok: true });
    } catch (err) {
      ack({ ok: false, error: { code: "unavailable", message: "try again shortly" } });
    }
  });
  socket.on("message:send", async (data, ack) => {
    if (typeof ack !== "function") return;
    const body = data && data.body;
    if (!data || !Number.isInteger(data.room_id) || typeof body !== "string" || !body.trim()
        || body.length > MAX_BODY || typeof data.client_id !== "string") {
      return ack({ ok: false, error: { code: "invalid", message: "bad message" } });
    }
    try {
      const { rows } = await pool.query({
        name: "insert", text: insertSql,
        values: [data.room_id, user.id, "user", user.display_name, body, data.client_id, null, "[]"],
      });
      if (!rows.length) return ack({ ok: false, error: { code: "forbidden", message: "not a member" } });
      const message = wire(rows[0]);
      io.to(`r:${data.room_id}`).emit("message", message);
      ack({ ok: true, message });
    } catch (err) {
      if (err.code === "23505") { // a retry: answer the stored row, emit nothing
        const { rows } = await pool.query({
          name: "retry", text: "SELECT * FROM messages WHERE author_id = $1 AND client_id = $2",
          values: [user.id, data.client_id],
        });
        if (rows.length) return ack({ ok: true, message: wire(rows[0]) });
      }
      ack({ ok: false, error: { code: "unavailable", message: "try again shortly" } });
    }
  });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
