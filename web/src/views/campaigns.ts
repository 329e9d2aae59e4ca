// The campaigns page (supervisors and admins): create a campaign from a number's approved
// template, upload the CSV (phone + the variable columns), see the preview and the problems
// the server found with their line numbers, start, pause, resume, cancel, watch the progress
// bar (`campaign:progress`, the highest seq wins), failures grouped by Meta's error code, and
// export the results as CSV.
import { ApiError } from "../api";
import { fill, h, say } from "../dom";
import type { CampaignProgress, Label } from "../types";
import type { App } from "./app";

export interface Campaign {
  id: number;
  account_id: number;
  name: string;
  template: string;
  language: string;
  variables: string[];
  status: CampaignProgress["status"];
  pause_reason: string | null;
}

interface Template { name: string; language: string; status: string; param_counts: { header: number; body: number } }
interface Account { id: number; display_phone: string; name?: string }
interface Problem { line: number; column: string | null; message: string }
interface Preview { phone: string; text: string }
interface LeftOut { contact_id: number; name: string; phone: string | null; reason: string; variable: string | null }
interface Failure { code: number | null; title: string | null; count: number }
type Counts = Omit<CampaignProgress, "campaign_id" | "seq" | "status" | "pause_reason">;

/** Share of recipients that are done (sent, failed, skipped or unknown), 0..100. */
export function percentDone(c: Pick<Counts, "total" | "sent" | "failed" | "skipped" | "unknown">): number {
  if (c.total <= 0) return 0;
  const done = c.sent + c.skipped + c.unknown + c.failed;
  return Math.min(100, Math.round((done / c.total) * 100));
}

/** Keeps the newest event per campaign: events carry a growing seq. */
export function newer(current: CampaignProgress | undefined, next: CampaignProgress): boolean {
  return current === undefined || next.seq > current.seq;
}

/** The server's CSV problems as readable lines. */
export function problemLines(details: Record<string, unknown> | undefined): string[] {
  const problems = (details?.problems ?? []) as Problem[];
  return problems.map((p) => `line ${p.line}${p.column ? ` (${p.column})` : ""}: ${p.message}`);
}

function previewItems(items: Preview[]): HTMLElement[] {
  return items.map((p) => h("li", {}, h("strong", {}, p.phone), " ", p.text));
}

/** What fills a variable from a contact when nothing else is said (as the server defaults). */
export function defaultSource(column: string): string {
  return ["name", "email", "phone"].includes(column) ? `{{contact.${column}}}` : `{{contact.attributes.${column}}}`;
}

const LEFT_OUT_REASONS: Record<string, string> = { no_phone: "no phone number", opted_out: "opted out (STOP)",
  duplicate_phone: "same phone as another contact", empty_value: "empty value", too_long: "value too long" };

/** The contacts a label upload left out, as readable lines. */
export function leftOutLines(items: LeftOut[], count: number): string[] {
  const lines = items.map((x) => `${x.name || `contact ${x.contact_id}`}${x.phone ? ` (${x.phone})` : ""}: `
    + `${LEFT_OUT_REASONS[x.reason] ?? x.reason}${x.variable ? ` for ${x.variable}` : ""}`);
  if (count > items.length) lines.push(`… and ${count - items.length} more`);
  return lines;
}

/** Which buttons a campaign in `status` offers. */
export function actionsFor(status: Campaign["status"]): string[] {
  return { draft: ["start", "cancel", "delete"], running: ["pause", "cancel"], paused: ["resume", "cancel", "delete"],
    completed: ["delete"], cancelled: ["delete"] }[status];
}

