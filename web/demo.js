// The demo page: sign up or sign in with a passkey (button or autofill) or a recovery code, stay
// signed in across reloads, see who the server says you are, chat, manage your passkeys,
// sessions, recovery codes and account, sign out. Everything it knows about the server goes
// through wsauthn.js.
//
// The page's state is mirrored in data attributes (body[data-state], body[data-view],
// body[data-autofill], #chat-status[data-state], #account[data-loaded]) so people can style it
// and the browser tests can wait on it.

import { WsauthnClient, WsauthnError, isAutofillAvailable, isSupported } from "./wsauthn.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const els = {
  views: $("views"),
  viewChat: $("view-chat"),
  viewAccount: $("view-account"),
  strap: $("strap"),
  signedOut: $("signed-out"),
  signedIn: $("signed-in"),
  account: $("account"),
  title: $("form-title"),
  lede: $("lede"),
  tabs: $("tabs"),
  tabSignin: $("tab-signin"),
  tabSignup: $("tab-signup"),
  form: /** @type {HTMLFormElement} */ ($("auth-form")),
  username: /** @type {HTMLInputElement} */ ($("username")),
  usernameHint: $("username-hint"),
  displayNameRow: $("display-name-row"),
  displayName: /** @type {HTMLInputElement} */ ($("display-name")),
  codeRow: $("code-row"),
  code: /** @type {HTMLInputElement} */ ($("recovery-code")),
  submit: /** @type {HTMLButtonElement} */ ($("submit")),
  busy: $("busy"),
  busyText: $("busy-text"),
  cancel: $("cancel"),
  error: $("error"),
  notice: $("notice"),
  toRecover: $("to-recover"),
  fromRecover: $("from-recover"),
  avatar: $("avatar"),
  meName: $("me-name"),
  meUsername: $("me-username"),
  meVia: $("me-via"),
  meCheck: $("me-check"),
  meExpiry: $("me-expiry"),
  signout: /** @type {HTMLButtonElement} */ ($("signout")),
  chatStatus: $("chat-status"),
  chatEmpty: $("chat-empty"),
  chatLog: $("chat-log"),
  chatForm: /** @type {HTMLFormElement} */ ($("chat-form")),
  chatInput: /** @type {HTMLInputElement} */ ($("chat-input")),
  chatSend: /** @type {HTMLButtonElement} */ ($("chat-send")),
  chatReconnect: $("chat-reconnect"),
  accountError: $("account-error"),
  accountNotice: $("account-notice"),
  profileForm: /** @type {HTMLFormElement} */ ($("profile-form")),
  profileName: /** @type {HTMLInputElement} */ ($("profile-name")),
  profileUsername: $("profile-username"),
  passkeyAdd: /** @type {HTMLButtonElement} */ ($("passkey-add")),
  passkeyList: $("passkey-list"),
  lastPasskey: $("last-passkey"),
  sessionList: $("session-list"),
  sessionsEndOthers: /** @type {HTMLButtonElement} */ ($("sessions-end-others")),
  recoveryStatus: $("recovery-status"),
  recoveryCodes: $("recovery-codes"),
  recoveryCodeList: $("recovery-code-list"),
  recoveryCopy: $("recovery-copy"),
  recoveryDone: $("recovery-done"),
  recoveryCreate: /** @type {HTMLButtonElement} */ ($("recovery-create")),
  accountDelete: $("account-delete"),
  dialog: /** @type {HTMLDialogElement} */ ($("confirm-dialog")),
  dialogTitle: $("confirm-title"),
  dialogText: $("confirm-text"),
  dialogCheckRow: $("confirm-check-row"),
  dialogCheck: /** @type {HTMLInputElement} */ ($("confirm-check")),
  dialogCheckLabel: $("confirm-check-label"),
  dialogTypeRow: $("confirm-type-row"),
  dialogType: /** @type {HTMLInputElement} */ ($("confirm-type")),
  dialogOk: $("confirm-ok"),
};

const client = new WsauthnClient();
/** @type {"signin" | "signup" | "recover"} */
let mode = "signin";
/** Aborts the ceremony the person started with the button (the Cancel link). */
let ceremony = /** @type {AbortController | null} */ (null);
/** @type {WebSocket | null} */
let chat = null;
let autofillArmed = false;
/** Reconnecting the chat: the pending attempt and how many have failed in a row. */
let chatRetry = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);
let chatFailures = 0;
/** The person asked to sign out (or to delete the account): not the server ending the session. */
let leaving = false;

// ---------------------------------------------------------------------------------------------
// Words for errors: one for every code the server or the client can raise.

