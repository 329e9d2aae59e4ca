// Desktop notifications, a short sound, and the count in the tab title.
//
// Permission is asked only when the user clicks "Enable notifications" (browsers ignore or
// penalise a prompt on page load, and it is rude). A notification is shown only when it can be
// news to the user: the tab is hidden, or the message's room is not the one open. What notifies
// follows the room's setting (`notify`, stored on the server per user and room): `all` every
// message of others, `mentions` only mentions of the user, `none` nothing. Mentions come from
// the server's `mention` event (which it does not send for muted rooms), other messages from
// `message`. The sound is two short sine tones made with WebAudio: no file to load.
import type { Message, NotifyLevel, Room } from "./types";

export type Permission = "default" | "granted" | "denied" | "unsupported";

/** Whether a message should notify. `mention`: it arrived as a `mention` event. */
export function shouldNotify(opts: {
  room: Room | undefined; message: Pick<Message, "author_id"> | null; meId: number; mention: boolean;
  openRoomId: number | null; hidden: boolean;
}): boolean {
  const { room, message, meId, mention, openRoomId, hidden } = opts;
  if (!room || !room.joined || room.kind === "whatsapp") return false;
  if (message && message.author_id === meId) return false;
  if (!hidden && openRoomId === room.id) return false; // the user is looking at it
  const level: NotifyLevel = room.notify ?? "all";
  if (level === "none") return false;
  return mention || level === "all";
}

/** "(3) Chat", or "Chat" when nothing waits. */
export function titleWithCount(count: number, base = "Chat"): string {
  return count > 0 ? `(${count > 99 ? "99+" : count}) ${base}` : base;
}

interface NotificationLike {
  onclick: ((this: unknown, ev: Event) => unknown) | null;
  close(): void;
}

export interface NotifierEnv {
  Notification?: {
    permission: string;
    requestPermission(): Promise<string>;
    new (title: string, options?: { body?: string; tag?: string; silent?: boolean }): NotificationLike;
  };
  AudioContext?: new () => AudioContext;
  focus?: () => void;
}

export class Notifier {
  private audio: AudioContext | null = null;
  private readonly shown = new Set<number>(); // message ids notified already (mention + message)

  constructor(private readonly env: NotifierEnv = browserEnv()) {}

  permission(): Permission {
    const N = this.env.Notification;
    if (!N) return "unsupported";
    return N.permission === "granted" || N.permission === "denied" ? N.permission : "default";
  }

  /** Asks the browser; call only from a user's click. */
  async request(): Promise<Permission> {
    this.unlockAudio(); // browsers allow sound once a page was clicked: this is the click
    const N = this.env.Notification;
    if (!N) return "unsupported";
    try {
      await N.requestPermission();
    } catch {
      // older Safari takes a callback: the permission is read below either way
    }
    return this.permission();
  }

  /** Shows one notification per message id (with a sound); false when not shown. */
  show(messageId: number, title: string, body: string, onClick: () => void): boolean {
    if (this.shown.has(messageId)) return false;
    this.shown.add(messageId);
    if (this.shown.size > 500) this.shown.delete(this.shown.values().next().value as number);
    this.beep();
    const N = this.env.Notification;
    if (!N || N.permission !== "granted") return false;
    const n = new N(title, { body: body.slice(0, 200), tag: `m${messageId}`, silent: true });
    n.onclick = () => {
      this.env.focus?.();
      onClick();
      n.close();
    };
    return true;
  }

  private unlockAudio(): void {
    const Ctx = this.env.AudioContext;
    if (!Ctx) return;
    try {
      this.audio ??= new Ctx();
      void this.audio.resume().catch(() => undefined);
    } catch {
      // no sound then
    }
  }

  /** Two short, quiet tones (about 0.25 s). Silently nothing where WebAudio is missing or blocked. */
  beep(): void {
    const Ctx = this.env.AudioContext;
    if (!Ctx) return;
    try {
      this.audio ??= new Ctx();
      const ctx = this.audio;
      const t = ctx.currentTime;
      for (const [i, freq] of [880, 1320].entries()) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, t + i * 0.12);
        gain.gain.exponentialRampToValueAtTime(0.08, t + i * 0.12 + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.12 + 0.11);
        osc.connect(gain).connect(ctx.destination);
        osc.start(t + i * 0.12);
        osc.stop(t + i * 0.12 + 0.12);
      }
    } catch {
      // an autoplay policy or a closed context: the notification still goes
    }
  }
}

function browserEnv(): NotifierEnv {
  const w = globalThis as unknown as { Notification?: NotifierEnv["Notification"]; AudioContext?: new () => AudioContext; focus?: () => void };
  return { Notification: w.Notification, AudioContext: w.AudioContext, focus: () => w.focus?.() };
}