export function campaignsPane(app: App): { el: HTMLElement; destroy: () => void } {
  const status = h("p", { class: "notice-inline", testid: "campaigns-status", role: "status" });
  const list = h("ul", { testid: "campaign-list", class: "campaign-list" });
  const detail = h("section", { testid: "campaign-detail", "aria-live": "polite" });
  const latest = new Map<number, CampaignProgress>();
  // the last upload's preview per campaign: the page re-renders after an upload, and the preview
  // must survive it (it is the one place the sender sees the messages as they will read)
  const previews = new Map<number, Preview[]>();
  let shown: Campaign | null = null;
  const listed = new Map<number, Campaign["status"]>();  // the status each list entry shows
  const fail = (err: unknown) => say(status, (err as Error).message);

  const loadList = async () => {
    try {
      const r = await app.api.call<{ campaigns: Campaign[] }>("GET", "/api/v1/campaigns?limit=50");
      listed.clear();
      for (const c of r.campaigns) listed.set(c.id, c.status);
      fill(list, ...r.campaigns.map((c) => h("li", {}, h("button", { type: "button", testid: "campaign-open",
        onclick: () => void show(c.id) }, `${c.name} — ${c.status}`))));
    } catch (err) { fail(err); }
  };

  const progressView = (c: Campaign, counts: Counts) => {
    const pct = percentDone(counts);
    return h("div", { testid: "campaign-progress" },
      h("progress", { max: 100, value: pct, testid: "campaign-bar", "aria-label": "Campaign progress" }),
      h("span", { testid: "campaign-percent" }, ` ${pct} %`),
      h("p", { testid: "campaign-counts" }, ["queued", "sent", "delivered", "read", "failed", "replied", "skipped", "unknown"]
        .map((k) => `${k} ${counts[k as keyof Counts]}`).join(" · ")),
      c.pause_reason ? h("p", { testid: "campaign-pause-reason" }, `Paused: ${c.pause_reason}`) : null);
  };

  const show = async (id: number) => {
    try {
      const [r, stats] = await Promise.all([
        app.api.call<{ campaign: Campaign; counts: Counts }>("GET", `/api/v1/campaigns/${id}`),
        app.api.call<{ failures: Failure[] }>("GET", `/api/v1/campaigns/${id}/stats`)]);
      shown = r.campaign;
      render(r.campaign, r.counts, stats.failures);
    } catch (err) { fail(err); }
  };

  const render = (c: Campaign, counts: Counts, failures: Failure[]) => {
    const buttons = actionsFor(c.status).map((a) => h("button", { type: "button", testid: `campaign-${a}`,
      onclick: () => void act(c, a) }, a[0].toUpperCase() + a.slice(1)));
    const file = h("input", { type: "file", accept: ".csv,text/csv", testid: "campaign-csv", "aria-label": "Recipients CSV" });
    const preview = h("ol", { testid: "campaign-preview" }, ...previewItems(previews.get(c.id) ?? []));
    const problems = h("ul", { testid: "campaign-problems" });
    file.addEventListener("change", () => void upload(c, file, preview, problems));
    fill(detail, h("h3", {}, `${c.name} (${c.template}, ${c.language})`),
      h("p", {}, `Columns for the template's parameters, in order: ${c.variables.join(", ") || "none"}`),
      progressView(c, counts), h("div", { class: "row" }, ...buttons),
      c.status === "draft" ? h("label", {}, "Recipients (CSV with a phone column): ", file) : null,
      c.status === "draft" ? labelForm(c, preview, problems) : null, problems, preview,
      failures.length ? h("table", { testid: "campaign-failures" }, h("thead", {}, h("tr", {}, h("th", {}, "Code"), h("th", {}, "Reason"), h("th", {}, "Recipients"))),
        h("tbody", {}, ...failures.map((f) => h("tr", {}, h("td", {}, String(f.code ?? "")), h("td", {}, f.title ?? ""), h("td", {}, String(f.count)))))) : null,
      h("button", { type: "button", testid: "campaign-export", onclick: () => void exportCsv(c) }, "Export results (CSV)"));
  };

  const upload = async (c: Campaign, input: HTMLInputElement, preview: HTMLElement, problems: HTMLElement) => {
    const f = input.files?.[0];
    if (!f) return;
    fill(problems);
    previews.delete(c.id);
    fill(preview);
    try {
      const r = await app.api.callBody<{ recipients: number; preview: Preview[] }>(
        "PUT", `/api/v1/campaigns/${c.id}/recipients`, f, "text/csv");
      say(status, `${r.recipients} recipients`);
      previews.set(c.id, r.preview);
      fill(preview, ...previewItems(r.preview));
      await show(c.id);
    } catch (err) {
      fail(err);
      if (err instanceof ApiError) fill(problems, ...problemLines(err.details).map((t) => h("li", {}, t)));
    }
  };

  const labelForm = (c: Campaign, preview: HTMLElement, problems: HTMLElement): HTMLElement => {
    const pick = h("select", { testid: "campaign-label", "aria-label": "Contact label" });
    const sources = c.variables.map((v) => h("input", { value: defaultSource(v), testid: "campaign-label-variable",
      "aria-label": `Fills ${v}` }));
    void app.api.call<{ labels: Label[] }>("GET", "/api/v1/labels").then((r) =>
      fill(pick, ...r.labels.map((l) => h("option", { value: String(l.id) }, l.name)))).catch(fail);
    const use = async () => {
      fill(problems);
      previews.delete(c.id);
      fill(preview);
      const variables = Object.fromEntries(c.variables.map((v, i) => [v, sources[i].value.trim()]).filter(([, t]) => t));
      try {
        const r = await app.api.call<{ recipients: number; preview: Preview[]; left_out: LeftOut[]; left_out_count: number }>(
          "PUT", `/api/v1/campaigns/${c.id}/recipients/from-label`, { label_id: Number(pick.value), variables });
        say(status, `${r.recipients} recipients` + (r.left_out_count ? `, ${r.left_out_count} left out` : ""));
        previews.set(c.id, r.preview);
        await show(c.id);
        const list = detail.querySelector('[data-testid="campaign-problems"]');
        if (list) fill(list as HTMLElement, ...leftOutLines(r.left_out, r.left_out_count).map((t) => h("li", {}, t)));
      } catch (err) {
        fail(err);
        if (err instanceof ApiError && err.details?.left_out) {
          fill(problems, ...leftOutLines(err.details.left_out as LeftOut[], Number(err.details.left_out_count))
            .map((t) => h("li", {}, t)));
        }
      }
    };
    return h("div", { class: "row", testid: "campaign-from-label" }, h("label", {}, "Or the contacts with the label ", pick),
      ...c.variables.map((v, i) => h("label", {}, ` ${v} = `, sources[i])),
      h("button", { type: "button", testid: "campaign-label-use", onclick: () => void use() }, "Use these contacts"));
  };

  const act = async (c: Campaign, action: string) => {
    try {
      if (action === "delete") await app.api.call("DELETE", `/api/v1/campaigns/${c.id}`);
      else await app.api.call("POST", `/api/v1/campaigns/${c.id}/${action}`);
      if (action === "delete") { fill(detail); shown = null; } else await show(c.id);
      await loadList();
    } catch (err) { fail(err); }
  };

  const exportCsv = async (c: Campaign) => {
    try {
      const r = await app.api.fetchRaw(`/api/v1/campaigns/${c.id}/export`);
      const url = URL.createObjectURL(await r.blob());
      const a = h("a", { href: url, download: `campaign-${c.id}.csv` });
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) { fail(err); }
  };

  const onProgress = (e: CampaignProgress) => {
    if (!newer(latest.get(e.campaign_id), e)) return;
    latest.set(e.campaign_id, e);
    // a campaign that completes (or is paused by the sender) changes status with no click here
    if (listed.has(e.campaign_id) && listed.get(e.campaign_id) !== e.status) {
      listed.set(e.campaign_id, e.status);
      void loadList();
    }
    if (shown?.id !== e.campaign_id) return;
    const bar = detail.querySelector('[data-testid="campaign-progress"]');
    const c = { ...shown, status: e.status, pause_reason: e.pause_reason };
    if (bar) bar.replaceWith(progressView(c, e));
    if (e.status !== shown.status) void show(e.campaign_id);
  };
  app.campaignListeners.add(onProgress);

  const form = createForm(app, status, async (c) => { await loadList(); await show(c.id); });
  void loadList();
  const el = h("section", { class: "campaigns", "aria-label": "Campaigns" }, h("h2", {}, "Campaigns"), status, form, list, detail);
  return { el, destroy: () => { app.campaignListeners.delete(onProgress); } };
}

