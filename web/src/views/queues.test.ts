// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import type { Queue, User } from "../types";
import { addableStaff, membersBody, parseCapacity, queueEventAction, QueueMembersEditor } from "./queues";

const HOSTILE = "<img src=x onerror=alert(1)><script>window.__xss=1</script>";
const user = (id: number, display_name: string): User => ({ id, username: `u${id}`, display_name, role: "staff", kind: "human" });
const member = (u: User, capacity: number | null = null) => ({ user_id: u.id, username: u.username, display_name: u.display_name, capacity });
const ANN = user(2, "Ann"), BO = user(3, "Bo"), CY = user(4, "Cy");
const SALES: Queue = { id: 5, name: "Sales", color: "#3b82f6", description: "", greeting: "", away_message: "", members: [member(ANN, 3), member(BO)], updated_at: "2026-12-02T10:00:00.000Z" };

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** An editor of `queue` whose saves are answered by `answer` (given the members sent) and recorded. */
function editor(queue: Queue, staff: User[], answer?: (members: { user_id: number; capacity?: number }[]) => Queue | Error) {
  const saves: { id: number; members: { user_id: number; capacity?: number }[] }[] = [];
  const saved: Queue[] = [];
  const e = new QueueMembersEditor(queue, {
    staff: async () => staff,
    save: async (id, members) => {
      saves.push({ id, members });
      const r = answer ? answer(members) : { ...queue, members: members.map((m) => member(staff.find((u) => u.id === m.user_id)!, m.capacity ?? null)) };
      if (r instanceof Error) throw r;
      return r;
    },
    onSaved: (q) => saved.push(q),
  });
  document.body.replaceChildren(e.el);
  return { e, saves, saved };
}

const q = <T extends Element = HTMLElement>(sel: string) => document.querySelector<T>(`[data-testid=${sel}]`)!;
const all = (sel: string) => [...document.querySelectorAll<HTMLElement>(`[data-testid=${sel}]`)];