/**
 * What went wrong, in words for the person in front of the screen.
 * @param {unknown} err
 * @param {"signin" | "signup" | "autofill" | "recover" | "account"} during
 */
function describe(err, during) {
  if (!(err instanceof WsauthnError)) return `Something went wrong: ${String(err)}`;
  const username = els.username.value.trim();
  switch (err.code) {
    case "cancelled":
      return during === "signup" || during === "recover" || during === "account"
        ? "No passkey was created. The prompt was closed or timed out, or your device could not verify you."
        : "No passkey was used. The prompt was closed or timed out, or this browser has no passkey for this site.";
    case "aborted":
      return "Cancelled.";
    case "already_registered":
      return during === "account"
        ? "This device already holds a passkey for your account. Add one from another device or passkey manager."
        : "This device already has a passkey for that account. Sign in instead.";
    case "unsupported":
      return "This browser does not support passkeys. Try a recent Chrome, Edge, Safari or Firefox.";
    case "insecure":
      return `Passkeys do not work at this address (${location.origin}). Open the page over HTTPS, or at the address the server is set up for.`;
    case "authenticator":
      return `Your passkey provider reported a problem: ${err.message}`;
    case "timeout":
      return "The server did not answer in time. Check your connection and try again.";
    case "disconnected":
      return `${err.message} Check that it is running and that you are online, then try again.`;
    case "origin_not_allowed":
      return err.message;
    case "username_taken":
      return `The username “${username}” is taken. If it is yours, sign in instead.`;
    case "unknown_user":
      return `There is no account called “${username}”. Check the spelling, or create an account.`;
    case "no_passkey":
      return `The account “${username}” has no passkey left. Use a recovery code, or add a passkey from a device still signed in to it.`;
    case "credential_in_use":
      return "That passkey already belongs to an account. Sign in with it instead.";
    case "unknown_credential":
      return "This passkey is no longer registered here (it or its account was deleted); your browser was told to forget it. Sign in with another passkey, or create an account.";
    case "ceremony_not_found":
      return "That took too long and the request expired. Please try again.";
    case "rate_limited":
      return during === "recover"
        ? "Too many recovery attempts. Wait a quarter of an hour, then try again."
        : "Too many attempts. Wait a minute, then try again.";
    case "recovery_failed":
      return "That username and recovery code do not match, or the code was used already. Check both, or try another code.";
    case "verification_failed":
      if (/user verification/i.test(err.message)) {
        return "Your device did not confirm it was you (fingerprint, face or screen lock), so you were not signed in.";
      }
      if (/counter/i.test(err.message)) {
        return "This passkey's signature counter went backwards, as it does when a passkey was copied, so you were not signed in. Use another passkey, or a recovery code.";
      }
      if (/signature/i.test(err.message)) {
        return "Your passkey's signature did not check out, so you were not signed in.";
      }
      if (/origin/i.test(err.message)) {
        return `The server does not accept passkeys used at ${location.origin}. Open the page at the address the server is set up for.`;
      }
      return `Your passkey could not be verified, so you were not signed in. (${err.message})`;
    case "bad_request":
      return err.message;
    case "unauthorized":
      return during === "account" ? err.message : "Your session has ended. Please sign in again.";
    case "not_found":
      return "That passkey or session is gone already; the list has been refreshed.";
    case "last_passkey":
      return "That is your only passkey: without it you could not sign in. Add another passkey first.";
    case "passkey_limit":
      return "Your account has as many passkeys as it may hold. Delete one you no longer use first.";
    case "internal":
      return "The server ran into a problem. Please try again in a moment.";
    default:
      return `Something went wrong (${err.code}): ${err.message}`;
  }
}

/** @param {string} text */
function showError(text) {
  els.error.textContent = text;
  els.error.hidden = !text;
  if (text) els.notice.hidden = true;
}

