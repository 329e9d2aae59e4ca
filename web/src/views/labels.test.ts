// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import { ChatClient } from "../client";
import { flush } from "../testing";
import type { Ack, Label, Role, User } from "../types";
import type { App } from "./app";
import { errorText } from "./errors";
import { labelPatch, LabelsView } from "./labels";

const VIP: Label = { id: 7, name: "VIP", color: "#1f883d" };
const BILLING: Label = { id: 8, name: "Billing", color: "#0969da" };
const HOSTILE = "<script>window.__xss=1</script><b onmouseover=alert(1)>x</b>";

type Answer = (method: string, path: string, body?: unknown) => unknown;

/** The labels page for a user of `role`, its REST calls answered by `answer` (GET /labels: `labels`). */
function page(role: Role, labels: Label[], answer: Answer = () => ({})) {
  const me: User = { id: 1, username: "u", display_name: "U", role, kind: "human" };
  const calls: { method: string; path: string; body?: unknown }[] = [];
  const call = async <T,>(method: string, path: string, body?: unknown): Promise<T> => {
    calls.push({ method, path, body });
    if (method === "GET" && path === "/api/v1/labels") return { labels } as T;
    const r = answer(method, path, body);
    if (r instanceof Error) throw r;
    return r as T;
  };
  const client = new ChatClient({ me: () => me, emit: async <T,>() => ({ ok: true }) as Ack<T>, connected: () => true, isVisible: () => false, call });
  const app = { client, me, api: { call }, notice: () => undefined } as unknown as App;
  const view = new LabelsView(app);
  client.subscribe((c) => view.update(c));
  document.body.replaceChildren(view.el);
  return { view, calls, client };
}

const q = <T extends Element = HTMLElement>(sel: string, root: ParentNode = document) => root.querySelector<T>(`[data-testid=${sel}]`)!;
const all = (sel: string) => [...document.querySelectorAll<HTMLElement>(`[data-testid=${sel}]`)];
const rowOf = (id: number) => document.querySelector<HTMLElement>(`[data-testid=label-row][data-label="${id}"]`)!;

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flush();
}

afterEach(() => vi.restoreAllMocks());

