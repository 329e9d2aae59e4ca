// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChatClient, MEDIA_URL_FRESH_MS } from "../client";
import { FakeXHR, flush, mountChat, msg, uploaded } from "../testing";
import type { Ack, Message } from "../types";

const ME = { id: 1, username: "me", display_name: "Me", role: "user" as const, kind: "human" };

/** The room view over a real ChatClient whose socket is a recorder; uploads go to FakeXHR. */
function view(held: Message[] = []) {
  const sent: { event: string; data: any }[] = [];
  const clock = { now: 1_000_000, sig: 1 };
  const emit = async <T,>(event: string, data: any): Promise<Ack<T>> => {
    sent.push({ event, data });
    const signed = () => held.map((m) => ({ ...m, attachments: m.attachments?.map((a) => ({ ...a, url: `${a.url.split("?")[0]}?sig=${clock.sig}` })) }));
    if (event === "room:join") return { ok: true, room: { id: 1, slug: "r", name: "room", kind: "public", topic: "", last_seq: held.length }, members: [], presence: {}, messages: signed(), has_more: false } as Ack<T>;
    if (event === "history") return { ok: true, messages: signed(), has_more: false } as Ack<T>;
    if (event === "message:send") return { ok: true, message: msg(100, 1, { author_id: 1, body: data.body, client_id: data.client_id, attachments: data.attachments.map((id: string) => uploaded(id, `${id}.png`)) }) } as Ack<T>;
    if (event === "message:edit") return { ok: true, message: msg(data.id, 1, { author_id: 1, body: data.body, edited_at: "2026-11-23T10:01:00Z" }) } as Ack<T>;
    return { ok: true } as Ack<T>;
  };
  const client = new ChatClient({ now: () => clock.now, me: () => ME, emit, connected: () => true, isVisible: () => true, call: async <T,>() => ({ rooms: [] }) as T });
  const v = mountChat(client, ME);
  return { v, sent, client, clock };
}

const q = <T extends Element = HTMLElement>(sel: string) => document.querySelector<T>(sel)!;

async function pick(...names: string[]): Promise<void> {
  const input = q<HTMLInputElement>("[data-testid=file-input]");
  Object.defineProperty(input, "files", { value: names.map((n) => new File(["x"], n, { type: "image/png" })), configurable: true });
  input.dispatchEvent(new Event("change"));
  for (let i = 0; i < 10 && FakeXHR.all.length < names.length; i++) await flush();
}

