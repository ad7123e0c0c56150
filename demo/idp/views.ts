/**
 * The HTML pages of the demo provider: login, errors, sign-out.
 *
 * Self-contained (inline CSS, no scripts, no external fonts or images) and
 * every interpolated value goes through `escapeHtml`: request parameters,
 * usernames and error descriptions are attacker-controlled text.
 */
import type { ServerResponse } from "node:http";

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- escapes whatever the template is given; the views pass strings and numbers
  return String(value ?? "").replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char);
}

const STYLE = `
:root { color-scheme: light dark; --bg: #f4f5f7; --card: #fff; --text: #1d2330; --muted: #5f6b7a; --line: #d5d9e0; --accent: #3056d3; --error-bg: #fdecec; --error: #a61b1b; }
@media (prefers-color-scheme: dark) { :root { --bg: #14171c; --card: #1e232b; --text: #e6e9ee; --muted: #9aa4b2; --line: #343b46; --accent: #7b9cff; --error-bg: #3a1f22; --error: #ffb4b4; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: var(--bg); color: var(--text); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { width: min(100% - 2rem, 24rem); background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 2rem; box-shadow: 0 8px 24px rgb(0 0 0 / 8%); }
h1 { margin: 0 0 .25rem; font-size: 1.4rem; }
p { margin: .5rem 0; }
.muted { color: var(--muted); font-size: .9rem; }
label { display: block; margin-top: 1rem; font-weight: 600; font-size: .9rem; }
input { width: 100%; margin-top: .35rem; padding: .6rem .7rem; font: inherit; color: inherit; background: transparent; border: 1px solid var(--line); border-radius: 8px; }
input:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
button { width: 100%; margin-top: 1.25rem; padding: .65rem; font: inherit; font-weight: 600; color: #fff; background: var(--accent); border: 0; border-radius: 8px; cursor: pointer; }
button.secondary { margin-top: .5rem; color: var(--text); background: transparent; border: 1px solid var(--line); font-weight: 400; }
.error { margin: 1rem 0 0; padding: .6rem .75rem; border-radius: 8px; background: var(--error-bg); color: var(--error); }
details { margin-top: 1.5rem; font-size: .9rem; color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem .75rem; margin: .75rem 0 0; }
dt { font-weight: 600; }
dd { margin: 0; word-break: break-word; }
`;

/**
 * Headers of every page: not cached, no scripts, no framing (click-jacking of
 * the password form), no `<base>` tricks. Deliberately no `form-action`:
 * browsers apply it to the redirects that follow a form post, which here end
 * at the SPA's origin.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
});

/** A complete page around `body` (which must already be escaped markup). */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** Sends a page with the headers every page of the provider gets. */
export function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(html),
    ...PAGE_HEADERS,
  });
  res.end(html);
}

export interface LoginPageOptions {
  /** The interaction id: the form posts to `/interaction/<uid>/login`. */
  uid: string;
  /** Shown as "to continue to …". */
  clientName: string;
  /** Pre-filled username (the `login_hint`, or what was typed before a failed attempt). */
  username?: string;
  /** Shown above the form, e.g. after a wrong password. */
  error?: string;
  /** Listed under "Demo accounts" so that people trying the demo can log in. */
  accounts: ReadonlyArray<{ username: string; password: string; roles: readonly string[] }>;
}

export function loginPage(options: LoginPageOptions): string {
  const uid = encodeURIComponent(options.uid);
  const accounts = options.accounts
    .map(
      (account) =>
        `<dt><code>${escapeHtml(account.username)}</code></dt><dd><code>${escapeHtml(account.password)}</code> · ${escapeHtml(account.roles.join(", "))}</dd>`,
    )
    .join("\n");
  return page(
    "Sign in · Demo identity provider",
    `<h1>Sign in</h1>
<p class="muted">to continue to <strong>${escapeHtml(options.clientName)}</strong></p>
${options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : ""}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="on">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escapeHtml(options.username ?? "")}"${options.username ? "" : " autofocus"}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${options.username ? " autofocus" : ""}>
<button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit" class="secondary">Cancel</button>
</form>
<details>
<summary>Demo accounts</summary>
<dl>
${accounts}
</dl>
</details>`,
  );
}

/** An error page; `details` are shown as a definition list (e.g. the OAuth `error` and `error_description`). */
export function errorPage(title: string, message: string, details: Record<string, unknown> = {}): string {
  const rows = Object.entries(details)
    .filter(([, value]) => value !== undefined && value !== "")
    .map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd><code>${escapeHtml(value)}</code></dd>`)
    .join("\n");
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>\n${rows ? `<dl>\n${rows}\n</dl>` : ""}`);
}

/**
 * The sign-out confirmation (RP-initiated logout). `form` is markup generated
 * by oidc-provider (a POST form carrying an anti-CSRF token), so it is embedded as is;
 * the buttons submit it with or without `logout=yes`.
 */
export function logoutPage(form: string, host: string): string {
  return page(
    "Sign out · Demo identity provider",
    `<h1>Sign out?</h1>
<p class="muted">You are signed in at <strong>${escapeHtml(host)}</strong>.</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`,
  );
}

export function loggedOutPage(clientName: string | undefined): string {
  return page(
    "Signed out · Demo identity provider",
    `<h1>Signed out</h1>\n<p>You have been signed out${clientName ? ` of ${escapeHtml(clientName)}` : ""}. You can close this tab.</p>`,
  );
}
