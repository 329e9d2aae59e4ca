// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { CampaignProgress } from "../types";
import type { App } from "./app";
import { actionsFor, campaignsPane, defaultSource, leftOutLines, newer, percentDone, problemLines } from "./campaigns";

const progress = (seq: number, sent: number): CampaignProgress => ({ campaign_id: 1, seq, status: "running",
  pause_reason: null, total: 10, queued: 10 - sent, sending: 0, sent, delivered: 0, read: 0, failed: 0, replied: 0,
  skipped: 0, unknown: 0 });

describe("the campaigns page", () => {
  it("counts sent, failed, skipped and unknown recipients as done", () => {
    expect(percentDone({ total: 0, sent: 0, failed: 0, skipped: 0, unknown: 0 })).toBe(0);
    expect(percentDone({ total: 8, sent: 4, failed: 1, skipped: 1, unknown: 0 })).toBe(75);
    expect(percentDone({ total: 3, sent: 3, failed: 0, skipped: 0, unknown: 0 })).toBe(100);
  });

  it("keeps the event with the highest seq, whatever order they arrive in", () => {
    expect(newer(undefined, progress(1, 1))).toBe(true);
    expect(newer(progress(5, 5), progress(4, 4))).toBe(false);
    expect(newer(progress(5, 5), progress(6, 6))).toBe(true);
  });

  it("shows the server's CSV problems with their line numbers", () => {
    expect(problemLines({ problems: [{ line: 3, column: "phone", message: "not a number" }, { line: 1, column: null, message: "not UTF-8" }] }))
      .toEqual(["line 3 (phone): not a number", "line 1: not UTF-8"]);
    expect(problemLines(undefined)).toEqual([]);
  });

  it("offers only the moves the server allows from each status", () => {
    expect(actionsFor("draft")).toEqual(["start", "cancel", "delete"]);
    expect(actionsFor("running")).toEqual(["pause", "cancel"]);
    expect(actionsFor("paused")).toEqual(["resume", "cancel", "delete"]);
  });
});

const flush = async () => { for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0)); };

describe("the campaign's CSV upload", () => {
  it("keeps the preview on screen after the page reloads the campaign", async () => {
    const draft = { id: 7, account_id: 1, name: "Orders", template: "order_update", language: "en_US",
      variables: ["first_name"], status: "draft", pause_reason: null };
    const counts = { total: 0, queued: 0, sending: 0, sent: 0, delivered: 0, read: 0, failed: 0, replied: 0, skipped: 0, unknown: 0 };
    const preview = [{ phone: "+491700000001", text: "Hi Ann" }, { phone: "+491700000002", text: "Hi Bob" }];
    const api = {
      call: async (_method: string, path: string) => {
        if (path.startsWith("/api/v1/campaigns?")) return { campaigns: [draft] };
        if (path.endsWith("/stats")) return { failures: [] };
        return { campaign: draft, counts: { ...counts, total: 2, queued: 2 } };
      },
      callBody: async () => ({ recipients: 2, preview }),
    };
    const app = { api, me: { role: "supervisor" }, campaignListeners: new Set() } as unknown as App;
    const pane = campaignsPane(app);
    document.body.append(pane.el);
    await flush();
    (pane.el.querySelector('[data-testid="campaign-open"]') as HTMLButtonElement).click();
    await flush();
    const input = pane.el.querySelector('[data-testid="campaign-csv"]') as HTMLInputElement;
    Object.defineProperty(input, "files", { value: [new File(["phone,first_name\n"], "r.csv", { type: "text/csv" })] });
    input.dispatchEvent(new Event("change"));
    await flush();
    const items = [...pane.el.querySelectorAll('[data-testid="campaign-preview"] li')].map((li) => li.textContent);
    expect(items).toEqual(["+491700000001 Hi Ann", "+491700000002 Hi Bob"]);
    expect(pane.el.querySelector('[data-testid="campaign-percent"]')?.textContent).toBe(" 0 %");
    pane.destroy();
    pane.el.remove();
  });
});

