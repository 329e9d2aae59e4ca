// A user's picture: the signed thumbnail URL the server puts in user records (`avatar_url`) as an
// <img>, with the initials as the fallback when there is no picture or the image fails to load
// (an expired URL, a picture removed meanwhile). The image is decorative: the name is always
// shown next to it, so it has an empty alt text.
import { h } from "../dom";

/** Up to two initials of a name. */
export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? [parts[0], parts[parts.length - 1]] : parts;
  return letters.map((p) => [...p][0]?.toUpperCase() ?? "").join("") || "?";
}

/** `<span class="avatar">` holding the picture, or the initials. */
export function avatar(name: string, url: string | null | undefined, extra = ""): HTMLElement {
  const el = h("span", { class: `avatar${extra ? ` ${extra}` : ""}`, "aria-hidden": "true", testid: "avatar" });
  setAvatar(el, name, url);
  return el;
}

/** Shows `url` (or the initials) in an element `avatar` made. */
export function setAvatar(el: HTMLElement, name: string, url: string | null | undefined): void {
  const fallback = () => {
    el.classList.remove("has-picture");
    el.replaceChildren(initials(name));
  };
  if (!url) return fallback();
  const img = h("img", { src: url, alt: "", loading: "lazy", decoding: "async", testid: "avatar-img" });
  img.addEventListener("error", fallback, { once: true });
  el.classList.add("has-picture");
  el.replaceChildren(img);
}