/** @param {string} text */
function showNotice(text) {
  els.notice.textContent = text;
  els.notice.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// Signed out: the form, its three modes, busy states and autofill.

/** @param {"signin" | "signup" | "recover"} next */
function setMode(next) {
  mode = next;
  const signup = mode === "signup";
  const recover = mode === "recover";
  els.tabs.hidden = recover;
  els.tabSignin.setAttribute("aria-pressed", String(mode === "signin"));
  els.tabSignup.setAttribute("aria-pressed", String(signup));
  els.title.textContent = recover ? "Recover your account" : signup ? "Create your account" : "Sign in";
  els.lede.textContent = recover
    ? "Lost your passkeys? A recovery code signs you in once, and you add a new passkey."
    : "Use a passkey: your fingerprint, face or screen lock. No password to remember.";
  els.submit.textContent = recover
    ? "Recover and add a passkey"
    : signup
      ? "Create a passkey"
      : "Sign in with a passkey";
  els.usernameHint.textContent = recover
    ? "The username of the account to recover."
    : signup
      ? "Pick any name; your passkey will be saved under it."
      : "Leave it empty to choose from the passkeys on this device.";
  els.displayNameRow.hidden = !signup;
  els.codeRow.hidden = !recover;
  els.toRecover.hidden = mode !== "signin";
  els.fromRecover.hidden = !recover;
  document.body.dataset.mode = mode;
  showError("");
}

/** @param {string} text   empty when idle */
function setBusy(text) {
  const busy = !!text;
  document.body.dataset.state = busy ? "busy" : client.session ? "signed-in" : "signed-out";
  els.busy.hidden = !busy;
  els.busyText.textContent = text;
  els.form.setAttribute("aria-busy", String(busy));
  for (const el of [els.submit, els.username, els.displayName, els.code, els.tabSignin, els.tabSignup]) {
    /** @type {HTMLButtonElement | HTMLInputElement} */ (el).disabled = busy;
  }
}

/** @param {SubmitEvent} event */
async function onSubmit(event) {
  event.preventDefault();
  if (ceremony) return;
  const username = els.username.value.trim();
  if ((mode === "signup" || mode === "recover") && !username) {
    showError(mode === "signup" ? "Choose a username first." : "Enter the username of the account to recover.");
    els.username.focus();
    return;
  }
  if (mode === "recover" && !els.code.value.trim()) {
    showError("Enter one of your recovery codes.");
    els.code.focus();
    return;
  }
  showError("");
  showNotice("");
  ceremony = new AbortController();
  const signal = ceremony.signal;
  setBusy(
    mode === "signin"
      ? "Waiting for your passkey… follow your browser's prompt."
      : "Creating your passkey… follow your browser's prompt.",
  );
  try {
    if (mode === "signup") {
      await client.register(username, { displayName: els.displayName.value.trim() || undefined, signal });
    } else if (mode === "recover") {
      await client.recover(username, els.code.value, { signal });
    } else {
      await client.login(username || undefined, { signal });
    }
  } catch (err) {
    if (err instanceof WsauthnError && err.code === "aborted") showNotice("Cancelled. Nothing was changed.");
    else showError(describe(err, mode));
  } finally {
    ceremony = null;
    setBusy("");
  }
}

/** Offers this site's passkeys in the username field's autofill, until one is picked. */
async function armAutofill() {
  if (autofillArmed || client.session || ceremony || mode === "recover") return;
  autofillArmed = true;
  document.body.dataset.autofill = "armed";
  try {
    await client.autofill();
  } catch (err) {
    const quiet = err instanceof WsauthnError && ["aborted", "cancelled", "unsupported"].includes(err.code);
    if (!quiet && !client.session) showError(describe(err, "autofill"));
  } finally {
    autofillArmed = false;
    document.body.dataset.autofill = "idle";
  }
}

// ---------------------------------------------------------------------------------------------
// Signed in: who you are, the two views, the chat room, signing out.

/** @param {"chat" | "account"} view */
function showView(view) {
  document.body.dataset.view = view;
  const signedIn = !!client.session;
  els.signedIn.hidden = !signedIn || view !== "chat";
  els.account.hidden = !signedIn || view !== "account";
  for (const [link, name] of /** @type {[HTMLElement, string][]} */ ([
    [els.viewChat, "chat"],
    [els.viewAccount, "account"],
  ])) {
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (signedIn && view === "account") loadAccount();
}

function currentView() {
  return location.hash === "#account" ? "account" : "chat";
}

/** @param {import("./wsauthn.js").User} user */
function renderUser(user) {
  els.meName.textContent = user.displayName;
  els.meUsername.textContent = user.name;
  els.meUsername.hidden = user.name === user.displayName;
  els.avatar.textContent = Array.from(user.displayName.trim())[0]?.toUpperCase() ?? "?";
  els.profileUsername.textContent = user.name;
  if (document.activeElement !== els.profileName) els.profileName.value = user.displayName;
}

/** @param {import("./wsauthn.js").Session | null} session */
function render(session) {
  els.signedOut.hidden = !!session;
  els.views.hidden = !session;
  els.strap.hidden = !!session;
  document.body.dataset.state = session ? "signed-in" : "signed-out";
  if (session) {
    document.body.dataset.via = session.via;
    renderUser(session.user);
    els.meVia.textContent = {
      register: "You just created your passkey and are signed in.",
      login: "Signed in with your passkey.",
      autofill: "Signed in with your passkey, picked from autofill.",
      restored: "Still signed in from before this page loaded.",
      recovery: "Recovered with a recovery code: your new passkey is saved and you are signed in.",
    }[session.via];
    showError("");
    showNotice("");
    showView(currentView());
  } else {
    delete document.body.dataset.via;
    els.signedIn.hidden = true;
    els.account.hidden = true;
    delete els.account.dataset.loaded;
  }
}

async function whoAmI() {
  els.meCheck.dataset.state = "pending";
  els.meCheck.textContent = "Asking the server who you are…";
  els.meExpiry.textContent = "";
  try {
    const me = await client.me();
    els.meCheck.dataset.state = "ok";
    els.meCheck.dataset.user = me.user.name;
    els.meCheck.textContent = `✓ The server knows you as ${me.user.name}.`;
    const until = new Date(me.expiresAt * 1000);
    const hours = Math.round((me.expiresAt * 1000 - Date.now()) / 3_600_000);
    const at = until.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    els.meExpiry.textContent =
      hours >= 1
        ? `Your session lasts ${hours} more hour${hours === 1 ? "" : "s"}, until ${at}.`
        : `Your session ends at ${at}.`;
  } catch (err) {
    els.meCheck.dataset.state = "failed";
    els.meCheck.textContent = `The server did not recognise your session: ${describe(err, "signin")}`;
  }
}

/**
 * @param {"idle" | "connecting" | "open" | "closed" | "reconnecting"} state
 * @param {string} text
 * @param {number} [code]
 */
function setChatStatus(state, text, code) {
  els.chatStatus.dataset.state = state;
  els.chatStatus.textContent = text;
  if (code === undefined) delete els.chatStatus.dataset.code;
  else els.chatStatus.dataset.code = String(code);
  const open = state === "open";
  els.chatInput.disabled = !open;
  els.chatSend.disabled = !open;
  els.chatReconnect.hidden = !((state === "closed" || state === "reconnecting") && client.session);
}

/** Tries the chat again later, sooner at first (1, 2, 4 … 15 s), while signed in. */
function scheduleChatRetry() {
  clearTimeout(chatRetry);
  if (!client.session) return;
  const delay = Math.min(15_000, 1_000 * 2 ** Math.min(chatFailures, 4));
  chatFailures += 1;
  setChatStatus("reconnecting", `Reconnecting in ${Math.round(delay / 1000)} s…`);
  chatRetry = setTimeout(joinChat, delay);
}

/** Leaves the chat socket of an earlier session without waiting for the server to close it. */
function leaveChat() {
  clearTimeout(chatRetry);
  const old = chat;
  chat = null;
  old?.close(1000, "signed in again");
}

async function joinChat() {
  clearTimeout(chatRetry);
  const session = client.session;
  if (chat || !session) return;
  setChatStatus("connecting", "Connecting…");
  let socket;
  try {
    socket = await client.openSocket("/chat");
  } catch (err) {
    if (client.session !== session) return;
    if (err instanceof WsauthnError && (err.code === "disconnected" || err.code === "timeout")) {
      scheduleChatRetry();
    } else {
      setChatStatus("closed", "Could not join");
      showChatProblem(describe(err, "signin"));
    }
    return;
  }
  if (client.session !== session || chat) {
    socket.close(1000);
    return;
  }
  chat = socket;
  chatFailures = 0;
  setChatStatus("open", "Live");
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === "message") addMessage(frame);
    else if (frame.type === "error") showChatProblem(frame.message);
  });
  socket.addEventListener("close", (event) => {
    if (chat !== socket) return;
    chat = null;
    if (event.code === 4401) {
      setChatStatus("closed", "Closed: signed out", event.code);
      // Adds to the sign-out notice; a later one (a cancelled prompt) is not overwritten.
      if (!client.session && els.notice.textContent === "You are signed out.") {
        showNotice("You are signed out. The server closed your chat connection.");
      }
      return;
    }
    // The server went away (a restart: 1001) or the network did (1006): come back by itself.
    setChatStatus("closed", event.code === 1001 ? "Closed: server going away" : "Disconnected", event.code);
    scheduleChatRetry();
  });
}

