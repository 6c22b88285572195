// The demo page: sign up or sign in with a passkey (button or autofill), see who the server says
// you are, chat, sign out. Everything it knows about the server goes through wsauthn.js.
//
// The page's state is mirrored in data attributes (body[data-state], body[data-autofill],
// #chat-status[data-state]) so people can style it and the browser tests can wait on it.

import { WsauthnClient, WsauthnError, isAutofillAvailable, isSupported } from "./wsauthn.js";

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const els = {
  signedOut: $("signed-out"),
  signedIn: $("signed-in"),
  title: $("form-title"),
  tabSignin: $("tab-signin"),
  tabSignup: $("tab-signup"),
  form: /** @type {HTMLFormElement} */ ($("auth-form")),
  username: /** @type {HTMLInputElement} */ ($("username")),
  usernameHint: $("username-hint"),
  displayNameRow: $("display-name-row"),
  displayName: /** @type {HTMLInputElement} */ ($("display-name")),
  submit: /** @type {HTMLButtonElement} */ ($("submit")),
  busy: $("busy"),
  busyText: $("busy-text"),
  cancel: $("cancel"),
  error: $("error"),
  notice: $("notice"),
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
};

const client = new WsauthnClient();
/** @type {"signin" | "signup"} */
let mode = "signin";
/** Aborts the ceremony the person started with the button (the Cancel link). */
let ceremony = /** @type {AbortController | null} */ (null);
/** @type {WebSocket | null} */
let chat = null;
let autofillArmed = false;

// ---------------------------------------------------------------------------------------------
// Words for errors.

/**
 * What went wrong, in words for the person in front of the screen.
 * @param {unknown} err
 * @param {"signin" | "signup" | "autofill"} during
 */
