// A server's refusal shown beside the form it came from (not in the banner, not as an alert):
// the kind of refusal named from its stable code, then the server's own words; the code itself
// is kept on the element (`data-code`) for styles and tests.
import { ApiError } from "../api";

const CODE_TEXT: Record<string, string> = {
  conflict: "Taken",
  invalid: "Not valid",
  forbidden: "Not allowed",
  not_found: "Not found",
  too_large: "Too large",
  rate_limited: "Too many requests",
};

export function errorText(err: unknown): { code: string; text: string } {
  if (err instanceof ApiError) {
    const kind = CODE_TEXT[err.code];
    return { code: err.code, text: kind ? `${kind}: ${err.message}` : err.message };
  }
  return { code: "error", text: (err as Error).message };
}

export function showError(el: HTMLElement, err: unknown): void {
  const { code, text } = errorText(err);
  el.textContent = text;
  el.dataset.code = code;
}

export function clearError(el: HTMLElement): void {
  el.textContent = "";
  delete el.dataset.code;
}