beforeEach(() => {
  FakeXHR.all = [];
  vi.stubGlobal("XMLHttpRequest", FakeXHR);
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("the composer with files", () => {
  it("enables Send once an upload finished, sends its id as `attachments` with an empty body, and clears the chips", async () => {
    const { sent, client } = view();
    await flush();
    const send = q<HTMLButtonElement>("[data-testid=send]");
    expect(send.disabled).toBe(true);
    await pick("cat.png");
    expect(send.disabled).toBe(true); // still uploading
    FakeXHR.all[0].respond(201, uploaded("u1", "cat.png"));
    await flush();
    expect(send.disabled).toBe(false);
    send.click();
    await flush();
    const sends = sent.filter((e) => e.event === "message:send").map((e) => e.data);
    expect(sends).toHaveLength(1);
    expect(sends[0].body).toBe("");
    expect(sends[0].attachments).toEqual(["u1"]);
    expect(document.querySelectorAll("[data-testid=chip]")).toHaveLength(0);
    expect(send.disabled).toBe(true);
    const shown = client.messages(1).sorted() as Message[];
    expect(shown[0].attachments?.[0].id).toBe("u1");
    const item = q(`[data-testid=message][data-id="100"]`);
    expect(item.querySelector("[data-testid=attachment-image]")).not.toBeNull();
    expect(item.querySelector("[data-testid=message-body]")).toBeNull();
  });

  it("sends text with the finished uploads only; a file still uploading stays for the next message", async () => {
    const { sent } = view();
    await flush();
    await pick("a.png", "b.png");
    FakeXHR.all[0].respond(201, uploaded("ua", "a.png"));
    await flush();
    const input = q<HTMLTextAreaElement>("[data-testid=composer-input]");
    input.value = "two pictures, one on the way";
    input.dispatchEvent(new Event("input"));
    q<HTMLButtonElement>("[data-testid=send]").click();
    await flush();
    const [data] = sent.filter((e) => e.event === "message:send").map((e) => e.data);
    expect(data).toMatchObject({ body: "two pictures, one on the way", attachments: ["ua"] });
    expect([...document.querySelectorAll<HTMLElement>("[data-testid=chip]")].map((c) => c.dataset.state)).toEqual(["uploading"]);
  });

  it("leaving the room aborts the uploads in flight", async () => {
    const { v } = view();
    await flush();
    await pick("a.png");
    v.destroy();
    expect(FakeXHR.all[0].aborted).toBe(true);
  });

  it("a download link held for most of its hour is renewed before it is followed", async () => {
    const { sent, clock } = view([msg(7, 1, { author_id: 2, body: "", attachments: [uploaded("d", "report.pdf", "application/pdf")] })]);
    await flush();
    const tab = { opener: {} as unknown, location: { href: "" }, close: () => undefined };
    const open = vi.spyOn(window, "open").mockReturnValue(tab as unknown as Window);
    const link = () => q<HTMLAnchorElement>("[data-testid=file-download]");
    expect(link().getAttribute("href")).toBe("https://media.test/d?sig=1");
    // what the app decided, seen after it; then no navigation in the test page
    const prevented: boolean[] = [];
    const stop = (e: Event) => { prevented.push(e.defaultPrevented); e.preventDefault(); };
    document.addEventListener("click", stop);
    link().dispatchEvent(new MouseEvent("click", { cancelable: true, bubbles: true }));
    expect(prevented).toEqual([false]); // a fresh link is followed as it is
    clock.now += MEDIA_URL_FRESH_MS;
    clock.sig = 2;
    link().dispatchEvent(new MouseEvent("click", { cancelable: true, bubbles: true }));
    expect(prevented).toEqual([false, true]);
    expect(open).toHaveBeenCalledOnce();
    await flush();
    expect(sent.filter((e) => e.event === "history")).toHaveLength(1);
    expect(tab.opener).toBeNull();
    expect(tab.location.href).toBe("https://media.test/d?sig=2");
    expect(link().getAttribute("href")).toBe("https://media.test/d?sig=2");
    document.removeEventListener("click", stop);
  });
});

describe("the room header", () => {
  it("keeps its controls when presence re-renders it, so an open select or a click under way is not lost", async () => {
    const { client } = view();
    for (let i = 0; i < 5; i++) await flush();
    const controls = () => [...document.querySelectorAll<HTMLElement>(".actions > *")];
    const before = controls();
    expect(before.map((e) => e.dataset.testid ?? e.querySelector("select")?.dataset.testid)).toEqual(["notify-setting", "invite", "leave"]);
    client.onPresence({ user_id: 2, status: "online" } as Parameters<ChatClient["onPresence"]>[0]);
    expect(controls().every((e, i) => e === before[i])).toBe(true);
    q<HTMLButtonElement>("[data-testid=invite]").click(); // its state changed: that button alone is new
    const after = controls();
    expect(after.map((e, i) => e === before[i])).toEqual([true, false, true]);
    expect(q("[data-testid=invite]").getAttribute("aria-expanded")).toBe("true");
  });
});

describe("a message being edited", () => {
  it("keeps the text typed and the focus when someone reads or reacts to it, and saves what was typed", async () => {
    const { client, sent } = view([msg(1, 1, { author_id: 1, body: "hello" })]);
    for (let i = 0; i < 5; i++) await flush();
    const reply = q<HTMLButtonElement>("[data-testid=reply]");
    client.onReadUpdated({ room_id: 1, user_id: 2, last_read_seq: 1 }); // "Seen" under it
    expect(q("[data-testid=seen-by]")).toBeTruthy();
    expect(q("[data-testid=reply]")).toBe(reply); // a click under way on it lands
    q<HTMLButtonElement>("[data-testid=edit]").click();
    await flush();
    const box = q<HTMLTextAreaElement>("[data-testid=edit-input]");
    box.value = "hello world, edited";
    box.focus();
    client.onReadUpdated({ room_id: 1, user_id: 3, last_read_seq: 1 });
    client.onMessageUpdated(msg(1, 1, { author_id: 1, body: "hello", reactions: [{ emoji: "👍", count: 1, user_ids: [2] }] }));
    await flush();
    expect(q("[data-testid=reaction]")).toBeTruthy();
    expect(q("[data-testid=edit-input]")).toBe(box);
    expect(box.value).toBe("hello world, edited");
    expect(document.activeElement).toBe(box);
    box.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    await flush();
    expect(sent.filter((s) => s.event === "message:edit").map((s) => s.data)).toEqual([{ id: 1, body: "hello world, edited" }]);
    expect(q("[data-testid=message-body]").textContent).toBe("hello world, edited");
  });
});