describe("the campaign list", () => {
  it("shows a campaign's new status when its progress says it completed", async () => {
    let status = "running";
    const campaign = () => ({ id: 3, account_id: 1, name: "Orders", template: "t", language: "en", variables: [],
      status, pause_reason: null });
    const api = { call: async (_method: string, path: string) => {
      if (path.startsWith("/api/v1/campaigns?")) return { campaigns: [campaign()] };
      if (path.endsWith("/stats")) return { failures: [] };
      return { campaign: campaign(), counts: { total: 1, queued: 0, sending: 0, sent: 1, delivered: 0, read: 0, failed: 0,
        replied: 0, skipped: 0, unknown: 0 } };
    } };
    const listeners = new Set<(e: CampaignProgress) => void>();
    const app = { api, me: { role: "supervisor" }, campaignListeners: listeners } as unknown as App;
    const pane = campaignsPane(app);
    await flush();
    const entry = () => pane.el.querySelector('[data-testid="campaign-open"]')?.textContent;
    expect(entry()).toBe("Orders — running");
    status = "completed";
    for (const f of listeners) f({ ...progress(9, 10), campaign_id: 3, status: "completed" });
    await flush();
    expect(entry()).toBe("Orders — completed");
    pane.destroy();
  });
});

describe("recipients from a contact label", () => {
  it("fills a variable from the contact field or attribute of its name by default", () => {
    expect(defaultSource("name")).toBe("{{contact.name}}");
    expect(defaultSource("order")).toBe("{{contact.attributes.order}}");
  });

  it("says why each contact was left out", () => {
    expect(leftOutLines([{ contact_id: 4, name: "Bo", phone: "+491700000002", reason: "opted_out", variable: null },
      { contact_id: 5, name: "", phone: null, reason: "no_phone", variable: null },
      { contact_id: 6, name: "Dee", phone: "+491700000004", reason: "empty_value", variable: "order" }], 4))
      .toEqual(["Bo (+491700000002): opted out (STOP)", "contact 5: no phone number", "Dee (+491700000004): empty value for order",
        "… and 1 more"]);
  });

  it("sends the label and the variables' sources, then shows the preview and who was left out", async () => {
    const draft = { id: 8, account_id: 1, name: "VIP", template: "order_update", language: "en_US",
      variables: ["first_name", "order"], status: "draft", pause_reason: null };
    const counts = { total: 1, queued: 1, sending: 0, sent: 0, delivered: 0, read: 0, failed: 0, replied: 0, skipped: 0, unknown: 0 };
    const sent: unknown[] = [];
    const api = { call: async (method: string, path: string, body?: unknown) => {
      if (path.startsWith("/api/v1/campaigns?")) return { campaigns: [draft] };
      if (path === "/api/v1/labels") return { labels: [{ id: 3, name: "VIP", color: "#123456" }] };
      if (path.endsWith("/stats")) return { failures: [] };
      if (method === "PUT") {
        sent.push(body);
        return { recipients: 1, preview: [{ phone: "+491700000001", text: "Hi Ann" }], left_out_count: 1,
          left_out: [{ contact_id: 4, name: "Bo", phone: "+491700000002", reason: "opted_out", variable: null }] };
      }
      return { campaign: draft, counts };
    } };
    const app = { api, me: { role: "supervisor" }, campaignListeners: new Set() } as unknown as App;
    const pane = campaignsPane(app);
    await flush();
    (pane.el.querySelector('[data-testid="campaign-open"]') as HTMLButtonElement).click();
    await flush();
    const inputs = [...pane.el.querySelectorAll('[data-testid="campaign-label-variable"]')] as HTMLInputElement[];
    expect(inputs.map((i) => i.value)).toEqual(["{{contact.attributes.first_name}}", "{{contact.attributes.order}}"]);
    inputs[0].value = "{{contact.name}}";
    (pane.el.querySelector('[data-testid="campaign-label-use"]') as HTMLButtonElement).click();
    await flush();
    expect(sent).toEqual([{ label_id: 3, variables: { first_name: "{{contact.name}}", order: "{{contact.attributes.order}}" } }]);
    const texts = (id: string) => [...pane.el.querySelectorAll(`[data-testid="${id}"] li`)].map((li) => li.textContent);
    expect(texts("campaign-preview")).toEqual(["+491700000001 Hi Ann"]);
    expect(texts("campaign-problems")).toEqual(["Bo (+491700000002): opted out (STOP)"]);
    expect(pane.el.querySelector('[data-testid="campaigns-status"]')?.textContent).toBe("1 recipients, 1 left out");
    pane.destroy();
  });
});
