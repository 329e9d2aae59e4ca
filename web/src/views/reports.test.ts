// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { barChart, duration, reportPath, reportTable, rowLabel, type Report, type ReportRow } from "./reports";

const fig = (opened: number, ai: number, human: number): ReportRow => ({
  opened, resolved: ai + human, resolved_by_ai: ai, resolved_by_human: human,
  first_response_s: { median: 450, p90: 570 }, resolution_s: { median: 2400, p90: null },
});

describe("the reports page", () => {
  it("asks for the window, zone and grouping, and the export without the grouping", () => {
    const p = { from: "2026-03-02", to: "2026-03-03", tz: "Europe/Berlin", group_by: "queue,agent" };
    expect(reportPath(p)).toBe("/api/v1/reports/conversations?from=2026-03-02&to=2026-03-03&tz=Europe%2FBerlin&group_by=queue%2Cagent");
    expect(reportPath(p, true)).toBe("/api/v1/reports/conversations/export?from=2026-03-02&to=2026-03-03&tz=Europe%2FBerlin");
  });

  it("writes durations for people", () => {
    expect([duration(null), duration(45), duration(450), duration(7200)]).toEqual(["—", "45 s", "7.5 min", "2.0 h"]);
  });

  it("stacks each bar from how its conversations ended, scaled to the largest", () => {
    const svg = barChart([{ ...fig(4, 2, 1), day: "2026-03-02" }, { ...fig(2, 0, 0), day: "2026-03-03" }], ["day"]);
    const rects = [...svg.querySelectorAll("rect")];
    expect(rects.map((r) => r.getAttribute("data-series"))).toEqual(["resolved_by_ai", "resolved_by_human", "unresolved", "unresolved"]);
    const heights = rects.map((r) => Number(r.getAttribute("height")));
    expect(heights[0] + heights[1] + heights[2]).toBeCloseTo(160); // the largest bar fills the chart
    expect(heights[3]).toBeCloseTo(80);
    expect(rects[0].querySelector("title")?.textContent).toBe("2026-03-02: Resolved by the assistant: 2");
  });

  it("labels rows by their groups and ends the table with the total", () => {
    const row = { ...fig(1, 1, 0), queue: null, agent: { id: 3, display_name: "Bo" } };
    expect(rowLabel(row, ["queue", "agent"])).toBe("(no queue) · Bo");
    const report: Report = { from: "a", to: "b", tz: "UTC", group_by: ["queue", "agent"], rows: [row], total: fig(1, 1, 0) };
    const table = reportTable(report);
    const lines = [...table.querySelectorAll("tbody tr")].map((tr) => [...tr.children].map((c) => c.textContent));
    expect(lines).toEqual([
      ["(no queue) · Bo", "1", "1", "0", "0", "7.5 min", "9.5 min", "40.0 min", "—"],
      ["Total", "1", "1", "0", "0", "7.5 min", "9.5 min", "40.0 min", "—"]]);
  });
});
