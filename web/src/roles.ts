// Who may see what in the web app, by role (the server enforces the same on every route: this
// only decides which sections and controls are shown). Kept apart from the shell (views/app.ts)
// so the views that ask it do not import the shell that imports them.
import type { User } from "./types";

/** Staff, supervisors and admins: the desk (inbox, contacts, labels, archive). */
export function isStaff(u: User | null): boolean {
  return u?.role === "staff" || u?.role === "supervisor" || u?.role === "admin";
}

/** Supervisors and admins: the desk's managers (reports, campaigns, shared canned replies). */
export function isDeskManager(u: User | null): boolean {
  return u?.role === "supervisor" || u?.role === "admin";
}
