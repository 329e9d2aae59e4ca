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
    if (typeof v === "function") on(el, k.slice(2), v);
    else if (k === "testid") el.dataset.testid = String(v);
    else if (k === "class") el.className = String(v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** Each element's listeners added by `h` or `on`: one dispatcher per event type on the element,
 * calling the handler its table holds now, so `morph` can hand a kept element the listeners of
 * the element it was made to look like. */
const listeners = new WeakMap<Element, { handlers: Map<string, Handler>; bound: Set<string> }>();

function listenerTable(el: Element): { handlers: Map<string, Handler>; bound: Set<string> } {
  let table = listeners.get(el);
  if (!table) listeners.set(el, (table = { handlers: new Map(), bound: new Set() }));
  return table;
}

function bind(el: Element, table: { bound: Set<string> }, type: string): void {
  if (table.bound.has(type)) return;
  table.bound.add(type);
  el.addEventListener(type, (e) => listeners.get(el)?.handlers.get(type)?.(e));
}

/** `el.addEventListener(type, fn)`, one handler per type, that `morph` moves with the look:
 * for elements that a keyed list may update in place. */
export function on<E extends Event = Event>(el: Element, type: string, fn: (e: E) => void): void {
  const table = listenerTable(el);
  table.handlers.set(type, fn as Handler);
  bind(el, table, type);
}

/** `old` answers events with `fresh`'s handlers from now on (a type only `old` had goes quiet). */
function moveListeners(old: Element, fresh: Element): void {
  const want = listeners.get(fresh);
  const have = listeners.get(old);
  if (!want && !have) return;
  const table = listenerTable(old);
  table.handlers = new Map(want?.handlers ?? []);
  for (const type of table.handlers.keys()) bind(old, table, type);
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
 * look changes, the kept element is made to look like the new one (`morph`) instead of replaced,
 * for items that update while a user works in them: a click pressed on an element that is gone
 * before the release is lost (a busy room's unread count), and so is what was typed in a box
 * that is rebuilt (a message being edited when someone reads it). Their listeners must be added
 * by `h` or `on`, which `morph` moves. */
export interface Item {
  key: string;
  sig: string;
  make: () => HTMLElement;
  inPlace?: boolean;
}

/** Whether `old` may be kept for `fresh`: text for text; an element for one of the same tag and
 * the same `data-*` attributes (its identity here: `data-testid`, `data-emoji`, ...), so a
 * button a user is pressing never becomes another button. */
function sameKind(old: Node, fresh: Node): boolean {
  if (old.nodeType !== fresh.nodeType) return false;
  if (!(old instanceof Element) || !(fresh instanceof Element)) return old.nodeType === Node.TEXT_NODE;
  if (old.tagName !== fresh.tagName || old.namespaceURI !== fresh.namespaceURI) return false;
  const data = (el: Element) => [...el.attributes].filter((a) => a.name.startsWith("data-")).map((a) => `${a.name}=${a.value}`).join("\u0000");
  return data(old) === data(fresh);
}

/**
 * Makes `old` look like `fresh` and returns the element that stays: `old` itself, its attributes
 * made equal to `fresh`'s, and its children matched in order to `fresh`'s: a child of the same
 * kind (`sameKind`) further on is kept and updated the same way, the children between are
 * removed, a new child with no match goes in. Each kept element takes the listeners its
 * counterpart got from `h` or `on` (those added with `addEventListener` directly stay as they
 * were). What the user changed and no attribute holds stays too: focus, the text typed in a
 * field (its `value`), the caret, a playing video. Returns `fresh` (in `old`'s place) when the
 * tags differ. A listener that reads an element must take it from the event (`currentTarget`),
 * not from the closure: the element in the closure may be the fresh one, never shown.
 */
export function morph(old: Element, fresh: Element): Element {
  if (old.tagName !== fresh.tagName || old.namespaceURI !== fresh.namespaceURI) {
    old.replaceWith(fresh);
    return fresh;
  }
  for (const a of [...old.attributes]) if (!fresh.hasAttribute(a.name)) old.removeAttribute(a.name);
  for (const a of fresh.attributes) if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
  moveListeners(old, fresh);
  const have = [...old.childNodes];
  let next = 0;
  const result = [...fresh.childNodes].map((w) => {
    for (let j = next; j < have.length; j++) {
      const o = have[j];
      if (!sameKind(o, w)) continue;
      next = j + 1;
      if (o instanceof Element) morph(o, w as Element);
      else if (o.nodeValue !== w.nodeValue) o.nodeValue = w.nodeValue;
      return o;
    }
    return w;
  });
  const kept = new Set(result);
  for (const o of have) if (!kept.has(o)) o.remove();
  // the kept children are in order already: only new ones go in between them
  result.forEach((n, i) => { if (old.childNodes[i] !== n) old.insertBefore(n, old.childNodes[i] ?? null); });
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

