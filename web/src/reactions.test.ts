// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { ChatClient } from "./client";
import { msg } from "./testing";
import { MyReactions, reactorsText } from "./store/reactions";
import { ReadCursors, seenText } from "./store/receipts";
import { reactionBar, type ReactionContext } from "./views/reactions";
import type { Ack, Message, Reaction } from "./types";

const ME = { id: 1, username: "me", display_name: "Me", role: "user" as const, kind: "human" };

/** A stand-in for the server's `room:join` and `message:react` (the contract only). */
function fakeServer(page: Message[]) {
  const held = new Map(page.map((m) => [m.id, m]));
  const mine = new Map<number, Set<string>>();
  const log: { event: string; data: any }[] = [];
  const emit = async <T,>(event: string, data: any): Promise<Ack<T>> => {
    log.push({ event, data });
    if (event === "room:join") {
      return { ok: true, room: { id: 1, slug: "r", name: "r", kind: "private", topic: "" }, members: [{ ...ME, last_seen: null }],
        presence: {}, messages: page, has_more: false, read_cursors: [{ user_id: 1, last_read_seq: 0 }, { user_id: 2, last_read_seq: 0 }] } as Ack<T>;
    }
    if (event === "message:react") {
      const m = held.get(data.id)!;
      const set = mine.get(m.id) ?? new Set<string>();
      const reactions: Reaction[] = (m.reactions ?? []).map((r) => ({ ...r, user_ids: [...r.user_ids] }));
      let r = reactions.find((x) => x.emoji === data.emoji);
      if (data.on && !set.has(data.emoji)) {
        set.add(data.emoji);
        if (!r) reactions.push((r = { emoji: data.emoji, count: 0, user_ids: [] }));
        r.count += 1;
        if (r.user_ids.length < 10) r.user_ids.push(ME.id);
      } else if (!data.on && set.has(data.emoji) && r) {
        set.delete(data.emoji);
        r.count -= 1;
        r.user_ids = r.user_ids.filter((id) => id !== ME.id);
      }
      mine.set(m.id, set);
      const next = { ...m, reactions: reactions.filter((x) => x.count > 0) };
      held.set(m.id, next);
      return { ok: true, message: next, mine: [...set] } as Ack<T>;
    }
    return { ok: true } as Ack<T>;
  };
  return { emit, log };
}

async function openClient(page: Message[]) {
  const server = fakeServer(page);
  const client = new ChatClient({ me: () => ME, emit: server.emit, connected: () => true, isVisible: () => false, call: async () => ({}) as any });
  await client.openRoom(1);
  return { client, server };
}

describe("reactions in the client", () => {
  it("toggle: a click adds the user's reaction, a second click removes it", async () => {
    const { client, server } = await openClient([msg(10, 1, { author_id: 2 })]);
    expect(await client.react(1, 10, "👍")).toBeNull();
    expect(server.log.at(-1)).toEqual({ event: "message:react", data: { id: 10, emoji: "👍", on: true } });
    expect(client.messages(1).get(10)?.reactions).toEqual([{ emoji: "👍", count: 1, user_ids: [1] }]);
    await client.react(1, 10, "👍");
    expect(server.log.at(-1)?.data.on).toBe(false);
    expect(client.messages(1).get(10)?.reactions).toEqual([]);
  });

  it("toggle: past the ten names of a popular emoji, the ack's `mine` says the user reacted", async () => {
    const popular = { emoji: "🎉", count: 15, user_ids: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11] };
    const { client, server } = await openClient([msg(10, 1, { author_id: 2, reactions: [popular] })]);
    await client.react(1, 10, "🎉");
    expect(server.log.at(-1)?.data.on).toBe(true);
    const held = client.messages(1).get(10)!;
    expect(client.myReactions.has(10, held.reactions![0], ME.id)).toBe(true);
    await client.react(1, 10, "🎉");
    expect(server.log.at(-1)?.data.on).toBe(false);
  });

  it("merges live updates: message:updated replaces the reactions, a later page copy refreshes them", async () => {
    const { client } = await openClient([msg(10, 1, { author_id: 2 })]);
    const changes: string[] = [];
    client.subscribe((c) => changes.push(c.kind));
    client.onMessageUpdated(msg(10, 1, { author_id: 2, reactions: [{ emoji: "🔥", count: 1, user_ids: [2] }] }));
    expect(client.messages(1).get(10)?.reactions?.[0].emoji).toBe("🔥");
    expect(changes).toContain("messages");
    // a sync replay or history page with newer reactions (no timestamp tells): the copy wins
    client.messages(1).add([msg(10, 1, { author_id: 2, reactions: [{ emoji: "🔥", count: 2, user_ids: [2, 3] }] })]);
    expect(client.messages(1).get(10)?.reactions?.[0].count).toBe(2);
    // a copy without the field (an older server) says nothing of reactions
    client.messages(1).add([msg(10, 1, { author_id: 2 })]);
    expect(client.messages(1).get(10)?.reactions?.[0].count).toBe(2);
  });

  it("keeps read cursors from room:join and read:updated, only ever forward", async () => {
    const { client } = await openClient([msg(10, 1)]);
    expect(client.receipts.has(1)).toBe(true);
    client.onReadUpdated({ room_id: 1, user_id: 2, last_read_seq: 5 });
    client.onReadUpdated({ room_id: 1, user_id: 2, last_read_seq: 3 });
    expect(client.receipts.seenBy(1, 5, ME.id)).toEqual([2]);
    expect(client.receipts.seenBy(1, 6, ME.id)).toEqual([]);
  });
});