/** @param {string} text */
function showChatProblem(text) {
  const li = document.createElement("li");
  li.className = "msg problem";
  li.innerHTML = '<div class="meta">wsauthn</div><div class="bubble"></div>';
  /** @type {HTMLElement} */ (li.lastElementChild).textContent = text;
  els.chatLog.append(li);
}

/** @param {{ from: string, name?: string, text: string, at: number }} message */
function addMessage(message) {
  const mine = message.from === client.user?.name;
  const li = document.createElement("li");
  li.className = mine ? "msg mine" : "msg";
  const meta = document.createElement("div");
  meta.className = "meta";
  const time = new Date(message.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const who = message.name || message.from;
  meta.textContent = mine ? time : `${who} · ${time}`;
  if (!mine) meta.title = message.from;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  bubble.textContent = message.text;
  li.append(meta, bubble);
  els.chatLog.append(li);
  els.chatEmpty.hidden = true;
  li.scrollIntoView({ block: "nearest" });
}

/** @param {SubmitEvent} event */
function onChatSubmit(event) {
  event.preventDefault();
  const text = els.chatInput.value.trim();
  if (!text || !chat || chat.readyState !== WebSocket.OPEN) return;
  chat.send(JSON.stringify({ type: "message", text }));
  els.chatInput.value = "";
  els.chatInput.focus();
}

async function onSignout() {
  els.signout.disabled = true;
  leaving = true;
  try {
    await client.logout();
  } catch (err) {
    showError(describe(err, "signin"));
  } finally {
    leaving = false;
    els.signout.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// The account page: passkeys, sessions, recovery codes, the account itself.

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** "3 minutes ago", "yesterday", or a date for anything older than a month. */
function ago(/** @type {number} */ unixSecs) {
  const secs = Math.round(unixSecs - Date.now() / 1000);
  const abs = Math.abs(secs);
  if (abs < 45) return "just now";
  for (const [unit, size] of /** @type {const} */ ([
    ["minute", 60],
    ["hour", 3600],
    ["day", 86400],
  ])) {
    const next = unit === "minute" ? 3600 : unit === "hour" ? 86400 : 30 * 86400;
    if (abs < next) return relative.format(Math.round(secs / size), unit);
  }
  return new Date(unixSecs * 1000).toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
}

/**
 * The browser and system a User-Agent names, in words: "Chrome on Linux".
 * @param {string | null} ua
 */
export function deviceOf(ua) {
  if (!ua) return "Unknown device";
  const browser = /Edg\//.test(ua)
    ? "Edge"
    : /OPR\//.test(ua)
      ? "Opera"
      : /Firefox\//.test(ua)
        ? "Firefox"
        : /HeadlessChrome\//.test(ua)
          ? "Headless Chrome"
          : /Chrome\//.test(ua)
            ? "Chrome"
            : /Safari\//.test(ua)
              ? "Safari"
              : /curl\//.test(ua)
                ? "curl"
                : null;
  const system = /iPhone|iPad|iPod/.test(ua)
    ? "iOS"
    : /Android/.test(ua)
      ? "Android"
      : /CrOS/.test(ua)
        ? "ChromeOS"
        : /Mac OS X|Macintosh/.test(ua)
          ? "macOS"
          : /Windows/.test(ua)
            ? "Windows"
            : /Linux/.test(ua)
              ? "Linux"
              : null;
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? system ?? ua.split(/[ /]/)[0] ?? "Unknown device";
}

/** @param {string} text */
function accountError(text) {
  els.accountError.textContent = text;
  els.accountError.hidden = !text;
  if (text) els.accountNotice.hidden = true;
}

/** @param {string} text */
function accountNotice(text) {
  els.accountNotice.textContent = text;
  els.accountNotice.hidden = !text;
  if (text) els.accountError.hidden = true;
}

/**
 * Runs an account action: the button is busy meanwhile, errors are shown in words, and the
 * lists are read again afterwards.
 * @param {HTMLElement | null} button
 * @param {() => Promise<string | void>} action  resolves with a notice to show
 */
async function act(button, action) {
  if (button) /** @type {HTMLButtonElement} */ (button).disabled = true;
  accountError("");
  try {
    const notice = await action();
    if (notice) accountNotice(notice);
  } catch (err) {
    accountError(describe(err, "account"));
  } finally {
    if (button) /** @type {HTMLButtonElement} */ (button).disabled = false;
    if (client.session) await loadAccount();
  }
}

async function loadAccount() {
  if (!client.session) return;
  els.account.setAttribute("aria-busy", "true");
  try {
    const [passkeys, sessions, recovery] = await Promise.all([
      client.passkeys(),
      client.sessions(),
      client.recoveryStatus(),
    ]);
    renderPasskeys(passkeys, sessions.find((s) => s.current)?.credentialId);
    renderSessions(sessions);
    renderRecovery(recovery);
    els.account.dataset.loaded = String(Date.now());
  } catch (err) {
    if (client.session) accountError(describe(err, "account"));
  } finally {
    els.account.removeAttribute("aria-busy");
  }
}

/**
 * @param {string} className
 * @param {string} text
 */
function el(className, text, tag = "span") {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/**
 * @param {import("./wsauthn.js").Passkey[]} passkeys
 * @param {string | undefined} currentCredential the passkey this session signed in with
 */
function renderPasskeys(passkeys, currentCredential) {
  const only = passkeys.length === 1;
  els.lastPasskey.hidden = !only;
  els.passkeyList.replaceChildren(
    ...passkeys.map((passkey) => {
      const li = document.createElement("li");
      li.className = "row passkey";
      li.dataset.id = passkey.id;
      const main = el("row-main", "", "div");
      const name = el("row-title wrap", passkey.label, "div");
      const kind = passkey.backedUp
        ? el("badge good", "Synced")
        : passkey.backupEligible
          ? el("badge", "Can sync")
          : el("badge", "This device only");
      name.append(" ", kind);
      if (passkey.id === currentCredential) name.append(" ", el("badge accent", "Used now"));
      const details = [
        passkey.authenticator && passkey.authenticator !== passkey.label ? passkey.authenticator : null,
        `Created ${ago(passkey.createdAt)}`,
        passkey.lastUsedAt ? `last used ${ago(passkey.lastUsedAt)}` : "not used to sign in yet",
      ].filter(Boolean);
      main.append(name, el("row-sub", details.join(" · "), "div"));
      const actions = el("row-actions", "", "div");
      const rename = el("link", "Rename", "button");
      rename.setAttribute("type", "button");
      rename.setAttribute("aria-label", `Rename ${passkey.label}`);
      rename.addEventListener("click", () => startRename(li, passkey));
      const del = el("link danger-link", "Delete", "button");
      del.setAttribute("type", "button");
      del.setAttribute("aria-label", `Delete ${passkey.label}`);
      /** @type {HTMLButtonElement} */ (del).disabled = only;
      if (only) del.setAttribute("aria-describedby", "last-passkey");
      del.addEventListener("click", () => deletePasskey(passkey, passkey.id === currentCredential));
      actions.append(rename, del);
      li.append(main, actions);
      return li;
    }),
  );
}

/**
 * Swaps a passkey's name for a small form.
 * @param {HTMLElement} li
 * @param {import("./wsauthn.js").Passkey} passkey
 */
function startRename(li, passkey) {
  const form = document.createElement("form");
  form.className = "rename";
  const id = `rename-${passkey.id}`;
  const label = el("sr-only", `New name for ${passkey.label}`, "label");
  label.setAttribute("for", id);
  const input = document.createElement("input");
  input.type = "text";
  input.id = id;
  input.maxLength = 64;
  input.value = passkey.label;
  const save = el("primary small-button", "Save", "button");
  save.setAttribute("type", "submit");
  const cancel = el("secondary small-button", "Cancel", "button");
  cancel.setAttribute("type", "button");
  cancel.addEventListener("click", () => loadAccount());
  form.append(label, input, save, cancel);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(save, async () => {
      const renamed = await client.renamePasskey(passkey.id, input.value.trim());
      return `Renamed to “${renamed.label}”.`;
    });
  });
  li.replaceChildren(form);
  input.focus();
  input.select();
}

/**
 * Asks, then deletes a passkey.
 * @param {import("./wsauthn.js").Passkey} passkey
 * @param {boolean} current  this session signed in with it
 */
async function deletePasskey(passkey, current) {
  const answer = await confirmDialog({
    title: `Delete “${passkey.label}”?`,
    text: current
      ? "You signed in with this passkey on this device. It will no longer sign you in anywhere; your browser is told to forget it."
      : "It will no longer sign you in anywhere; your browser is told to forget it.",
    check: current
      ? "Also sign out here and everywhere else it signed in"
      : "Also sign out the devices that signed in with it",
    checked: !current,
    ok: "Delete passkey",
  });
  if (!answer) return;
  await act(null, async () => {
    const { sessionsEnded } = await client.deletePasskey(passkey.id, { keepSessions: !answer.checked });
    return sessionsEnded
      ? `Deleted “${passkey.label}”; ${sessionsEnded} session${sessionsEnded === 1 ? "" : "s"} it opened ended with it.`
      : `Deleted “${passkey.label}”.`;
  });
}

/** @param {import("./wsauthn.js").SessionInfo[]} sessions */
function renderSessions(sessions) {
  const others = sessions.filter((s) => !s.current).length;
  els.sessionsEndOthers.disabled = others === 0;
  els.sessionList.replaceChildren(
    ...sessions.map((session) => {
      const li = document.createElement("li");
      li.className = "row session";
      li.dataset.id = session.id;
      if (session.current) li.dataset.current = "true";
      const main = el("row-main", "", "div");
      const title = el("row-title", deviceOf(session.userAgent), "div");
      if (session.current) title.append(" ", el("badge accent", "This device"));
      if (session.socketOnly) title.append(" ", el("badge", "Open tab"));
      const details = [
        session.address ?? "unknown address",
        `signed in ${ago(session.createdAt)}`,
        `active ${ago(session.lastUsedAt)}`,
      ];
      main.append(title, el("row-sub", details.join(" · "), "div"));
      li.append(main);
      if (!session.current) {
        const end = el("link danger-link", "Sign out", "button");
        end.setAttribute("type", "button");
        end.setAttribute("aria-label", `Sign out ${deviceOf(session.userAgent)} (${session.address ?? "unknown address"})`);
        end.addEventListener("click", () =>
          act(end, async () => {
            await client.endSession(session.id);
            return "That device is signed out.";
          }),
        );
        const actions = el("row-actions", "", "div");
        actions.append(end);
        li.append(actions);
      }
      return li;
    }),
  );
}

/** @param {import("./wsauthn.js").RecoveryStatus} status */
function renderRecovery(status) {
  els.recoveryStatus.dataset.remaining = String(status.remaining);
  if (status.createdAt === null) {
    els.recoveryStatus.textContent =
      "No recovery codes yet. Make some so a lost device does not lock you out: each code signs you in once, without a passkey, to add a new one.";
    els.recoveryCreate.textContent = "Create recovery codes";
  } else {
    els.recoveryStatus.textContent =
      status.remaining === 0
        ? `All your recovery codes are used (made ${ago(status.createdAt)}). Make new ones.`
        : `${status.remaining} unused recovery code${status.remaining === 1 ? "" : "s"} left, made ${ago(status.createdAt)}.`;
    els.recoveryCreate.textContent = "Replace with new codes";
  }
}

async function createRecoveryCodes() {
  const replacing = els.recoveryStatus.dataset.remaining !== "0";
  if (replacing) {
    const answer = await confirmDialog({
      title: "Replace your recovery codes?",
      text: "Your current codes stop working at once.",
      ok: "Replace codes",
    });
    if (!answer) return;
  }
  await act(els.recoveryCreate, async () => {
    const codes = await client.createRecoveryCodes();
    els.recoveryCodeList.replaceChildren(...codes.map((code) => el("", code, "li")));
    els.recoveryCodes.hidden = false;
    els.recoveryCreate.hidden = true;
    els.recoveryCodes.scrollIntoView({ block: "nearest" });
  });
}

async function copyRecoveryCodes() {
  const text = [...els.recoveryCodeList.children].map((li) => li.textContent).join("\n");
  try {
    await navigator.clipboard.writeText(text);
    accountNotice("Copied. Keep them somewhere safe, away from this device.");
  } catch {
    accountError("This browser did not allow copying; select the codes and copy them by hand.");
  }
}

function hideRecoveryCodes() {
  els.recoveryCodeList.replaceChildren();
  els.recoveryCodes.hidden = true;
  els.recoveryCreate.hidden = false;
}

async function deleteAccount() {
  const user = client.user;
  if (!user) return;
  const answer = await confirmDialog({
    title: "Delete your account?",
    text: `The account ${user.name}, its passkeys, sessions and recovery codes are deleted for good. Every device is signed out.`,
    type: user.name,
    ok: "Delete my account",
  });
  if (!answer) return;
  leaving = true;
  try {
    await client.deleteAccount(answer.typed);
    location.hash = "";
    showNotice("Your account is deleted.");
  } catch (err) {
    accountError(describe(err, "account"));
  } finally {
    leaving = false;
  }
}

/**
 * A modal question. Resolves with the answer, or null when cancelled.
 * @param {{ title: string, text: string, ok: string, check?: string, checked?: boolean, type?: string }} ask
 * @returns {Promise<{ checked: boolean, typed: string } | null>}
 */
function confirmDialog(ask) {
  els.dialogTitle.textContent = ask.title;
  els.dialogText.textContent = ask.text;
  els.dialogOk.textContent = ask.ok;
  els.dialogCheckRow.hidden = !ask.check;
  els.dialogCheckLabel.textContent = ask.check ?? "";
  els.dialogCheck.checked = !!ask.checked;
  els.dialogTypeRow.hidden = !ask.type;
  els.dialogType.value = "";
  const ok = /** @type {HTMLButtonElement} */ (els.dialogOk);
  const typed = () => !ask.type || els.dialogType.value.trim() === ask.type;
  ok.disabled = !typed();
  els.dialogType.oninput = () => {
    ok.disabled = !typed();
  };
  els.dialog.returnValue = "";
  els.dialog.showModal();
  if (ask.type) els.dialogType.focus();
  return new Promise((resolve) => {
    els.dialog.addEventListener(
      "close",
      () =>
        resolve(
          els.dialog.returnValue === "ok" && typed()
            ? { checked: els.dialogCheck.checked, typed: els.dialogType.value.trim() }
            : null,
        ),
      { once: true },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Wiring.

client.addEventListener("session", (event) => {
  const session = /** @type {CustomEvent} */ (event).detail;
  render(session);
  if (session) {
    // A socket of the session before (signed out and straight back in) may not have closed yet.
    leaveChat();
    chatFailures = 0;
    els.chatLog.replaceChildren();
    els.chatEmpty.hidden = false;
    hideRecoveryCodes();
    whoAmI();
    joinChat();
  } else {
    clearTimeout(chatRetry);
    if (els.dialog.open) els.dialog.close();
    els.username.value = "";
    els.code.value = "";
    setMode("signin");
    showNotice(
      leaving
        ? els.chatStatus.dataset.code === "4401"
          ? "You are signed out. The server closed your chat connection."
          : "You are signed out."
        : "You were signed out: this session was ended from another device, or it expired. The server closed your chat connection.",
    );
    armAutofill();
  }
});

// A new token (the client renews it before it expires): ask the server again, with it.
client.addEventListener("refresh", () => whoAmI());
client.addEventListener("user", (event) => renderUser(/** @type {CustomEvent} */ (event).detail));
// The Signal API calls the client made, for people reading the console (and the tests).
client.addEventListener("signal", (event) => {
  const { detail } = /** @type {CustomEvent} */ (event);
  signals.push(detail);
  document.body.dataset.signals = String(signals.length);
});
/** @type {import("./wsauthn.js").SignalEvent[]} */
const signals = [];

els.tabSignin.addEventListener("click", () => setMode("signin"));
els.tabSignup.addEventListener("click", () => setMode("signup"));
els.toRecover.addEventListener("click", () => {
  client.abortAutofill();
  setMode("recover");
  els.username.focus();
});
els.fromRecover.addEventListener("click", () => {
  setMode("signin");
  armAutofill();
});
els.form.addEventListener("submit", onSubmit);
els.cancel.addEventListener("click", () => ceremony?.abort());
// The autofill request ends when it fails or the person used the button; touching the field
// offers the passkeys again.
els.username.addEventListener("focus", armAutofill);
els.username.addEventListener("pointerdown", armAutofill);
els.signout.addEventListener("click", onSignout);
els.chatForm.addEventListener("submit", onChatSubmit);
els.chatReconnect.addEventListener("click", () => {
  chatFailures = 0;
  joinChat();
});
window.addEventListener("hashchange", () => showView(currentView()));
// The account page shows what the server knows now: read again when it is picked again, when
// the tab comes back into view, and every half minute while it is open.
els.viewAccount.addEventListener("click", () => {
  if (currentView() === "account") loadAccount();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && !els.account.hidden) loadAccount();
});
setInterval(() => {
  if (!els.account.hidden && document.visibilityState === "visible" && !els.dialog.open) loadAccount();
}, 30_000);
els.profileForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const displayName = els.profileName.value.trim();
  act(/** @type {HTMLElement} */ ($("profile-save")), async () => {
    const user = await client.updateAccount({ displayName });
    return `Your display name is now “${user.displayName}”.`;
  });
});
els.passkeyAdd.addEventListener("click", () =>
  act(els.passkeyAdd, async () => {
    const added = await client.addPasskey();
    return `Added “${added.label}”. It signs you in from now on.`;
  }),
);
els.sessionsEndOthers.addEventListener("click", () =>
  act(els.sessionsEndOthers, async () => {
    const ended = await client.endOtherSessions();
    return `Signed out ${ended} other session${ended === 1 ? "" : "s"}.`;
  }),
);
els.recoveryCreate.addEventListener("click", createRecoveryCodes);
els.recoveryCopy.addEventListener("click", copyRecoveryCodes);
els.recoveryDone.addEventListener("click", () => {
  hideRecoveryCodes();
  loadAccount();
});
els.accountDelete.addEventListener("click", deleteAccount);

render(null);
setMode("signin");
// For people (and tests) who want to try the client from the console.
Object.assign(globalThis, { wsauthnDemo: { client, describe, signals, deviceOf } });
if (!isSupported()) {
  showError(describe(new WsauthnError("unsupported", ""), "signin"));
  els.submit.disabled = true;
} else {
  // A reload stays signed in: the session this tab kept comes back without a prompt.
  const restored = await client.restore().catch((err) => {
    showError(describe(err, "signin"));
    return null;
  });
  if (!restored) {
    if (await isAutofillAvailable()) armAutofill();
    else document.body.dataset.autofill = "unsupported";
  }
}
document.body.dataset.ready = "true";
