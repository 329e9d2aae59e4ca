// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from "vitest";
import { MAX_ATTACHMENTS } from "../store/uploads";
import { FakeXHR, flush, uploaded } from "../testing";
import { startUpload } from "../uploads";
import { FilePicker } from "./files";

const file = (name: string, size = 1000, type = "image/png") => new File([new Uint8Array(size)], name, { type });

function picker() {
  let changes = 0;
  const auth = { token: async () => "a1", refresh: async () => false };
  const p = new FilePicker((f, onProgress) => startUpload(f, auth, { onProgress, xhr: () => new FakeXHR() as unknown as XMLHttpRequest }), () => changes++);
  document.body.replaceChildren(p.el, p.button, p.input);
  return { p, changes: () => changes };
}

const chips = () => [...document.querySelectorAll<HTMLElement>("[data-testid=chip]")];

async function requests(n: number): Promise<FakeXHR[]> {
  for (let i = 0; i < 10 && FakeXHR.all.length < n; i++) await flush();
  return FakeXHR.all;
}

beforeEach(() => {
  FakeXHR.all = [];
});

describe("the composer's file chips", () => {
  it("show name, size and a progress bar that follows the upload, then the finished state", async () => {
    const { p } = picker();
    p.add([file("cat.png", 2048)]);
    const [req] = await requests(1);
    const chip = chips()[0];
    expect(chip.dataset.state).toBe("uploading");
    expect(chip.querySelector(".chip-name")?.textContent).toBe("cat.png");
    expect(chip.textContent).toContain("2 KB");
    req.progress(512, 2048);
    const bar = chip.querySelector<HTMLProgressElement>("[data-testid=chip-progress]")!;
    expect(bar.value / bar.max).toBe(0.25);
    expect(chips()[0]).toBe(chip); // progress updates the bar in place, the chip (and its focus) stays
    expect(p.hasReady()).toBe(false);
    req.respond(201, uploaded("u1", "cat.png"));
    await flush();
    expect(chips()[0].dataset.state).toBe("done");
    expect(chips()[0].querySelector("[data-testid=chip-progress]")).toBeNull();
    expect(p.hasReady()).toBe(true);
  });

  it("cancel aborts the upload in flight and removes the chip", async () => {
    const { p } = picker();
    p.add([file("big.mov", 10_000_000, "video/quicktime")]);
    const [req] = await requests(1);
    req.progress(1000, 10_000_000);
    chips()[0].querySelector<HTMLButtonElement>("[data-testid=chip-cancel]")!.click();
    expect(req.aborted).toBe(true);
    await flush();
    expect(chips()).toHaveLength(0);
    expect(p.take()).toEqual([]);
  });

  it("show a 413 or 415 in place on the chip with the server's message, and send nothing for it", async () => {
    const { p } = picker();
    p.add([file("huge.zip", 5000, "application/zip"), file("tool.exe", 10, "application/x-msdownload")]);
    const [big, exe] = await requests(2);
    big.respond(413, { error: { code: "too_large", message: "Files can be at most 25 MB." } });
    exe.respond(415, { error: { code: "unsupported_type", message: "This type of file is not allowed: application/x-msdownload." } });
    await flush();
    const [c1, c2] = chips();
    expect(c1.dataset.state).toBe("error");
    expect(c1.querySelector("[data-testid=chip-error]")?.textContent).toBe("Files can be at most 25 MB.");
    expect(c1.querySelector("[data-testid=chip-error]")?.getAttribute("data-code")).toBe("too_large");
    expect(c2.querySelector("[data-testid=chip-error]")?.textContent).toBe("This type of file is not allowed: application/x-msdownload.");
    expect(c2.querySelector("[data-testid=chip-retry]")).toBeNull(); // the same file would be refused again
    expect(p.hasReady()).toBe(false);
  });

  it("refuse files past the limit of 10 with a clear message", async () => {
    const { p } = picker();
    p.add(Array.from({ length: MAX_ATTACHMENTS + 2 }, (_, i) => file(`f${i}.png`)));
    expect(chips()).toHaveLength(MAX_ATTACHMENTS);
    expect(document.querySelector("[data-testid=upload-limit]")?.textContent).toBe("A message can carry at most 10 files; 2 files were not added.");
    p.add([file("one-more.png")]);
    expect(chips()).toHaveLength(MAX_ATTACHMENTS);
    expect(document.querySelector("[data-testid=upload-limit]")?.textContent).toContain("1 file was not added");
    await requests(MAX_ATTACHMENTS);
    expect(FakeXHR.all).toHaveLength(MAX_ATTACHMENTS);
  });

  it("take hands over the finished uploads and clears their chips; one still uploading stays", async () => {
    const { p } = picker();
    p.add([file("a.png"), file("b.png"), file("c.png")]);
    const [a, b] = await requests(3);
    a.respond(201, uploaded("ua", "a.png"));
    b.respond(201, uploaded("ub", "b.png"));
    await flush();
    expect(p.take().map((u) => u.id)).toEqual(["ua", "ub"]);
    expect(chips().map((c) => c.dataset.state)).toEqual(["uploading"]);
  });

  it("the file input and the paperclip add files (several at once)", async () => {
    const { p } = picker();
    let opened = 0;
    p.input.click = () => void opened++;
    document.querySelector<HTMLButtonElement>("[data-testid=attach]")!.click();
    expect(opened).toBe(1);
    expect(p.input.multiple).toBe(true);
    Object.defineProperty(p.input, "files", { value: [file("x.png"), file("y.png")], configurable: true });
    p.input.dispatchEvent(new Event("change"));
    expect(chips().map((c) => c.querySelector(".chip-name")?.textContent)).toEqual(["x.png", "y.png"]);
  });

  it("a pasted image and dropped files are attached", () => {
    const { p } = picker();
    const input = document.createElement("textarea");
    const zone = document.createElement("section");
    p.acceptPaste(input);
    p.acceptDrops(zone);
    const paste = new Event("paste", { cancelable: true }) as ClipboardEvent;
    Object.defineProperty(paste, "clipboardData", { value: { files: [file("image.png")], items: [], getData: () => "" } });
    input.dispatchEvent(paste);
    expect(paste.defaultPrevented).toBe(true);
    expect(chips()[0].querySelector(".chip-name")?.textContent).toMatch(/^pasted-.*\.png$/);
    const drop = new Event("drop", { cancelable: true }) as DragEvent;
    Object.defineProperty(drop, "dataTransfer", { value: { files: [file("dropped.pdf", 10, "application/pdf")], types: ["Files"] } });
    zone.dispatchEvent(drop);
    expect(drop.defaultPrevented).toBe(true);
    expect(chips()).toHaveLength(2);
  });
});
