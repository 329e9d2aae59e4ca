// The limits the server enforces, shown before it refuses: the longest message body
// (MAX_MESSAGE_CHARS, from `GET /api/v1/config`). Nothing is cut off silently: a pasted text
// longer than the limit stays whole in the composer, the counter says by how much it is over,
// and Send is refused until it fits.

/** The server's default, used until `GET /api/v1/config` answers (or when it cannot). */
export const DEFAULT_MAX_MESSAGE_CHARS = 4000;
/** The counter appears once a message uses this share of the limit. */
export const COUNTER_FROM = 0.9;

export interface LengthNote {
  /** Show the counter at all. */
  show: boolean;
  /** Over the limit: Send is refused. */
  over: boolean;
  text: string;
}

export function lengthNote(length: number, max: number): LengthNote {
  if (length > max) {
    const by = length - max;
    return { show: true, over: true, text: `${by.toLocaleString("en")} character${by === 1 ? "" : "s"} too long (at most ${max.toLocaleString("en")})` };
  }
  return { show: length >= max * COUNTER_FROM, over: false, text: `${length.toLocaleString("en")} / ${max.toLocaleString("en")}` };
}

/** The message limit from the server's config; the default when it does not answer. */
export async function fetchMaxMessageChars(call: <T>(method: string, path: string) => Promise<T>): Promise<number> {
  try {
    const c = await call<{ max_message_chars?: number }>("GET", "/api/v1/config");
    return typeof c.max_message_chars === "number" && c.max_message_chars > 0 ? c.max_message_chars : DEFAULT_MAX_MESSAGE_CHARS;
  } catch {
    return DEFAULT_MAX_MESSAGE_CHARS;
  }
}
