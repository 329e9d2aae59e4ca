// Tiny DOM helpers. Text from users only ever becomes text nodes (`append(string)`,
// `textContent`): there is no innerHTML anywhere in this app.

export type Child = Node | string | number | null | undefined | false;
type Handler = (e: Event) => void;
export type Attrs = Record<string, string | number | boolean | Handler | undefined | null>;

/** `h("button", {testid: "send", onclick: fn, "aria-label": "Send"}, "Send")`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "testid") el.dataset.testid = String(v);
    else if (k === "class") el.className = String(v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: readonly Child[]): void {
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === "number" ? String(c) : c);
}

export function clear(el: Element): void {
  el.replaceChildren();
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: Child[]): void {
  clear(el);
  append(el, children);
}

/** "14:05" today, "Mon 14:05" this week, "2026-11-02 14:05" before. */
export function time(iso: string | null, now = new Date()): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const days = (now.getTime() - d.getTime()) / 86_400_000;
  if (d.toDateString() === now.toDateString()) return hm;
  if (days < 6) return `${d.toLocaleDateString([], { weekday: "short" })} ${hm}`;
  return `${d.toISOString().slice(0, 10)} ${hm}`;
}

/** Shows an error or notice in a live region. */
export function say(el: Element, text: string): void {
  el.textContent = text;
}

/** A small padlock drawn as SVG (emoji fonts are not everywhere). */
export function lockIcon(): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "12");
  svg.setAttribute("height", "12");
  svg.setAttribute("aria-hidden", "true");
  const body = document.createElementNS(ns, "rect");
  for (const [k, v] of Object.entries({ x: "3", y: "7", width: "10", height: "8", rx: "1.5", fill: "currentColor" })) body.setAttribute(k, v);
  const shackle = document.createElementNS(ns, "path");
  for (const [k, v] of Object.entries({ d: "M5 7V5a3 3 0 0 1 6 0v2", fill: "none", stroke: "currentColor", "stroke-width": "1.6" })) shackle.setAttribute(k, v);
  svg.append(shackle, body);
  return svg;
}

/** One entry of a KeyedList: equal `sig` = same look, so the element is kept. `inPlace`: when the
 * look changes, the kept element is made to look like the new one (`morph`) instead of replaced;
 * for items with no listeners of their own that update while a user clicks them (a busy room's
 * unread count), since a click pressed on an element that is gone before the release is lost. */
export interface Item {
  key: string;
  sig: string;
  make: () => HTMLElement;
  inPlace?: boolean;
}

/**
 * Makes `old` look like `fresh` and returns the element that stays: `old` itself, its attributes
 * and children made equal to `fresh`'s, the children that are the same kind of node as the new
 * ones at their place kept and updated the same way; a child of another tag is replaced. `old`'s
 * listeners stay as they were, so only for elements whose listeners do not depend on what
 * changed. Returns `fresh` (in `old`'s place) when the tags differ.
 */
export function morph(old: Element, fresh: Element): Element {
  if (old.tagName !== fresh.tagName || old.namespaceURI !== fresh.namespaceURI) {
    old.replaceWith(fresh);
    return fresh;
  }
  for (const a of [...old.attributes]) if (!fresh.hasAttribute(a.name)) old.removeAttribute(a.name);
  for (const a of fresh.attributes) if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
  const want = [...fresh.childNodes];
  const have = [...old.childNodes];
  want.forEach((w, i) => {
    const o = have[i];
    if (o === undefined) old.append(w);
    else if (o instanceof Element && w instanceof Element) morph(o, w);
    else if (o.nodeType === Node.TEXT_NODE && w.nodeType === Node.TEXT_NODE) {
      if (o.nodeValue !== w.nodeValue) o.nodeValue = w.nodeValue;
    } else o.replaceWith(w);
  });
  for (const o of have.slice(want.length)) o.remove();
  return old;
}

/**
 * Renders items into `root` by key, reusing the elements whose signature did not change (and so
 * their focus, selection and any open edit box), moving them into the new order.
 */
export class KeyedList {
  private readonly els = new Map<string, { sig: string; el: HTMLElement }>();

  constructor(readonly root: HTMLElement) {}

  render(items: readonly Item[]): void {
    const keep = new Set<string>();
    let cursor: ChildNode | null = this.root.firstChild;
    for (const item of items) {
      keep.add(item.key);
      let entry = this.els.get(item.key);
      if (!entry || entry.sig !== item.sig) {
        let el = item.make();
        if (entry) {
          // the new element takes the old one's place, or the old one is made to look like it
          if (item.inPlace) el = morph(entry.el, el) as HTMLElement;
          else entry.el.replaceWith(el);
          if (entry.el === cursor) cursor = el;
        }
        entry = { sig: item.sig, el };
        this.els.set(item.key, entry);
      }
      if (entry.el !== cursor) this.root.insertBefore(entry.el, cursor);
      else cursor = cursor.nextSibling;
    }
    for (const [key, entry] of this.els) {
      if (!keep.has(key)) {
        entry.el.remove();
        this.els.delete(key);
      }
    }
  }
}

