import { describe, expect, it } from "vitest";
import { Notes } from "./notes";

const note = (id: number, room_id = 7) => ({ id, room_id, author: { id: 1, username: "s", display_name: "S" }, body: `n${id}`, created_at: "2026-01-01T00:00:00Z" });

describe("Notes", () => {
  it("adds a note once, in id order, whether it came live or from the POST answer", () => {
    const notes = new Notes();
    notes.add(note(3));
    notes.add(note(1));
    notes.add(note(3));
    expect(notes.get(7)?.map((n) => n.id)).toEqual([1, 3]);
  });

  it("keeps a note that arrived live while the list was loading", () => {
    const notes = new Notes();
    notes.add(note(5));
    notes.setAll(7, [note(1), note(2)]);
    expect(notes.get(7)?.map((n) => n.id)).toEqual([1, 2, 5]);
    expect(notes.get(8)).toBeUndefined();
  });
});
