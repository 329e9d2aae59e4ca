// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { Room, User } from "../types";
import type { App } from "./app";
import { Sidebar } from "./sidebar";

function sidebar(role: User["role"], rooms: Room[] = []): Sidebar {
  const me: User = { id: 1, username: "ann", display_name: "Ann", role, kind: "human" };
  const app = {
    me,
    client: {
      rooms: { sections: () => ({ rooms: rooms.filter((r) => r.kind !== "direct"), direct: rooms.filter((r) => r.kind === "direct"), discover: [] }) },
      presence: { describe: () => "", get: () => ({ status: "offline" }) },
    },
    notifier: { permission: () => "granted" },
  } as unknown as App;
  const s = new Sidebar(app);
  document.body.replaceChildren(s.el);
  return s;
}

const links = () => [...document.querySelectorAll<HTMLElement>("nav a")];

describe("the sidebar's navigation", () => {
  it("keeps its links when presence or rooms re-render it, so a click under way is not lost", () => {
    const s = sidebar("staff");
    s.render(null, "home");
    const before = links();
    expect(before.map((a) => a.dataset.testid)).toEqual(["nav-chat", "nav-inbox", "nav-contacts", "nav-labels", "nav-archive"]);
    s.render(null, "home"); // a presence change
    expect(links().every((a, i) => a === before[i])).toBe(true);
    s.render(null, "contacts"); // the route moved: only the two links whose state changed are new
    const after = links();
    expect(after.filter((a, i) => a !== before[i]).map((a) => a.dataset.testid)).toEqual(["nav-chat", "nav-contacts"]);
    expect(after.find((a) => a.classList.contains("active"))?.getAttribute("aria-current")).toBe("page");
    expect(document.querySelector("nav .active")?.getAttribute("data-testid")).toBe("nav-contacts");
  });

  it("shows each role its sections only", () => {
    sidebar("user").render(null, "home");
    expect(links()).toEqual([]);
    expect(document.querySelector<HTMLElement>("nav")!.hidden).toBe(true);
    sidebar("admin").render(null, "admin");
    expect(links().map((a) => a.dataset.testid)).toEqual(
      ["nav-chat", "nav-inbox", "nav-contacts", "nav-labels", "nav-archive", "nav-reports", "nav-campaigns", "nav-admin"]);
  });
});

describe("the sidebar's rooms", () => {
  it("update in place when a message arrives, so a click on a busy room lands", () => {
    const general = { id: 7, name: "general", kind: "public", joined: true, unread: 0, mentions: 0, notify: "all" } as unknown as Room;
    const s = sidebar("user", [general]);
    s.render(null, "home");
    const item = document.querySelector<HTMLElement>("[data-testid=room-item]")!;
    general.unread = 3;
    s.render(null, "home");
    expect(document.querySelector("[data-testid=room-item]")).toBe(item);
    expect(item.querySelector("[data-testid=unread]")?.textContent).toBe("3");
    expect(item.getAttribute("aria-label")).toContain("3 unread");
    general.unread = 0;
    s.render(7, "room");
    expect(document.querySelector("[data-testid=room-item]")).toBe(item);
    expect(item.querySelector("[data-testid=unread]")).toBeNull();
    expect(item.classList.contains("active")).toBe(true);
  });
});
