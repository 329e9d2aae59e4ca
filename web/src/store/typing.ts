// Typing indicators, both ways.
//
// Receiving: the server relays `typing {room_id, user, typing, ttl_ms}`; a sender repeats
// `typing: true` every ~3 s while typing, so an entry not refreshed within its ttl (6 s by
// default) has expired by itself (the sender closed the tab, lost the network, ...).
// Sending: TypingSender decides when to emit, so a busy keyboard costs one event per 3 s.

export const TYPING_RESEND_MS = 3_000; // the server expects a refresh at this pace
export const TYPING_TTL_MS = 6_000; // two missed refreshes and the indicator goes
export const TYPING_IDLE_MS = 5_000; // no keystroke this long: tell the room we stopped

interface Entry {
  name: string;
  until: number;
}

export class TypingState {
  private readonly entries = new Map<number, Entry>();

  set(userId: number, name: string, typing: boolean, ttlMs = TYPING_TTL_MS, now = Date.now()): void {
    if (typing) this.entries.set(userId, { name, until: now + ttlMs });
    else this.entries.delete(userId);
  }

  /** The user stopped typing because their message arrived. */
  clear(userId: number): void {
    this.entries.delete(userId);
  }

  /** Names of who is typing now, oldest first; expired entries are dropped. */
  names(now = Date.now()): string[] {
    for (const [id, e] of this.entries) if (e.until <= now) this.entries.delete(id);
    return [...this.entries.values()].map((e) => e.name);
  }

  /** When the next entry expires (to schedule a re-render), or null when nobody is typing. */
  nextExpiry(): number | null {
    let min: number | null = null;
    for (const e of this.entries.values()) min = min === null ? e.until : Math.min(min, e.until);
    return min;
  }
}

/** "Ann is typing…", "Ann and Bo are typing…", "Ann, Bo and 2 others are typing…". */
export function typingText(names: readonly string[]): string {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  const others = names.length - 2;
  return `${names[0]}, ${names[1]} and ${others} other${others > 1 ? "s" : ""} are typing…`;
}

/** The sending side: returns what to emit, if anything, for each thing the user does. */
export class TypingSender {
  private lastSent = 0;
  private lastInput = 0;
  private active = false;

  /** A keystroke that changed the draft. True: emit `typing: true`. */
  input(now = Date.now()): boolean {
    this.lastInput = now;
    if (this.active && now - this.lastSent < TYPING_RESEND_MS) return false;
    this.active = true;
    this.lastSent = now;
    return true;
  }

  /** Sent, cleared, blurred or switched rooms. True: emit `typing: false`. */
  stop(): boolean {
    const was = this.active;
    this.active = false;
    this.lastSent = 0;
    return was;
  }

  /** Called on a timer. True: the user went idle, emit `typing: false`. */
  tick(now = Date.now()): boolean {
    return this.active && now - this.lastInput >= TYPING_IDLE_MS ? this.stop() : false;
  }
}
