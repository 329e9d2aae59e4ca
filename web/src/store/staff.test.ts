import { describe, expect, it } from "vitest";
import type { User } from "../types";
import { fetchStaff, STAFF_PAGE } from "./staff";

const person = (i: number): User => ({ id: i, username: `s${String(i).padStart(3, "0")}`, display_name: `S ${i}`, role: "staff", kind: "human" });

describe("the staff list", () => {
  it("pages through every staff member by username, asking the server for staff only", async () => {
    const everyone = Array.from({ length: STAFF_PAGE * 2 + 7 }, (_, i) => person(i));
    const asked: string[] = [];
    const got = await fetchStaff(async (path) => {
      asked.push(path);
      const url = new URL(path, "http://x");
      expect(url.searchParams.get("staff")).toBe("true");
      const after = url.searchParams.get("after") ?? "";
      return { users: everyone.filter((u) => u.username > after).slice(0, Number(url.searchParams.get("limit"))) };
    });
    expect(got.map((u) => u.id)).toEqual(everyone.map((u) => u.id));
    expect(asked).toHaveLength(3);
    expect(asked[1]).toContain(`after=${everyone[STAFF_PAGE - 1].username}`);
  });

  it("asks once when the first page is not full", async () => {
    let calls = 0;
    const got = await fetchStaff(async () => { calls++; return { users: [person(1)] }; });
    expect(got).toHaveLength(1);
    expect(calls).toBe(1);
  });
});
