// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { WaSessionEvent } from "../types";
import type { App } from "./app";
import { sessionsSection } from "./sessions";

function fakeApp(sessions: object[]) {
  const calls: [string, string, unknown][] = [];
  const listeners = new Set<(e: WaSessionEvent) => void>();
  const app = {
    waSessionListeners: listeners,
    api: {
      call: async (method: string, path: string, body?: unknown) => {
        calls.push([method, path, body]);
        if (path.endsWith("/pairing-code")) return { pairing_code: "ABCD-EFGH" };
        return { sessions };
      },
    },
  } as unknown as App;
  return { app, calls, listeners };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("the WhatsApp Web sessions admin section", () => {
  it("lists sessions, draws the QR code live and asks for a pairing code", async () => {
    const { app, calls, listeners } = fakeApp([{ id: 3, name: "Desk", status: "disconnected", jid: null, phone: null, last_error: "no route to WhatsApp" }]);
    const section = sessionsSection(app, document.createElement("p"));
    document.body.append(section);
    await flush();
    expect(section.querySelector("[data-testid=wa-session-status]")?.textContent).toBe("disconnected");
    expect(section.querySelector("[data-testid=wa-session-error]")?.textContent).toContain("no route to WhatsApp");
    for (const fn of listeners) fn({ session_id: 3, kind: "qr", status: "qr", reason: null, qr: "2@x", qr_svg: "<svg></svg>" });
    const img = section.querySelector<HTMLImageElement>("[data-testid=wa-session-qr-img]");
    expect(img?.src).toBe(`data:image/svg+xml;base64,${btoa("<svg></svg>")}`);
    expect(section.querySelector("[data-testid=wa-session-status]")?.textContent).toBe("scan the QR code");
    section.querySelector<HTMLInputElement>("[data-testid=wa-session-phone]")!.value = "+49 151 12345678";
    section.querySelector<HTMLFormElement>("form[aria-label='Link with a pairing code']")!.requestSubmit();
    await flush();
    expect(calls).toContainEqual(["POST", "/api/v1/whatsapp/sessions/3/pairing-code", { phone: "+49 151 12345678" }]);
    expect(section.querySelector("[data-testid=wa-session-code]")?.textContent).toContain("ABCD-EFGH");
  });
});
