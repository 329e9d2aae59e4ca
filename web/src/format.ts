// Message bodies: a small Markdown subset, links, emoji shortcodes and mentions, built as DOM
// nodes without ever parsing HTML.
//
// markdown-it (pinned in package.json) parses the body with raw HTML off (`html: false`: a
// `<b>` stays the text "<b>") and only these rules on: paragraphs, line breaks, bold, italic,
// strikethrough, inline code, code blocks (indented and fenced), quotes, lists, links and bare
// URLs (linkify). We never use its HTML renderer: its token stream is walked here and each
// token becomes an element from a fixed table or a text node, so no markup can come from a
// message, whatever markdown-it lets through. Links are checked again here: only absolute
// http, https and mailto URLs become `<a href>` (with rel="noopener noreferrer" and
// target=_blank); any other link (javascript:, data:, vbscript:, relative) is rendered as its
// text. Emoji shortcodes and @mentions are applied to text outside code and links.
import MarkdownIt, { type Token } from "markdown-it";

const md = new MarkdownIt("zero", { html: false, linkify: true, breaks: true, typographer: false })
  .enable(["paragraph", "newline", "escape", "backticks", "emphasis", "strikethrough", "code", "fence",
    "blockquote", "list", "link", "autolink", "linkify"]);
// linkify: only URLs with a scheme or www. ("example.com" in a sentence stays text)
md.linkify.set({ fuzzyLink: false, fuzzyEmail: false });

const TAGS: Record<string, keyof HTMLElementTagNameMap> = {
  paragraph: "p", blockquote: "blockquote", bullet_list: "ul", ordered_list: "ol", list_item: "li",
  strong: "strong", em: "em", s: "s",
};

const SAFE_SCHEMES = new Set(["http:", "https:", "mailto:"]);

/** The URL when it is an absolute http, https or mailto URL; null for anything else. */
export function safeHref(raw: string | null | undefined): string | null {
  if (!raw) return null;
  // control characters and whitespace inside a scheme ("java\tscript:") are refused outright
  if (/[\u0000-\u0020\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]/.test(raw.trim())) return null;
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return null; // relative or malformed
  }
  return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
}

/** A shortcode table: the common ones, not all of Unicode. */
export const EMOJI: Record<string, string> = {
  smile: "😄", smiley: "😃", grin: "😁", laughing: "😆", joy: "😂", wink: "😉", blush: "😊", heart_eyes: "😍",
  sweat_smile: "😅", thinking: "🤔", neutral_face: "😐", confused: "😕", cry: "😢", sob: "😭", angry: "😠",
  scream: "😱", sunglasses: "😎", upside_down: "🙃", roll_eyes: "🙄", sleeping: "😴", wave: "👋", clap: "👏",
  "+1": "👍", thumbsup: "👍", "-1": "👎", thumbsdown: "👎", ok_hand: "👌", pray: "🙏", muscle: "💪", eyes: "👀",
  raised_hands: "🙌", point_up: "☝️", heart: "❤️", broken_heart: "💔", fire: "🔥", star: "⭐", sparkles: "✨",
  tada: "🎉", rocket: "🚀", check: "✅", white_check_mark: "✅", x: "❌", warning: "⚠️", question: "❓",
  exclamation: "❗", bulb: "💡", memo: "📝", calendar: "📅", coffee: "☕", pizza: "🍕", beer: "🍺", bug: "🐛",
  lock: "🔒", key: "🔑", zap: "⚡", 100: "💯", hourglass: "⌛", party: "🥳", robot: "🤖", smile_cat: "😸",
};

const EMOJI_RE = /:([a-z0-9_+-]{1,32}):/g;
// as the server reads them (server/actions/mentions.py): not after a word character or '@'
const MENTION_RE = /(^|[^\w@])@([A-Za-z0-9_.-]{3,32})(?![A-Za-z0-9_])/g;

export function emojify(text: string): string {
  return text.replace(EMOJI_RE, (all, name: string) => EMOJI[name] ?? all);
}

export interface FormatOptions {
  /** The signed-in user's username: their own mentions are marked `mention me`. */
  me?: string | null;
  /** The message mentions everyone (`meta.mention_all`): @room / @here are marked as the reader's. */
  mentionAll?: boolean;
}

/** The nodes of a formatted message body, to append to its body element. */
export function formatBody(body: string, opts: FormatOptions = {}): Node[] {
  const root = document.createElement("div");
  build(md.parse(body, {}), root, opts);
  return [...root.childNodes];
}

function build(tokens: Token[], root: HTMLElement, opts: FormatOptions): void {
  const stack: HTMLElement[] = [root];
  let inLink = 0;
  const top = () => stack[stack.length - 1];
  for (const t of tokens) {
    if (t.type === "inline") {
      build(t.children ?? [], top(), opts); // links open and close within one inline token
      continue;
    }
    if (t.type === "link_open") {
      const href = safeHref(String(t.attrGet("href") ?? ""));
      const a = href
        ? Object.assign(document.createElement("a"), { href, target: "_blank", rel: "noopener noreferrer" })
        : Object.assign(document.createElement("span"), { className: "link-refused" });
      top().append(a);
      stack.push(a);
      inLink++;
      continue;
    }
    if (t.type === "link_close") {
      if (stack.length > 1) stack.pop();
      inLink = Math.max(0, inLink - 1);
      continue;
    }
    const base = t.type.replace(/_(open|close)$/, "");
    const tag = TAGS[base];
    if (tag && t.nesting === 1) {
      const el = document.createElement(tag);
      if (tag === "ol") {
        const start = Number(t.attrGet("start"));
        if (Number.isInteger(start) && start > 1 && start < 1e9) el.setAttribute("start", String(start));
      }
      top().append(el);
      stack.push(el);
    } else if (tag && t.nesting === -1) {
      if (stack.length > 1) stack.pop();
    } else if (t.type === "code_inline") {
      top().append(Object.assign(document.createElement("code"), { textContent: t.content }));
    } else if (t.type === "fence" || t.type === "code_block") {
      const pre = Object.assign(document.createElement("pre"), { className: "code" });
      pre.append(Object.assign(document.createElement("code"), { textContent: t.content.replace(/\n$/, "") }));
      top().append(pre);
    } else if (t.type === "softbreak" || t.type === "hardbreak") {
      top().append(document.createElement("br"));
    } else if (t.type === "text") {
      appendText(top(), t.content, opts, inLink > 0);
    } else if (t.content) {
      // a token type this table does not know: its text, never markup
      top().append(document.createTextNode(t.content));
    }
  }
}

function appendText(parent: HTMLElement, text: string, opts: FormatOptions, inLink: boolean): void {
  const s = emojify(text);
  if (inLink || !s.includes("@")) {
    parent.append(document.createTextNode(s));
    return;
  }
  const me = opts.me?.toLowerCase();
  let last = 0;
  for (const m of s.matchAll(MENTION_RE)) {
    const start = (m.index ?? 0) + m[1].length;
    const name = m[2].replace(/[.-]+$/, "");
    const end = start + 1 + name.length;
    if (start > last) parent.append(document.createTextNode(s.slice(last, start)));
    const lower = name.toLowerCase();
    const mine = lower === me || (opts.mentionAll === true && (lower === "room" || lower === "here"));
    const span = document.createElement("span");
    span.className = mine ? "mention me" : "mention";
    span.textContent = s.slice(start, end);
    parent.append(span);
    last = end;
  }
  if (last < s.length) parent.append(document.createTextNode(s.slice(last)));
}