function describe(err, during) {
  if (!(err instanceof WsauthnError)) return `Something went wrong: ${String(err)}`;
  const username = els.username.value.trim();
  switch (err.code) {
    case "cancelled":
      return during === "signup"
        ? "No passkey was created. The prompt was closed or timed out, or your device could not verify you."
        : "No passkey was used. The prompt was closed or timed out, or this browser has no passkey for this site.";
    case "aborted":
      return "Cancelled.";
    case "already_registered":
      return "This device already has a passkey for that account. Sign in instead.";
    case "unsupported":
      return "This browser does not support passkeys. Try a recent Chrome, Edge, Safari or Firefox.";
    case "insecure":
      return "Passkeys only work on HTTPS pages or on localhost, at an address the server expects.";
    case "authenticator":
      return `Your passkey provider reported a problem: ${err.message}`;
    case "timeout":
      return "The server did not answer in time. Check your connection and try again.";
    case "disconnected":
      return "Lost the connection to the server. Check your connection and try again.";
    case "username_taken":
      return `The username “${username}” is taken. If it is yours, sign in instead.`;
    case "unknown_user":
      return `There is no account called “${username}”. Check the spelling, or create an account.`;
    case "no_passkey":
      return `The account “${username}” has no passkey left. Add one from a device still signed in to it.`;
    case "credential_in_use":
      return "That passkey already belongs to an account. Sign in with it instead.";
    case "ceremony_not_found":
      return "That took too long and the request expired. Please try again.";
    case "rate_limited":
      return "Too many attempts. Wait a minute, then try again.";
    case "verification_failed":
      if (/user verification/i.test(err.message)) {
        return "Your device did not confirm it was you (fingerprint, face or screen lock), so you were not signed in.";
      }
      if (/signature/i.test(err.message)) {
        return "Your passkey's signature did not check out, so you were not signed in.";
      }
      return `Your passkey could not be verified, so you were not signed in. (${err.message})`;
    case "bad_request":
      return err.message;
    case "unauthorized":
      return "Your session has ended. Please sign in again.";
    default:
      return "The server ran into a problem. Please try again in a moment.";
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
// Signed out: the form, its two modes, busy states and autofill.

/** @param {"signin" | "signup"} next */
function setMode(next) {
  mode = next;
  const signup = mode === "signup";
  els.tabSignin.setAttribute("aria-selected", String(!signup));
  els.tabSignup.setAttribute("aria-selected", String(signup));
  els.title.textContent = signup ? "Create your account" : "Sign in";
  els.submit.textContent = signup ? "Create a passkey" : "Sign in with a passkey";
  els.usernameHint.textContent = signup
    ? "Pick any name; your passkey will be saved under it."
    : "Leave it empty to choose from the passkeys on this device.";
  els.displayNameRow.hidden = !signup;
  showError("");
}

/** @param {string} text   empty when idle */
function setBusy(text) {
  const busy = !!text;
  document.body.dataset.state = busy ? "busy" : client.session ? "signed-in" : "signed-out";
  els.busy.hidden = !busy;
  els.busyText.textContent = text;
  els.form.setAttribute("aria-busy", String(busy));
  for (const el of [els.submit, els.username, els.displayName, els.tabSignin, els.tabSignup]) {
    /** @type {HTMLButtonElement | HTMLInputElement} */ (el).disabled = busy;
  }
}

/** @param {SubmitEvent} event */
async function onSubmit(event) {
  event.preventDefault();
  if (ceremony) return;
  const username = els.username.value.trim();
  if (mode === "signup" && !username) {
    showError("Choose a username first.");
    els.username.focus();
    return;
  }
  showError("");
  showNotice("");
  ceremony = new AbortController();
  const signal = ceremony.signal;
  setBusy(
    mode === "signup"
      ? "Creating your passkey… follow your browser's prompt."
      : "Waiting for your passkey… follow your browser's prompt.",
  );
  try {
    if (mode === "signup") {
      await client.register(username, { displayName: els.displayName.value.trim() || undefined, signal });
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
  if (autofillArmed || client.session || ceremony) return;
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
// Signed in: who you are, the chat room, signing out.

/** @param {import("./wsauthn.js").Session | null} session */
function render(session) {
  els.signedOut.hidden = !!session;
  els.signedIn.hidden = !session;
  document.body.dataset.state = session ? "signed-in" : "signed-out";
  if (session) {
    document.body.dataset.via = session.via;
    const { user } = session;
    els.meName.textContent = user.displayName;
    els.meUsername.textContent = user.name;
    els.meUsername.hidden = user.name === user.displayName;
    els.meVia.textContent = {
      register: "You just created your passkey and are signed in.",
      login: "Signed in with your passkey.",
      autofill: "Signed in with your passkey, picked from autofill.",
    }[session.via];
    els.avatar.textContent = Array.from(user.displayName.trim())[0]?.toUpperCase() ?? "?";
    showError("");
    showNotice("");
  } else {
    delete document.body.dataset.via;
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
 * @param {"idle" | "connecting" | "open" | "closed"} state
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
  els.chatReconnect.hidden = !(state === "closed" && client.session);
}

async function joinChat() {
  if (chat) return;
  setChatStatus("connecting", "Connecting…");
  let socket;
  try {
    socket = await client.openSocket("/chat");
  } catch (err) {
    setChatStatus("closed", "Could not join");
    if (client.session) showChatProblem(describe(err, "signin"));
    return;
  }
  chat = socket;
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
    if (chat === socket) chat = null;
    const why =
      event.code === 4401 ? "Closed: signed out" : event.code === 1001 ? "Closed: server going away" : "Disconnected";
    setChatStatus("closed", why, event.code);
    if (event.code === 4401 && !client.session) {
      showNotice("You are signed out. The server closed your chat connection.");
    }
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

/** @param {{ from: string, text: string, at: number }} message */
function addMessage(message) {
  const mine = message.from === client.user?.name;
  const li = document.createElement("li");
  li.className = mine ? "msg mine" : "msg";
  const meta = document.createElement("div");
  meta.className = "meta";
  const time = new Date(message.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.textContent = mine ? time : `${message.from} · ${time}`;
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
  try {
    await client.logout();
  } catch (err) {
    showError(describe(err, "signin"));
  } finally {
    els.signout.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring.

client.addEventListener("session", (event) => {
  const session = /** @type {CustomEvent} */ (event).detail;
  render(session);
  if (session) {
    els.chatLog.replaceChildren();
    els.chatEmpty.hidden = false;
    whoAmI();
    joinChat();
  } else {
    els.username.value = "";
    setMode("signin");
    showNotice("You are signed out.");
    armAutofill();
  }
});

// A new token (the client renews it before it expires): ask the server again, with it.
client.addEventListener("refresh", () => whoAmI());

els.tabSignin.addEventListener("click", () => setMode("signin"));
els.tabSignup.addEventListener("click", () => setMode("signup"));
els.form.addEventListener("submit", onSubmit);
els.cancel.addEventListener("click", () => ceremony?.abort());
// The autofill request ends when it fails or the person used the button; touching the field
// offers the passkeys again.
els.username.addEventListener("focus", armAutofill);
els.username.addEventListener("pointerdown", armAutofill);
els.signout.addEventListener("click", onSignout);
els.chatForm.addEventListener("submit", onChatSubmit);
els.chatReconnect.addEventListener("click", joinChat);

render(null);
if (!isSupported()) {
  showError(describe(new WsauthnError("unsupported", ""), "signin"));
  els.submit.disabled = true;
} else if (await isAutofillAvailable()) {
  armAutofill();
} else {
  document.body.dataset.autofill = "unsupported";
}
// For people (and tests) who want to try the client from the console.
Object.assign(globalThis, { wsauthnDemo: { client } });
document.body.dataset.ready = "true";
