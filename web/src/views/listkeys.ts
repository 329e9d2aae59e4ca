// The keyboard of the composer's pop-up lists (mentions after "@", canned replies after "/"):
// ArrowUp/ArrowDown move round the list, Enter or Tab pick (Shift+Enter stays a new line),
// Escape dismisses. One place, so both lists answer the same keys the same way.

export type ListKey = { kind: "move"; index: number } | { kind: "pick" } | { kind: "dismiss" };

/** What `e` does to an open list of `count` items whose `active` one is highlighted; null: not a list key. */
export function listKey(e: KeyboardEvent, count: number, active: number): ListKey | null {
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    return { kind: "move", index: (active + (e.key === "ArrowDown" ? 1 : count - 1)) % count };
  }
  if (e.key === "Enter" || e.key === "Tab") return e.shiftKey && e.key === "Enter" ? null : { kind: "pick" };
  if (e.key === "Escape") return { kind: "dismiss" };
  return null;
}
