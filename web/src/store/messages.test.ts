import { describe, expect, it } from "vitest";
import { msg, uploaded } from "../testing";
import { attachmentsOf, RoomMessages } from "./messages";

const seqs = (r: RoomMessages) => r.sorted().map((m) => m.seq);

describe("RoomMessages", () => {
  it("keeps each message once by id, whatever the arrival order", () => {
    const r = new RoomMessages();
    r.add([msg(2, 2), msg(1, 1)]);
    const { added } = r.add([msg(2, 2), msg(3, 3), msg(1, 1)]);
    expect(seqs(r)).toEqual([1, 2, 3]);
    expect(added.map((m) => m.id)).toEqual([3]);
    expect(r.size).toBe(3);
  });

  it("orders by seq, not by arrival or id", () => {
    const r = new RoomMessages();
    r.add([msg(30, 3)]);
    r.add([msg(10, 5)]);
    r.add([msg(20, 4)]);
    expect(seqs(r)).toEqual([3, 4, 5]);
  });

  it("turns a pending send into the acked message by client_id", () => {
    const r = new RoomMessages();
    r.queue({ client_id: "c1", room_id: 1, body: "hi", reply_to: null, created_at: "" });
    expect(r.pending.get("c1")?.state).toBe("queued");
    r.add([msg(5, 1, { client_id: "c1", body: "hi" })]);
    expect(r.pending.size).toBe(0);
    expect(r.sorted()[0].body).toBe("hi");
  });

  it("queueing the same client_id twice keeps one pending entry", () => {
    const r = new RoomMessages();
    r.queue({ client_id: "c1", room_id: 1, body: "hi", reply_to: null, created_at: "" });
    r.queue({ client_id: "c1", room_id: 1, body: "hi", reply_to: null, created_at: "" });
    expect(r.pending.size).toBe(1);
  });

  it("reports the cursor to sync from when seq jumps, and no gap once filled", () => {
    const r = new RoomMessages();
    expect(r.add([msg(1, 1), msg(2, 2)]).gapAfter).toBeNull();
    expect(r.add([msg(5, 5)]).gapAfter).toBe(2);
    expect(r.add([msg(3, 3), msg(4, 4)]).gapAfter).toBeNull();
    expect(r.add([msg(6, 6)]).gapAfter).toBeNull();
  });

  it("a first message or an older page is never a gap", () => {
    const r = new RoomMessages();
    expect(r.add([msg(50, 50)]).gapAfter).toBeNull();
    expect(r.add([msg(10, 10), msg(11, 11)]).gapAfter).toBeNull();
    expect(r.firstSeq()).toBe(10);
    expect(r.lastSeq()).toBe(50);
  });

  it("a sync replay that overlaps what is held merges without duplicates", () => {
    const r = new RoomMessages();
    r.add([msg(1, 1), msg(2, 2), msg(3, 3)]);
    const { added, gapAfter } = r.add([msg(3, 3), msg(4, 4), msg(5, 5)]);
    expect(added.map((m) => m.seq)).toEqual([4, 5]);
    expect(gapAfter).toBeNull();
    expect(seqs(r)).toEqual([1, 2, 3, 4, 5]);
  });

  it("replaces edited and deleted messages, and an older copy never undoes them", () => {
    const r = new RoomMessages();
    r.add([msg(1, 1)]);
    expect(r.update(msg(1, 1, { body: "", deleted_at: "2026-01-01T00:00:00Z" }))).toBe(true);
    r.add([msg(1, 1)]); // a stale copy from a history page
    expect(r.sorted()[0].deleted_at).toBe("2026-01-01T00:00:00Z");
    r.add([msg(2, 2)]);
    r.add([msg(2, 2, { body: "fixed", edited_at: "2026-01-01T00:00:01Z" })]);
    expect(r.get(2)?.body).toBe("fixed");
    expect(r.update(msg(99, 9))).toBe(false);
  });

  it("reset keeps pending sends and replaces the messages", () => {
    const r = new RoomMessages();
    r.add([msg(1, 1)]);
    r.queue({ client_id: "c", room_id: 1, body: "x", reply_to: null, created_at: "" });
    r.reset([msg(900, 900)], true);
    expect(seqs(r)).toEqual([900]);
    expect(r.loaded).toBe(true);
    expect(r.pending.size).toBe(1);
  });

  it("lists unsent messages in the order written, without the failed ones", () => {
    const r = new RoomMessages();
    for (const id of ["a", "b", "c"]) r.queue({ client_id: id, room_id: 1, body: id, reply_to: null, created_at: "" });
    r.setPending("b", "failed", "too large");
    expect(r.unsent().map((p) => p.client_id)).toEqual(["a", "c"]);
  });

  it("finds the newest own message that is not deleted", () => {
    const r = new RoomMessages();
    r.add([msg(1, 1, { author_id: 7 }), msg(2, 2, { author_id: 7, deleted_at: "x" }), msg(3, 3, { author_id: 8 })]);
    expect(r.lastOwn(7)?.id).toBe(1);
    expect(r.lastOwn(9)).toBeUndefined();
  });

  it("takes the fresher media URLs of a message seen again, and notes when the copy arrived", () => {
    const r = new RoomMessages();
    let now = 1000;
    r.clock = () => now;
    r.add([msg(1, 1, { attachments: [uploaded("a", "a.png")] })]);
    expect(r.receivedAt(1)).toBe(1000);
    now = 5000;
    r.add([msg(1, 1, { attachments: [uploaded("a", "a.png", "image/png", { url: "https://media.test/a?sig=2" })] })]);
    expect(attachmentsOf(r.get(1)!)[0].url).toBe("https://media.test/a?sig=2");
    expect(r.receivedAt(1)).toBe(5000);
    // a copy without the field (the archive, an older server) leaves the files alone
    const bare = msg(1, 1);
    delete bare.attachments;
    r.add([bare]);
    expect(attachmentsOf(r.get(1)!)[0].url).toBe("https://media.test/a?sig=2");
    // an older copy of an edited message does not undo the edit, deleted files do not come back
    r.update(msg(1, 1, { body: "", deleted_at: "2026-11-23T11:00:00Z", attachments: [] }));
    r.add([msg(1, 1, { attachments: [uploaded("a", "a.png", "image/png", { url: "https://media.test/a?sig=3" })] })]);
    expect(r.get(1)!.deleted_at).not.toBeNull();
    expect(attachmentsOf(r.get(1)!)).toEqual([]);
  });

  it("treats a record without attachments as having none", () => {
    expect(attachmentsOf(msg(1, 1))).toEqual([]);
    expect(attachmentsOf({ attachments: null as never })).toEqual([]);
  });
});