function rctx(extra: Partial<ReactionContext> = {}): ReactionContext {
  const names: Record<number, string> = { 2: "Ann", 3: "Bob" };
  return { meId: 1, mine: new MyReactions(), nameOf: (id) => names[id], pickerFor: null, onToggle: () => undefined,
    onPicker: () => undefined, seen: () => "", ...extra };
}

describe("the reaction bar", () => {
  it("groups by emoji with counts, highlights the user's own and names who reacted", () => {
    const m = msg(10, 1, { reactions: [{ emoji: "👍", count: 3, user_ids: [2, 1, 3] }, { emoji: "🎉", count: 12, user_ids: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }] });
    const bar = reactionBar(m, rctx())!;
    const chips = [...bar.querySelectorAll<HTMLButtonElement>("[data-testid=reaction]")];
    expect(chips.map((c) => c.textContent)).toEqual(["👍 3", "🎉 12"]);
    expect(chips.map((c) => c.getAttribute("aria-pressed"))).toEqual(["true", "false"]);
    expect(chips[0].classList.contains("mine")).toBe(true);
    expect(chips[0].title).toBe("Ann, you and Bob");
    expect(chips[1].title).toContain("and 2 others");
  });

  it("toggles on click and picks from the picker", () => {
    const toggled: string[] = [];
    const m = msg(10, 1, { reactions: [{ emoji: "👍", count: 1, user_ids: [2] }] });
    const bar = reactionBar(m, rctx({ pickerFor: 10, onToggle: (_m, e) => toggled.push(e) }))!;
    bar.querySelector<HTMLButtonElement>("[data-testid=reaction]")!.click();
    bar.querySelector<HTMLButtonElement>("[data-testid=pick][data-emoji='🔥']")!.click();
    expect(toggled).toEqual(["👍", "🔥"]);
    expect(reactionBar(msg(11, 2), rctx())).toBeNull();
  });

  it("renders hostile emoji strings as text, never as markup", () => {
    const hostile = ["<script>window.__xss=1</script>", '<img src=x onerror="window.__xss=1">', "&lt;b&gt;"];
    const m = msg(10, 1, { reactions: hostile.map((emoji, i) => ({ emoji, count: 1, user_ids: [i + 2] })) });
    const bar = reactionBar(m, rctx({ nameOf: () => "<b>Eve</b>" }))!;
    expect([...bar.querySelectorAll(".emoji")].map((e) => e.textContent)).toEqual(hostile);
    expect(bar.querySelectorAll("script, img, b").length).toBe(0);
    expect(bar.querySelector<HTMLElement>("[data-testid=reaction]")!.title).toBe("<b>Eve</b>");
    expect((window as any).__xss).toBeUndefined();
  });
});

describe("seen by", () => {
  it("says Seen in a DM and names two readers then how many more in a room", () => {
    expect(seenText([], true)).toBe("");
    expect(seenText(["Ann"], true)).toBe("Seen");
    expect(seenText(["Ann"], false)).toBe("Seen by Ann");
    expect(seenText(["Ann", "Bob"], false)).toBe("Seen by Ann, Bob");
    expect(seenText(["Ann", "Bob", "Cy", "Dee"], false)).toBe("Seen by Ann, Bob +2");
  });

  it("counts the members whose cursor reached the message, not the user", () => {
    const rc = new ReadCursors();
    rc.reset(1, [{ user_id: 1, last_read_seq: 9 }, { user_id: 2, last_read_seq: 4 }, { user_id: 3, last_read_seq: 2 }]);
    expect(rc.seenBy(1, 4, 1)).toEqual([2]);
    expect(rc.seenBy(1, 2, 1)).toEqual([2, 3]);
    rc.reset(2, undefined);
    expect(rc.has(2)).toBe(false);
  });

  it("names the reactors in a tooltip, with unknown members as someone", () => {
    expect(reactorsText({ emoji: "👍", count: 1, user_ids: [9] }, () => undefined, 1)).toBe("someone");
  });
});

describe("the message item", () => {
  it("shows reactions and the seen line under the body", async () => {
    const { messageItem } = await import("./views/messages");
    const none = () => undefined;
    const m = msg(10, 1, { reactions: [{ emoji: "👍", count: 1, user_ids: [2] }] });
    const li = messageItem(m, {
      meId: 1, status: none, lookup: none, editingId: null, confirmDeleteId: null, onEdit: none, onSaveEdit: none,
      onCancel: none, onDelete: none, onConfirmDelete: none, onRetry: none, onDiscard: none,
      reactions: rctx({ seen: () => "Seen by Ann" }),
    });
    expect(li.querySelector("[data-testid=reaction]")?.textContent).toBe("👍 1");
    expect(li.querySelector("[data-testid=seen-by]")?.textContent).toBe("Seen by Ann");
  });
});
