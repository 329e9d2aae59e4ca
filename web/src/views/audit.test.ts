// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { auditPath, auditRow, details } from "./audit";

describe("the audit log table", () => {
  it("asks for the filters and the cursor", () => {
    expect(auditPath({}, null)).toBe("/api/v1/audit?limit=50");
    expect(auditPath({ action: "user.role", target_type: "user" }, 42)).toBe("/api/v1/audit?limit=50&action=user.role&target_type=user&cursor=42");
  });

  it("shows who, what, the target, the details and the address", () => {
    const row = auditRow({ id: 7, actor: { id: 1, username: "root", display_name: "Root" }, action: "user.role",
      target_type: "user", target_id: 5, meta: { from: "user", to: "staff", ip: "10.0.0.1" }, created_at: "2026-01-01T00:00:00Z" });
    const cells = [...row.querySelectorAll("td")].map((td) => td.textContent);
    expect(cells.slice(1)).toEqual(["root", "user.role", "user 5", "from: user, to: staff", "10.0.0.1"]);
    expect(details({ to: { ai_enabled: false } })).toBe('to: {"ai_enabled":false}');
  });
});
