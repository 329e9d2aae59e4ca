// Entry point: restore the session (refresh token in localStorage) or show the login page.
//
// Files: api.ts (REST, tokens) · uploads.ts (file uploads with progress) · connection.ts
// (socket, reconnect, banner state) · client.ts (chat state: rooms, messages, pending sends,
// sync, typing, presence, streams, inbox, fresh media URLs) ·
// store/ (the pure state pieces, unit-tested) · views/ (render functions and panes) · dom.ts.
import "./style.css";
import { Api, REFRESH_KEY } from "./api";
import type { User } from "./types";
import { App } from "./views/app";
import { authView } from "./views/auth";

const root = document.getElementById("app")!;
const api = new Api();
let app: App | null = null;

function showLogin(notice = ""): void {
  app?.stop();
  app = null;
  authView(root, api, (user: User) => startApp(user), notice);
}

function startApp(user: User): void {
  api.user = user;
  app?.stop();
  app = new App(api, root, (reason) => showLogin(reason));
  app.start();
}

api.onSessionEnded = () => showLogin("Your session has ended. Please log in again.");
// logging out in another tab removes the shared refresh token: follow it here
window.addEventListener("storage", (e) => {
  if (e.key === REFRESH_KEY && e.newValue === null && app) {
    api.accessToken = null;
    showLogin("You logged out in another tab.");
  }
});

async function boot(): Promise<void> {
  if (api.refreshToken && (await api.refresh())) {
    try {
      startApp((await api.call<{ user: User }>("GET", "/api/v1/users/me")).user);
      return;
    } catch {
      // fall through to the login page
    }
  }
  showLogin(api.refreshToken ? "The server could not be reached. Log in again, or reload in a moment." : "");
}

void boot();