function createForm(app: App, status: HTMLElement, created: (c: Campaign) => Promise<void>): HTMLElement {
  // the number's id: admins pick from the list; supervisors (who cannot list numbers) type it
  const account = h("input", { type: "number", min: 1, testid: "campaign-account", "aria-label": "WhatsApp number id",
    list: "campaign-accounts", placeholder: "number id" });
  const known = h("datalist", { id: "campaign-accounts" });
  const template = h("select", { testid: "campaign-template", "aria-label": "Template" });
  const name = h("input", { testid: "campaign-name", placeholder: "Campaign name", "aria-label": "Campaign name", required: true });
  const variables = h("input", { testid: "campaign-variables", placeholder: "CSV columns for the parameters, comma-separated",
    "aria-label": "Variable columns" });
  const hint = h("span", { testid: "campaign-template-hint" });
  let templates: Template[] = [];
  const loadTemplates = async () => {
    try {
      const r = await app.api.call<{ templates: Template[] }>("GET", `/api/v1/wa/accounts/${account.value}/templates`);
      templates = r.templates.filter((t) => t.status === "APPROVED");
      fill(template, ...templates.map((t, i) => h("option", { value: String(i) }, `${t.name} (${t.language})`)));
      describe();
    } catch (err) { say(status, (err as Error).message); }
  };
  const describe = () => {
    const t = templates[Number(template.value)];
    say(hint, t ? ` takes ${t.param_counts.header + t.param_counts.body} parameter(s)` : " no approved template: sync first");
  };
  template.addEventListener("change", describe);
  account.addEventListener("change", () => void loadTemplates());
  if (app.me.role === "admin") {
    void app.api.call<{ accounts: Account[] }>("GET", "/api/v1/admin/wa/accounts").then((r) => {
      fill(known, ...r.accounts.map((a) => h("option", { value: String(a.id) }, a.name || a.display_phone)));
      if (r.accounts.length) {
        account.value = String(r.accounts[0].id);
        void loadTemplates();
      }
    }).catch((err: Error) => say(status, err.message));
  }
  const sync = h("button", { type: "button", testid: "campaign-sync", onclick: () => void (async () => {
    try {
      await app.api.call("POST", `/api/v1/wa/accounts/${account.value}/templates/sync`, {});
      await loadTemplates();
    } catch (err) { say(status, (err as Error).message); }
  })() }, "Sync templates");
  return h("form", { class: "row", testid: "campaign-create", "aria-label": "New campaign", onsubmit: (e) => {
    e.preventDefault();
    const t = templates[Number(template.value)];
    if (!t) return say(status, "Pick an approved template");
    const body = { account_id: Number(account.value), name: name.value.trim(), template: t.name, language: t.language,
      variables: variables.value.split(",").map((v) => v.trim()).filter(Boolean) };
    void app.api.call<{ campaign: Campaign }>("POST", "/api/v1/campaigns", body)
      .then((r) => created(r.campaign)).catch((err: Error) => say(status, err.message));
  } }, account, known, sync, template, hint, name, variables, h("button", { type: "submit", testid: "campaign-submit" }, "Create"));
}
