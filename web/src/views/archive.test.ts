import { describe, expect, it } from "vitest";
import { archivePath } from "./archive";

const q = (extra: Partial<Parameters<typeof archivePath>[0]>) => ({ q: "", room: "", user: "", from: "", to: "", ...extra });

describe("archivePath", () => {
  it("searches text within a room or a user", () => {
    const r = archivePath(q({ q: "invoice 42", room: "7" }));
    expect(r).toEqual({ path: "/archive/v1/search?limit=50&q=invoice+42&room_id=7" });
    expect(archivePath(q({ q: "x", user: "3" }))).toEqual({ path: "/archive/v1/search?limit=50&q=x&user_id=3" });
  });

  it("lists a room or a user's messages without text, with the cursor for the next page", () => {
    expect(archivePath(q({ room: "7" }), "abc", 20)).toEqual({ path: "/archive/v1/rooms/7/messages?cursor=abc&limit=20" });
    expect(archivePath(q({ user: "3" }))).toEqual({ path: "/archive/v1/users/3/messages?limit=50" });
  });

  it("turns a date range into an inclusive from and an exclusive next-day to", () => {
    const r = archivePath(q({ room: "7", from: "2026-11-01", to: "2026-11-02" }));
    expect("path" in r).toBe(true);
    const params = new URLSearchParams((r as { path: string }).path.split("?")[1]);
    expect(new Date(params.get("from")!).getTime()).toBe(new Date("2026-11-01T00:00:00").getTime());
    expect(new Date(params.get("to")!).getTime()).toBe(new Date("2026-11-03T00:00:00").getTime());
  });

  it("refuses queries the archive would reject", () => {
    expect(archivePath(q({ q: "x" }))).toEqual({ error: "Give a room or a user to search in." });
    expect(archivePath(q({ room: "abc" }))).toEqual({ error: "The room is a number (the room id)." });
  });
});
