// The desk's reports page (supervisors and admins): conversations opened and resolved (by the
// assistant alone or by a person), first response and resolution times, per day, queue or agent
// (`GET /api/v1/reports/conversations`), drawn as a stacked bar chart and a table, and the
// window's conversations as a CSV download (`.../export`).
import { fill, h, say } from "../dom";
import type { App } from "./app";

export interface Seconds { median: number | null; p90: number | null }
export interface Figures {
  opened: number;
  resolved: number;
  resolved_by_ai: number;
  resolved_by_human: number;
  first_response_s: Seconds;
  resolution_s: Seconds;
}
export interface ReportRow extends Figures {
  day?: string;
  queue?: { id: number; name: string } | null;
  agent?: { id: number; display_name: string } | null;
}
export interface Report { from: string; to: string; tz: string; group_by: string[]; rows: ReportRow[]; total: Figures }
export interface ReportParams { from: string; to: string; tz: string; group_by: string }

export function reportPath(p: ReportParams, csv = false): string {
  const q = new URLSearchParams({ from: p.from, to: p.to, tz: p.tz });
  if (!csv) q.set("group_by", p.group_by);
  return `/api/v1/reports/conversations${csv ? "/export" : ""}?${q.toString()}`;
}

/** "45 s", "7.5 min", "2.1 h", or "—". */
export function duration(s: number | null): string {
  if (s === null) return "—";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** What a row is about, in the order it was grouped. */
export function rowLabel(r: ReportRow, groupBy: string[]): string {
  return groupBy.map((d) => d === "day" ? r.day ?? ""
    : d === "queue" ? r.queue?.name ?? "(no queue)" : r.agent?.display_name ?? "(no agent)").join(" · ");
}

const SVG = "http://www.w3.org/2000/svg";
const SERIES = [
  { key: "resolved_by_ai", label: "Resolved by the assistant", color: "#7c9cf0" },
  { key: "resolved_by_human", label: "Resolved by a person", color: "#2f9e6f" },
  { key: "unresolved", label: "Still open", color: "#d9a53c" },
] as const;

function part(r: Figures, key: (typeof SERIES)[number]["key"]): number {
  return key === "unresolved" ? r.opened - r.resolved : r[key];
}

/** Stacked bars, one per row: opened = resolved by the assistant + by a person + still open. */
export function barChart(rows: ReportRow[], groupBy: string[]): SVGSVGElement {
  const barW = 28, gap = 12, height = 160, top = 10;
  const max = Math.max(1, ...rows.map((r) => r.opened));
  const svg = document.createElementNS(SVG, "svg");
  const width = Math.max(200, rows.length * (barW + gap) + gap);
  svg.setAttribute("viewBox", `0 0 ${width} ${height + top + 4}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Conversations opened, by how they were resolved");
  rows.forEach((r, i) => {
    let y = top + height;
    for (const s of SERIES) {
      const n = part(r, s.key);
      if (n <= 0) continue;
      const hgt = (n / max) * height;
      y -= hgt;
      const rect = document.createElementNS(SVG, "rect");
      for (const [k, v] of Object.entries({ x: gap + i * (barW + gap), y, width: barW, height: hgt, fill: s.color })) rect.setAttribute(k, String(v));
      rect.setAttribute("data-series", s.key);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${rowLabel(r, groupBy)}: ${s.label}: ${n}`;
      rect.append(title);
      svg.append(rect);
    }
  });
  return svg;
}

function legend(): HTMLElement {
  return h("p", { class: "legend" }, ...SERIES.map((s) =>
    h("span", { class: "legend-item" }, h("span", { class: "swatch", style: `background:${s.color}` }), s.label)));
}

export function reportTable(report: Report): HTMLElement {
  const cells = (f: Figures) => [f.opened, f.resolved_by_ai, f.resolved_by_human, f.opened - f.resolved,
    duration(f.first_response_s.median), duration(f.first_response_s.p90), duration(f.resolution_s.median), duration(f.resolution_s.p90)]
    .map((v) => h("td", {}, String(v)));
  return h("div", { class: "table-wrap" }, h("table", { testid: "report-table" },
    h("thead", {}, h("tr", {}, ...[report.group_by.join(" · ") || "all", "opened", "by assistant", "by person", "open",
      "first response (median)", "(p90)", "resolution (median)", "(p90)"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...report.rows.map((r) => h("tr", { testid: "report-row" }, h("th", { scope: "row" }, rowLabel(r, report.group_by)), ...cells(r))),
      h("tr", { class: "total" }, h("th", { scope: "row" }, "Total"), ...cells(report.total)))));
}

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function reportsPane(app: App): HTMLElement {
  const today = new Date();
  const from = h("input", { type: "date", testid: "report-from", value: isoDay(new Date(today.getTime() - 6 * 86_400_000)), "aria-label": "From" });
  const to = h("input", { type: "date", testid: "report-to", value: isoDay(today), "aria-label": "To" });
  const tz = h("input", { type: "text", testid: "report-tz", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC", "aria-label": "Time zone" });
  const group = h("select", { testid: "report-group", "aria-label": "Group by" },
    ...[["day", "Day"], ["queue", "Queue"], ["agent", "Agent"], ["day,queue", "Day and queue"], ["queue,agent", "Queue and agent"]]
      .map(([v, t]) => h("option", { value: v }, t)));
  const status = h("p", { class: "notice-inline", role: "status", testid: "report-status" });
  const out = h("div", { testid: "report-out" });
  const params = (): ReportParams => ({ from: from.value, to: to.value, tz: tz.value.trim() || "UTC", group_by: group.value });
  const load = async () => {
    say(status, "");
    try {
      const report = await app.api.call<Report>("GET", reportPath(params()));
      fill(out, legend(), barChart(report.rows, report.group_by), reportTable(report));
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
  const download = async () => {
    try {
      const p = params();
      const blob = await (await app.api.fetchRaw(reportPath(p, true))).blob();
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: `conversations-${p.from}-${p.to}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
  const form = h("form", { class: "report-form", onsubmit: (e) => { e.preventDefault(); void load(); } },
    from, to, tz, group, h("button", { type: "submit", class: "primary", testid: "report-run" }, "Show"),
    h("button", { type: "button", testid: "report-csv", onclick: () => void download() }, "Download CSV"));
  void load();
  return h("section", { class: "reports", "aria-labelledby": "reports-title" },
    h("h2", { id: "reports-title" }, "Reports"), form, status, out);
}
