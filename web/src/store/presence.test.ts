import { describe, expect, it } from "vitest";
import { ago, PresenceMap } from "./presence";

const NOW = Date.parse("2026-11-23T12:00:00Z");

describe("PresenceMap", () => {
  it("describes online users, last seen times and unknown users", () => {
    const p = new PresenceMap();
    p.apply({ user_id: 1, status: "online", last_seen: null });
    p.apply({ user_id: 2, status: "offline", last_seen: "2026-11-23T11:55:00Z" });
    expect(p.describe(1, NOW)).toBe("online");
    expect(p.describe(2, NOW)).toBe("last seen 5 min ago");
    expect(p.describe(3, NOW)).toBe("offline");
    expect(p.isOnline(1)).toBe(true);
  });

  it("keeps the last seen time when an event comes without one", () => {
    const p = new PresenceMap();
    p.set(1, "offline", "2026-11-23T10:00:00Z");
    p.set(1, "online", null);
    p.set(1, "offline", null);
    expect(p.describe(1, NOW)).toBe("last seen 2 h ago");
  });
});

describe("ago", () => {
  it("rounds to the unit that reads best", () => {
    expect(ago("2026-11-23T11:59:30Z", NOW)).toBe("just now");
    expect(ago("2026-11-23T11:00:00Z", NOW)).toBe("1 h ago");
    expect(ago("2026-11-21T12:00:00Z", NOW)).toBe("2 d ago");
    expect(ago("2026-10-01T12:00:00Z", NOW)).toBe("on 2026-10-01");
    expect(ago("nonsense", NOW)).toBe("a while ago");
  });
});