describe("a queue's members", () => {
  it("are sent as the whole list, each keeping its capacity", () => {
    expect(membersBody(SALES.members, { add: 4 })).toEqual([{ user_id: 2, capacity: 3 }, { user_id: 3 }, { user_id: 4 }]);
    expect(membersBody(SALES.members, { remove: 2 })).toEqual([{ user_id: 3 }]);
    expect(membersBody(SALES.members, { add: 3 })).toEqual([{ user_id: 2, capacity: 3 }, { user_id: 3 }]); // already in: once
  });

  it("set one agent's capacity, or clear it to the desk's default, keeping the others'", () => {
    expect(membersBody(SALES.members, { capacity: { user_id: 3, value: 8 } })).toEqual([{ user_id: 2, capacity: 3 }, { user_id: 3, capacity: 8 }]);
    expect(membersBody(SALES.members, { capacity: { user_id: 2, value: null } })).toEqual([{ user_id: 2 }, { user_id: 3 }]);
    expect([" 7 ", "", "0", "1001", "2.5", "-3", "x"].map(parseCapacity)).toEqual([7, null, undefined, undefined, undefined, undefined, undefined]);
  });

  it("saves a capacity typed in an agent's row, and refuses one out of range without a request", async () => {
    const { saves } = editor(SALES, [ANN, BO, CY]);
    await settle();
    const field = () => all("queue-member-capacity")[1] as HTMLInputElement;
    field().value = "0";
    field().dispatchEvent(new Event("change"));
    await settle();
    expect(saves).toEqual([]);
    expect(q("queue-members-error").textContent).toContain("1 to 1000");
    field().value = "6";
    field().dispatchEvent(new Event("change"));
    await settle();
    expect(saves).toEqual([{ id: 5, members: [{ user_id: 2, capacity: 3 }, { user_id: 3, capacity: 6 }] }]);
    expect(field().value).toBe("6"); // the saved queue, rendered again
    expect(q("queue-members-error").textContent).toBe("");
  });

  it("offer to add only the staff not in the queue, by name", () => {
    expect(addableStaff([CY, BO, user(6, "Al"), ANN], SALES.members).map((u) => u.display_name)).toEqual(["Al", "Cy"]);
  });

  it("lists the agents and adds a picked one with one PATCH of the list", async () => {
    const { saves, saved } = editor(SALES, [ANN, BO, CY]);
    await settle();
    expect(all("queue-member-row").map((r) => r.dataset.user)).toEqual(["2", "3"]);
    expect(all("queue-member-capacity").map((i) => (i as HTMLInputElement).value)).toEqual(["3", ""]); // empty: the default
    const pick = q<HTMLSelectElement>("queue-member-pick");
    expect([...pick.options].map((o) => o.text)).toEqual(["Add an agent…", "Cy (@u4)"]);
    pick.value = "4";
    q<HTMLButtonElement>("queue-member-add").closest("form")!.requestSubmit();
    await settle();
    expect(saves).toEqual([{ id: 5, members: [{ user_id: 2, capacity: 3 }, { user_id: 3 }, { user_id: 4 }] }]);
    expect(all("queue-member-row").map((r) => r.dataset.user)).toEqual(["2", "3", "4"]);
    expect([...q<HTMLSelectElement>("queue-member-pick").options].map((o) => o.text)).toEqual(["No one else to add"]);
    expect(saved.map((x) => x.members.length)).toEqual([3]);
  });

  it("removes an agent", async () => {
    const { saves } = editor(SALES, [ANN, BO, CY]);
    await settle();
    all("queue-member-remove")[0].click();
    await settle();
    expect(saves).toEqual([{ id: 5, members: [{ user_id: 3 }] }]);
    expect(all("queue-member-row").map((r) => r.dataset.user)).toEqual(["3"]);
  });

  it("does not post without a pick", async () => {
    const { saves } = editor(SALES, [ANN, BO, CY]);
    await settle();
    q<HTMLButtonElement>("queue-member-add").closest("form")!.requestSubmit();
    await settle();
    expect(saves).toEqual([]);
  });

  it("shows a refusal beside the form with its code and keeps the list as it was", async () => {
    editor(SALES, [ANN, BO, CY], () => new ApiError(404, "not_found", "not an active staff user", { field: "members" }));
    await settle();
    q<HTMLSelectElement>("queue-member-pick").value = "4";
    q<HTMLButtonElement>("queue-member-add").closest("form")!.requestSubmit();
    await settle();
    expect(q("queue-members-error").textContent).toBe("Not found: not an active staff user");
    expect(q("queue-members-error").dataset.code).toBe("not_found");
    expect(all("queue-member-row").map((r) => r.dataset.user)).toEqual(["2", "3"]);
  });

  it("shows hostile agent names as text", async () => {
    const evil = user(9, HOSTILE);
    editor({ ...SALES, name: HOSTILE, members: [member(evil)] }, [evil, CY]);
    await settle();
    expect(q("queue-member-row").textContent).toContain(HOSTILE);
    expect(q("queue-member-remove").getAttribute("aria-label")).toBe(`Remove ${HOSTILE} from ${HOSTILE}`);
    expect(document.querySelectorAll("img, script, [onerror]").length).toBe(0);
  });

  it("follow other admins' changes: an item re-rendered, the list reloaded, or nothing for what shows already", () => {
    const shown = new Map([[SALES.id, SALES]]);
    expect(queueEventAction(shown, { queue: { ...SALES } })).toBe("none"); // the viewer's own save, heard back
    expect(queueEventAction(shown, { queue: { ...SALES, members: [member(ANN, 3)], updated_at: "2026-12-02T10:00:00.001Z" } })).toBe("item");
    // an older state heard after the one shown (two requests' events out of order)
    expect(queueEventAction(shown, { queue: { ...SALES, members: [], updated_at: "2026-12-02T09:59:59.999Z" } })).toBe("none");
    expect(queueEventAction(shown, { queue: { ...SALES, id: 9, name: "Support" } })).toBe("list"); // a new queue
    expect(queueEventAction(shown, { deleted: SALES.id })).toBe("list");
    expect(queueEventAction(shown, { deleted: 77 })).toBe("none");
  });

  it("follow another admin's change at once, or, while a capacity is being typed, once the field is left", async () => {
    const { e, saves } = editor(SALES, [ANN, BO, CY]);
    const field = (u: User) => document.querySelector<HTMLInputElement>(`[data-user="${u.id}"] input.capacity`);
    e.follow({ ...SALES, members: [member(ANN, 4), member(BO)] }); // nobody typing: shown at once
    expect(field(ANN)!.value).toBe("4");
    const typed = field(BO)!;
    typed.focus();
    typed.value = "1"; // on the way to 12
    e.follow({ ...SALES, members: [member(ANN, 5), member(BO), member(CY)] });
    expect(field(BO)).toBe(typed); // the field stays, with what is typed and the focus
    expect(typed.value).toBe("1");
    expect(document.activeElement).toBe(typed);
    expect(field(CY)).toBeNull(); // not rendered yet
    expect(saves).toEqual([]); // nothing half-typed is saved
    typed.value = "12";
    typed.dispatchEvent(new Event("change")); // Enter or leaving the field
    await settle();
    // the save starts from the other admin's members: Ann's 5 and Cy are kept
    expect(saves.at(-1)?.members).toEqual([{ user_id: ANN.id, capacity: 5 }, { user_id: BO.id, capacity: 12 },
      { user_id: CY.id }]);
    expect(field(CY)).not.toBeNull();
    // a change deferred and then the field left without a change: rendered once the focus leaves
    field(BO)!.focus();
    e.follow({ ...SALES, members: [member(BO, 12)] });
    expect(field(ANN)).not.toBeNull();
    field(BO)!.blur();
    await new Promise((r) => setTimeout(r, 0));
    expect(all("queue-member-row").map((r) => r.dataset.user)).toEqual([String(BO.id)]);
    expect(saves.length).toBe(1);
  });

  it("keep a change heard while a save was on its way: the save's late answer does not undo it", async () => {
    let answer: (q: Queue) => void = () => undefined;
    const saved: Queue[] = [];
    const e = new QueueMembersEditor(SALES, {
      staff: async () => [ANN, BO, CY],
      save: () => new Promise<Queue>((resolve) => { answer = resolve; }),
      onSaved: (x) => saved.push(x),
    });
    document.body.replaceChildren(e.el);
    await settle();
    const field = all("queue-member-capacity")[1] as HTMLInputElement;
    field.value = "12";
    field.dispatchEvent(new Event("change"));
    await settle();
    // another admin emptied the queue after our save was stored, and our answer comes last
    e.follow({ ...SALES, members: [], updated_at: "2026-12-02T10:00:05.002Z" });
    answer({ ...SALES, members: [member(ANN, 3), member(BO, 12)], updated_at: "2026-12-02T10:00:05.001Z" });
    await settle();
    expect(all("queue-member-row")).toEqual([]);
    expect(saved).toEqual([]);
  });
});