describe("the labels page", () => {
  it("shows staff every label by name, without any control", async () => {
    page("staff", [VIP, BILLING]);
    await settle();
    expect(all("label-row").map((r) => r.textContent)).toEqual(["Billing", "VIP"]);
    expect(document.querySelectorAll("form, input, button").length).toBe(0);
    expect(q("labels-readonly").textContent).toContain("Supervisors and admins");
  });

  it("lets supervisors and admins create, rename, recolour and delete", async () => {
    for (const role of ["supervisor", "admin"] as const) {
      page(role, [VIP]);
      await settle();
      expect(q("label-create")).not.toBeNull();
      expect(q("label-edit-name", rowOf(7))).not.toBeNull();
      expect(q("label-delete", rowOf(7))).not.toBeNull();
    }
  });

  it("creates a label and lists it at once", async () => {
    const { calls } = page("supervisor", [VIP], (m, path, body) =>
      m === "POST" && path === "/api/v1/labels" ? { label: { id: 9, ...(body as object) } } : {});
    await settle();
    q<HTMLInputElement>("label-new-name").value = "  Refund ";
    q<HTMLInputElement>("label-new-color").value = "#CF222E";
    q<HTMLFormElement>("label-create").closest("form")!.requestSubmit();
    await settle();
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ name: "Refund", color: "#cf222e" });
    expect(all("label-row").map((r) => r.dataset.label)).toEqual(["9", "7"]);
    expect(q<HTMLInputElement>("label-new-name").value).toBe("");
    expect(q("label-create-error").textContent).toBe("");
  });

  it("shows a taken name beside the create form with its code, not as an alert", async () => {
    const alert = vi.spyOn(window, "alert").mockImplementation(() => undefined);
    page("supervisor", [VIP], () => new ApiError(409, "conflict", "there is already a label named 'vip'", { field: "name" }));
    await settle();
    q<HTMLInputElement>("label-new-name").value = "vip";
    q<HTMLFormElement>("label-create").closest("form")!.requestSubmit();
    await settle();
    const error = q("label-create-error");
    expect(error.textContent).toBe("Taken: there is already a label named 'vip'");
    expect(error.dataset.code).toBe("conflict");
    expect(error.closest("form, .label-create-wrap")).not.toBeNull();
    expect(alert).not.toHaveBeenCalled();
    expect(all("label-row").map((r) => r.dataset.label)).toEqual(["7"]);
  });

  it("renames with only what changed, and shows a refusal beside that label", async () => {
    let refuse = false;
    const { calls } = page("admin", [VIP, BILLING], (m, path, body) => refuse
      ? new ApiError(400, "invalid", "color must be #rrggbb", { field: "color" })
      : m === "PATCH" ? { label: { ...VIP, ...(body as object) } } : {});
    await settle();
    const row = rowOf(7);
    q<HTMLInputElement>("label-edit-name", row).value = "Gold";
    q<HTMLFormElement>("label-save", row).closest("form")!.requestSubmit();
    await settle();
    expect(calls.find((c) => c.method === "PATCH")).toEqual({ method: "PATCH", path: "/api/v1/labels/7", body: { name: "Gold" } });
    expect(q("label-chip", rowOf(7)).textContent).toBe("Gold");
    expect(all("label-row").map((r) => r.dataset.label)).toEqual(["8", "7"]); // Billing, Gold
    refuse = true;
    const again = rowOf(7);
    q<HTMLInputElement>("label-edit-color", again).value = "#000000";
    q<HTMLFormElement>("label-save", again).closest("form")!.requestSubmit();
    await settle();
    expect(q("label-row-error", again).textContent).toBe("Not valid: color must be #rrggbb");
    expect(q("label-row-error", again).dataset.code).toBe("invalid");
    expect(q("label-row-error", rowOf(8)).textContent).toBe("");
  });

  it("deletes a label and drops its row", async () => {
    const { calls } = page("supervisor", [VIP, BILLING], () => undefined);
    await settle();
    q<HTMLButtonElement>("label-delete", rowOf(8)).click();
    await settle();
    expect(calls.some((c) => c.method === "DELETE" && c.path === "/api/v1/labels/8")).toBe(true);
    expect(all("label-row").map((r) => r.dataset.label)).toEqual(["7"]);
  });

  it("follows labels created, changed and deleted by others", async () => {
    const { client } = page("staff", [VIP]);
    await settle();
    client.onLabel(BILLING);
    client.onLabel({ ...VIP, color: "#cf222e" });
    expect(all("label-row").map((r) => r.dataset.label)).toEqual(["8", "7"]);
    expect(q("label-chip", rowOf(7)).style.getPropertyValue("--label")).toBe("#cf222e");
    client.onLabelDeleted(8);
    expect(all("label-row").map((r) => r.dataset.label)).toEqual(["7"]);
  });

  it("shows a hostile label name as text, in the chip and the edit box", async () => {
    page("supervisor", [{ id: 3, name: HOSTILE, color: "#1f883d" }]);
    await settle();
    expect(q("label-chip").textContent).toBe(HOSTILE);
    expect(q<HTMLInputElement>("label-edit-name").value).toBe(HOSTILE);
    expect(document.querySelectorAll("script, b, [onmouseover]").length).toBe(0);
  });
});

describe("label forms", () => {
  it("patch only what changed, colours in lowercase", () => {
    expect(labelPatch(VIP, "VIP", "#1F883D")).toBeNull();
    expect(labelPatch(VIP, " Gold ", "#1f883d")).toEqual({ name: "Gold" });
    expect(labelPatch(VIP, "", "#CF222E")).toEqual({ color: "#cf222e" });
  });

  it("name the kind of refusal from the stable code", () => {
    expect(errorText(new ApiError(409, "conflict", "taken"))).toEqual({ code: "conflict", text: "Taken: taken" });
    expect(errorText(new ApiError(403, "forbidden", "only supervisors"))).toEqual({ code: "forbidden", text: "Not allowed: only supervisors" });
    expect(errorText(new ApiError(0, "unavailable", "The server did not answer."))).toEqual({ code: "unavailable", text: "The server did not answer." });
  });
});
