// wsauthn.js: the browser client of a wsauthn server. No dependencies; an ES module in one file
// on purpose, so a page can vendor it by copying it. Sections: errors, base64url, WebAuthn JSON,
// the correlated socket (Connection), the client (WsauthnClient).
//
// It speaks the wire protocol of docs/protocol.md: passkey ceremonies as JSON frames over one
// WebSocket (`/ws`), a bearer token as their result, and that token on further WebSockets (a
// first `auth` frame, since browsers cannot set headers on them) and on HTTP calls.
//
//   import { WsauthnClient } from "/wsauthn.js";
//   const client = new WsauthnClient();
//   const session = await client.register("alice@example.com", { displayName: "Alice" });
//   const chat = await client.openSocket("/chat");
//   chat.send(JSON.stringify({ type: "message", text: "hi" }));
//   await client.logout();   // the server closes `chat` with code 4401
//
// Invariants: at most one WebAuthn request is pending at a time (browsers refuse a second one, so
// a button sign-in first aborts a pending autofill); a reply is matched to its request by `id`;
// every server round trip has a timeout, but the authenticator prompt does not (the person may
// take their time; the browser applies the server's `timeout`, and callers can pass a signal).

/** Protocol error codes from the server (docs/protocol.md, "Errors"). */
export const SERVER_CODES = Object.freeze([
  "bad_request",
  "username_taken",
  "unknown_user",
  "ceremony_not_found",
  "verification_failed",
  "credential_in_use",
  "unauthorized",
  "rate_limited",
  "not_found",
  "last_passkey",
  "passkey_limit",
  "no_passkey",
  "unknown_credential",
  "recovery_failed",
  "internal",
]);

/**
 * Error codes raised by this client itself, beside the server's:
 * - `timeout`: the server did not answer in time;
 * - `disconnected`: the socket could not open or closed before the answer;
 * - `cancelled`: the browser returned no credential (NotAllowedError): the person closed the
 *   prompt, it timed out, user verification failed, or there is no passkey for this site;
 * - `aborted`: the caller's AbortSignal fired (or a newer request replaced an autofill);
 * - `already_registered`: this authenticator already holds a passkey for the account
 *   (InvalidStateError on create);
 * - `unsupported`: no WebAuthn (or no conditional mediation, for `autofill`);
 * - `insecure`: WebAuthn refused the origin (SecurityError: not HTTPS, or rp id mismatch);
 * - `authenticator`: any other failure of the browser or authenticator;
 * - `origin_not_allowed`: the server refuses this page's origin (its WebSocket upgrade gets 403);
 *   the message names the origins it accepts.
 */
export const CLIENT_CODES = Object.freeze([
  "timeout",
  "disconnected",
  "origin_not_allowed",
  "cancelled",
  "aborted",
  "already_registered",
  "unsupported",
  "insecure",
  "authenticator",
]);

/** An error with a machine-readable `code`: one of SERVER_CODES or CLIENT_CODES. */
export class WsauthnError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ cause?: unknown }} [options]
   */
  constructor(code, message, options) {
    super(message, options);
    this.name = "WsauthnError";
    /** @type {string} */
    this.code = code;
  }

  /** True when the code came from the server rather than from the browser or this client. */
  get fromServer() {
    return SERVER_CODES.includes(this.code);
  }
}

/**
 * @typedef {object} User
 * @property {string} id           the account's id (a UUID)
 * @property {string} name         the username, as it was spelled at sign-up
 * @property {string} displayName
 */

/**
 * @typedef {object} Session
 * @property {User} user
 * @property {string} token        the bearer token (64 hex digits); keep it secret
 * @property {number} expiresAt    unix seconds: the token's absolute end of life
 * @property {"register" | "login" | "autofill" | "restored" | "recovery"} via   how this session
 *   was obtained: a ceremony, a reload that found it in `sessionStorage`, or a recovery code
 */

/**
 * @typedef {object} Passkey      one passkey of the signed-in account (`passkeys.list`)
 * @property {string} id          the credential id, base64url
 * @property {string} label       its name: given by its owner, else the authenticator model's
 * @property {number} createdAt   unix seconds
 * @property {number | null} lastUsedAt   unix seconds of its last sign-in
 * @property {boolean} backupEligible     it can be synced (a passkey provider's, not one device's)
 * @property {boolean} backedUp           it is synced right now
 * @property {string | null} aaguid       the authenticator model's AAGUID
 * @property {string | null} authenticator the model's name when the AAGUID is a known one
 */

/**
 * @typedef {object} SessionInfo  one session of the signed-in account (`sessions.list`)
 * @property {string} id
 * @property {number} createdAt
 * @property {number} lastUsedAt
 * @property {number} expiresAt
 * @property {string | null} userAgent  of the request that opened it
 * @property {string | null} address    ditto
 * @property {string} [credentialId]    the passkey that opened it
 * @property {boolean} socketOnly       no token: it lives as long as its socket
 * @property {boolean} current          the session of this client
 */

/**
 * @typedef {object} RecoveryStatus
 * @property {number} remaining         unused recovery codes
 * @property {number | null} createdAt  when the current set was made, unix seconds
 */

/**
 * @typedef {object} SignalEvent  `detail` of the `signal` event
 * @property {"signalUnknownCredential" | "signalAllAcceptedCredentials" | "signalCurrentUserDetails"} method
 * @property {object} options     what was (or would have been) passed
 * @property {boolean} supported  whether this browser has the method (it was called only then)
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} [baseUrl]     the server's http(s) URL; default: this page's origin
 * @property {string} [socketPath]  the ceremony socket's path; default "/ws"
 * @property {number} [timeoutMs]   how long to wait for each server reply; default 10000
 * @property {boolean} [autoRefresh] refresh the token when the server warns that it is about to
 *   expire (an `expiring` frame), so sockets outlive any one token; default true
 * @property {"session" | false} [persist] keep the session in this tab's `sessionStorage`, so a
 *   reload stays signed in (`restore()`); the token is replaced at every restore. Default
 *   "session"; `false` keeps it in memory only (see docs/web-client.md for the trade-off)
 * @property {boolean} [signals] tell the browser's passkey manager what the server knows
 *   (WebAuthn Signal API, where the browser has it); default true
 */

// ---------------------------------------------------------------------------------------------
// base64url <-> bytes

/**
 * Encodes bytes as base64url without padding, as WebAuthn's JSON forms do.
 * @param {ArrayBuffer | ArrayBufferView} data
 * @returns {string}
 */
export function toBase64url(data) {
  const bytes =
    data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Decodes base64url (padding optional; plain base64 is accepted too).
 * @param {string} text
 * @returns {ArrayBuffer}
 */
export function fromBase64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

// ---------------------------------------------------------------------------------------------
// WebAuthn JSON <-> browser objects. The browser's own parsers and toJSON are used when present;
// the fallbacks below convert exactly the members the server sends as base64url.

/** @param {any} list */
const withBinaryIds = (list) =>
  Array.isArray(list) ? list.map((c) => ({ ...c, id: fromBase64url(c.id) })) : list;

/**
 * The `publicKey` of a `register.options` frame, as `navigator.credentials.create` wants it.
 * @param {any} json
 * @returns {PublicKeyCredentialCreationOptions}
 */
export function creationOptionsFromJSON(json) {
  const PKC = globalThis.PublicKeyCredential;
  if (PKC && typeof PKC.parseCreationOptionsFromJSON === "function") {
    return PKC.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    user: { ...json.user, id: fromBase64url(json.user.id) },
    excludeCredentials: withBinaryIds(json.excludeCredentials),
  };
}

/**
 * The `publicKey` of a `login.options` frame, as `navigator.credentials.get` wants it.
 * @param {any} json
 * @returns {PublicKeyCredentialRequestOptions}
 */
export function requestOptionsFromJSON(json) {
  const PKC = globalThis.PublicKeyCredential;
  if (PKC && typeof PKC.parseRequestOptionsFromJSON === "function") {
    return PKC.parseRequestOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    allowCredentials: withBinaryIds(json.allowCredentials),
  };
}

/**
 * A credential from `create` or `get` as the JSON the server reads (`credential.toJSON()`).
 * @param {PublicKeyCredential} credential
 * @returns {object}
 */
export function credentialToJSON(credential) {
  const own = /** @type {any} */ (credential);
  if (typeof own.toJSON === "function") return own.toJSON();
  const r = /** @type {any} */ (credential.response);
  /** @type {Record<string, unknown>} */
  const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toBase64url(r.attestationObject);
    if (typeof r.getTransports === "function") response.transports = r.getTransports();
  } else {
    response.authenticatorData = toBase64url(r.authenticatorData);
    response.signature = toBase64url(r.signature);
    if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: own.authenticatorAttachment ?? null,
    clientExtensionResults: credential.getClientExtensionResults(),
    response,
  };
}

/** True when this browser can use passkeys at all. */
export function isSupported() {
  return typeof globalThis.PublicKeyCredential === "function" && !!globalThis.navigator?.credentials;
}

/**
 * True when this browser can offer passkeys in the autofill of a field marked
 * `autocomplete="username webauthn"` (conditional mediation).
 * @returns {Promise<boolean>}
 */
export async function isAutofillAvailable() {
  const PKC = globalThis.PublicKeyCredential;
  if (!isSupported() || typeof PKC.isConditionalMediationAvailable !== "function") return false;
  try {
    return await PKC.isConditionalMediationAvailable();
  } catch {
    return false;
  }
}

/**
 * Turns what `navigator.credentials.create/get` threw into a WsauthnError.
 * @param {unknown} e
 * @param {"create" | "get"} op
 * @returns {WsauthnError}
 */
function fromBrowserError(e, op) {
  if (e instanceof WsauthnError) return e;
  const name = e instanceof Error ? e.name : "";
  const detail = e instanceof Error ? e.message : String(e);
  switch (name) {
    case "NotAllowedError":
      return new WsauthnError(
        "cancelled",
        op === "create"
          ? "No passkey was created: the prompt was closed, timed out, or could not verify you."
          : "No passkey was used: the prompt was closed, timed out, or this browser has no passkey for this site.",
        { cause: e },
      );
    case "AbortError":
      return new WsauthnError("aborted", "The passkey request was aborted.", { cause: e });
    case "InvalidStateError":
      return new WsauthnError(
        "already_registered",
        "This authenticator already holds a passkey for this account.",
        { cause: e },
      );
    case "SecurityError":
      return new WsauthnError("insecure", `Passkeys cannot be used on this page: ${detail}`, { cause: e });
    case "NotSupportedError":
      return new WsauthnError("unsupported", `This authenticator cannot do that: ${detail}`, { cause: e });
    default:
      return new WsauthnError("authenticator", `The authenticator failed: ${detail}`, { cause: e });
  }
}

/**
 * An AbortSignal that fires when any of `signals` does.
 * @param {(AbortSignal | undefined)[]} signals
 * @returns {AbortSignal}
 */
function anySignal(signals) {
  const present = /** @type {AbortSignal[]} */ (signals.filter(Boolean));
  if (typeof AbortSignal.any === "function") return AbortSignal.any(present);
  const controller = new AbortController();
  for (const s of present) {
    if (s.aborted) controller.abort(s.reason);
    else s.addEventListener("abort", () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}

/** @param {AbortSignal | undefined} signal */
function throwIfAborted(signal) {
  if (signal?.aborted) throw new WsauthnError("aborted", "The request was aborted.", { cause: signal.reason });
}

// ---------------------------------------------------------------------------------------------
// One WebSocket with request/reply correlation.

/**
 * A socket whose JSON replies are matched to requests by `id`. Frames without a waiting request
 * go to `onFrame`.
 */
class Connection {
  /**
   * @param {string} url
   * @param {number} timeoutMs
   * @param {(e: WsauthnError) => Promise<WsauthnError>} [explain] turns a failure to open into
   *   the error callers see (the client asks the server why)
   */
  constructor(url, timeoutMs, explain) {
    this.timeoutMs = timeoutMs;
    this.nextId = 1;
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: WsauthnError) => void, timer: any}>} */
    this.waiting = new Map();
    /** @type {(frame: any) => void} */
    this.onFrame = () => {};
    /** @type {(event: CloseEvent) => void} */
    this.onClose = () => {};
    this.socket = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new WsauthnError("timeout", "The server did not accept the connection in time."));
        this.socket.close();
      }, timeoutMs);
      this.socket.addEventListener("open", () => (clearTimeout(timer), resolve(undefined)), { once: true });
      this.socket.addEventListener(
        "close",
        () => (clearTimeout(timer), reject(new WsauthnError("disconnected", "Cannot connect to the server."))),
        { once: true },
      );
    }).catch(async (e) => {
      throw explain ? await explain(e) : e;
    });
    this.opened.catch(() => {}); // observed through `request`; no unhandled rejection here
    this.socket.addEventListener("message", (event) => this.#receive(event));
    this.socket.addEventListener("close", (event) => {
      for (const pending of this.waiting.values()) {
        clearTimeout(pending.timer);
        pending.reject(new WsauthnError("disconnected", "The connection to the server closed."));
      }
      this.waiting.clear();
      this.onClose(event);
    });
  }

  get open() {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** @param {MessageEvent} event */
  #receive(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    const pending = typeof frame?.id === "number" ? this.waiting.get(frame.id) : undefined;
    if (!pending) return this.onFrame(frame);
    this.waiting.delete(frame.id);
    clearTimeout(pending.timer);
    if (frame.type === "error") {
      pending.reject(new WsauthnError(frame.code ?? "internal", frame.message ?? "The server refused the request."));
    } else {
      pending.resolve(frame);
    }
  }

  /**
   * Sends `message` with a fresh `id` and resolves with the reply of type `expect`.
   * @param {Record<string, unknown>} message
   * @param {string} expect
   * @returns {Promise<any>}
   */
  async request(message, expect) {
    await this.opened;
    if (!this.open) throw new WsauthnError("disconnected", "The connection to the server closed.");
    const id = this.nextId++;
    const reply = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new WsauthnError("timeout", "The server did not answer in time."));
      }, this.timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      this.socket.send(JSON.stringify({ ...message, id }));
    });
    if (reply.type !== expect) {
      throw new WsauthnError("internal", `Expected ${expect} from the server, got ${reply.type}.`);
    }
    return reply;
  }

  /**
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code, reason) {
    this.onClose = () => {};
    this.onFrame = () => {};
    this.socket.close(code, reason);
  }
}

// ---------------------------------------------------------------------------------------------
// The client.

/** An autofill request is renewed this long before the server's ceremony expires. */
const RENEW_MARGIN_MS = 15_000;

/**
 * A wsauthn client: passkey ceremonies, the session they yield, and sockets and HTTP calls
 * authorized by it.
 *
 * Events (an EventTarget), each a CustomEvent:
 * - `session`: signed in or out; `detail` is the new Session, or `null` when signed out (by
 *   `logout`, or because the server revoked or expired the token);
 * - `refresh`: the token was renewed; `detail` is the Session with the new token;
 * - `user`: the signed-in user's details changed (`updateAccount`); `detail` is the User;
 * - `expiring`: the server warned that the token expires soon; `detail.expiresAt`;
 * - `signal`: the client told the browser's passkey manager something (Signal API);
 *   `detail` is a SignalEvent.
 */
export class WsauthnClient extends EventTarget {
  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    super();
    const base = new URL(options.baseUrl ?? globalThis.location?.origin ?? "http://localhost:8080");
    /** @type {string} */
    this.baseUrl = base.origin;
    this.socketUrl = new URL(options.socketPath ?? "/ws", base);
    this.socketUrl.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.autoRefresh = options.autoRefresh ?? true;
    this.signals = options.signals ?? true;
    /** @type {Storage | null} */
    this.storage = null;
    if ((options.persist ?? "session") === "session") {
      try {
        this.storage = globalThis.sessionStorage ?? null;
      } catch {
        this.storage = null; // storage disabled (privacy settings): memory only
      }
    }
    this.storageKey = `wsauthn:session:${this.baseUrl}`;
  }

  /** The ceremony socket, once opened. @type {Connection | null} */
  #conn = null;
  /** Is `#conn` signed in with the session's token? */
  #bound = false;
  /** @type {Session | null} */
  #session = null;
  /** A pending `autofill`, and its settling. @type {AbortController | null} */
  #autofill = null;
  /** @type {Promise<unknown> | null} */
  #autofillDone = null;
  /** Bumped by every `autofill` and `abortAutofill`: an autofill still starting checks it. */
  #autofillTicket = 0;
  /** Sockets opened with `openSocket`, closed on `logout`. @type {Set<WebSocket>} */
  #sockets = new Set();
  /** @type {Promise<Session> | null} */
  #refreshing = null;

  /** The current session, or null when signed out. */
  get session() {
    return this.#session;
  }

  /** The signed-in user, or null. */
  get user() {
    return this.#session?.user ?? null;
  }

  /** The bearer token, or null. */
  get token() {
    return this.#session?.token ?? null;
  }

  /**
   * Opens the ceremony socket if it is not open. Requests call this themselves; calling it early
   * only saves a round trip later.
   * @returns {Promise<void>}
   */
  async connect() {
    await this.#connection().opened;
  }

  /** @returns {Connection} */
  #connection() {
    const current = this.#conn;
    if (current && current.socket.readyState <= WebSocket.OPEN) return current;
    const connection = new Connection(this.socketUrl.href, this.timeoutMs, (e) => this.#explainConnectFailure(e));
    connection.onFrame = (frame) => {
      if (frame?.type !== "expiring" || !this.#session) return;
      this.dispatchEvent(new CustomEvent("expiring", { detail: { expiresAt: frame.expiresAt } }));
      if (this.autoRefresh) this.refresh().catch(() => {});
    };
    connection.onClose = (event) => {
      if (this.#conn !== connection) return;
      this.#conn = null;
      const wasBound = this.#bound;
      this.#bound = false;
      // A socket bound to the token is closed with 4401 when the token is revoked or expires.
      if (wasBound && event.code === 4401) this.#setSession(null);
    };
    this.#conn = connection;
    this.#bound = false;
    return connection;
  }

  /** @param {Session | null} session */
  #setSession(session) {
    this.#session = session;
    this.#store(session);
    this.dispatchEvent(new CustomEvent("session", { detail: session }));
  }

  /** Keeps the session (or its absence) in `sessionStorage`, when `persist` allows. */
  #store(/** @type {Session | null} */ session) {
    try {
      if (!this.storage) return;
      if (session) this.storage.setItem(this.storageKey, JSON.stringify(session));
      else this.storage.removeItem(this.storageKey);
    } catch {
      // Full or disabled storage: the session lives in memory only.
    }
  }

  /**
   * Why the socket could not open, in words that point the right way: the server refuses this
   * page's origin (its `/.well-known/webauthn` lists the ones it accepts, readable from any
   * page), or the server cannot be reached at all.
   * @param {WsauthnError} e
   * @returns {Promise<WsauthnError>}
   */
  async #explainConnectFailure(e) {
    if (e.code !== "disconnected") return e;
    const here = globalThis.location?.origin;
    let origins;
    try {
      const response = await fetch(new URL("/.well-known/webauthn", this.baseUrl), {
        signal: AbortSignal.timeout?.(this.timeoutMs),
      });
      origins = response.ok ? (await response.json()).origins : undefined;
    } catch {
      return new WsauthnError("disconnected", `Cannot reach the server at ${this.baseUrl}.`, { cause: e });
    }
    if (here && Array.isArray(origins) && !origins.includes(here)) {
      const where = origins.length ? `; open ${origins.join(" or ")} instead` : "";
      return new WsauthnError(
        "origin_not_allowed",
        `This page's origin ${here} is not allowed by the server at ${this.baseUrl}${where}.`,
        { cause: e },
      );
    }
    return e;
  }

  /**
   * Calls a WebAuthn Signal API method where the browser has it, and reports it as a `signal`
   * event either way. Never throws: a passkey manager's bookkeeping must not break the page.
   * @param {SignalEvent["method"]} method
   * @param {object} options
   */
  async #signal(method, options) {
    if (!this.signals) return;
    const PKC = /** @type {any} */ (globalThis.PublicKeyCredential);
    const supported = typeof PKC?.[method] === "function";
    if (supported) {
      // Not awaited: the passkey manager's answer changes nothing here, and must not hold the
      // page up. Browsers may refuse (no passkey manager, a mismatched rp id); nothing to do.
      Promise.resolve()
        .then(() => PKC[method](options))
        .catch(() => {});
    }
    this.dispatchEvent(new CustomEvent("signal", { detail: { method, options, supported } }));
  }

  /** After a sign-in or a deletion: the passkeys the server accepts, and who the user is. */
  async #signalAccepted() {
    try {
      const list = await this.#listPasskeys();
      await this.#signal("signalAllAcceptedCredentials", {
        rpId: list.rpId,
        userId: list.userHandle,
        allAcceptedCredentialIds: list.passkeys.map((/** @type {Passkey} */ p) => p.id),
      });
      const user = this.#session?.user;
      if (user) {
        await this.#signal("signalCurrentUserDetails", {
          rpId: list.rpId,
          userId: list.userHandle,
          name: user.name,
          displayName: user.displayName,
        });
      }
      return list;
    } catch {
      return null;
    }
  }

  /**
   * @param {any} result a `register.result` or `login.result` frame
   * @param {Session["via"]} via
   * @returns {Session}
   */
  #signedIn(result, via) {
    const auth = result.authentication;
    if (!auth?.token) throw new WsauthnError("internal", "The server issued no token.");
    // The finish also signed the ceremony socket in, bound to this token.
    this.#bound = true;
    const session = { user: result.user, token: auth.token, expiresAt: auth.expiresAt, via };
    this.#setSession(session);
    if (this.signals) this.#signalAccepted();
    return session;
  }

  /**
   * Creates an account with a new passkey and signs in.
   * @param {string} username
   * @param {{ displayName?: string, signal?: AbortSignal }} [options]
   * @returns {Promise<Session>}
   */
  async register(username, options = {}) {
    if (!isSupported()) throw new WsauthnError("unsupported", "This browser does not support passkeys.");
    await this.abortAutofill();
    throwIfAborted(options.signal);
    const connection = this.#connection();
    const who = { username, displayName: options.displayName };
    const result = await this.#createPasskey(connection, who, true, options.signal);
    return this.#signedIn(result, "register");
  }

  /**
   * Signs in with a passkey through the browser's prompt. With a username, only that account's
   * passkeys are offered; without one, the person picks any passkey this site has on the device.
   * @param {string} [username]
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<Session>}
   */
  async login(username, options = {}) {
    if (!isSupported()) throw new WsauthnError("unsupported", "This browser does not support passkeys.");
    await this.abortAutofill();
    throwIfAborted(options.signal);
    return this.#login(username || undefined, undefined, options.signal, "login");
  }

  /**
   * Offers this site's passkeys in the autofill of the field marked
   * `autocomplete="username webauthn"` and resolves with the session once the person picks one.
   * It stays pending until then; abort it with `options.signal` or `abortAutofill()` (which the
   * other ceremonies call first). Rejects with `unsupported` where the browser cannot autofill
   * passkeys, and with `aborted` when aborted.
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<Session>}
   */
  async autofill(options = {}) {
    // Taken before the first await: a ceremony that starts meanwhile (and aborts autofill) must
    // stop this one from starting at all, or its request would race the ceremony's.
    const ticket = ++this.#autofillTicket;
    if (!(await isAutofillAvailable())) {
      throw new WsauthnError("unsupported", "This browser cannot offer passkeys in autofill.");
    }
    await this.#stopAutofill();
    if (ticket !== this.#autofillTicket) throw new WsauthnError("aborted", "Autofill was aborted.");
    throwIfAborted(options.signal);
    const controller = new AbortController();
    this.#autofill = controller;
    const signal = anySignal([controller.signal, options.signal]);
    const done = this.#autofillUntilPicked(signal);
    this.#autofillDone = done.catch(() => {});
    try {
      return await done;
    } finally {
      if (this.#autofill === controller) {
        this.#autofill = null;
        this.#autofillDone = null;
      }
    }
  }

  /**
   * Keeps a conditional request pending until the person picks a passkey. The server forgets a
   * ceremony after its timeout, or when its socket closes, so the request is renewed shortly
   * before the one and right after the other.
   * @param {AbortSignal} signal
   * @returns {Promise<Session>}
   */
  async #autofillUntilPicked(signal) {
    for (;;) {
      const renew = new AbortController();
      try {
        return await this.#login(undefined, "conditional", signal, "autofill", renew);
      } catch (e) {
        if (!renew.signal.aborted || signal.aborted) throw e;
      }
    }
  }

  /**
   * Aborts a pending `autofill` and waits until the browser has let go of it.
   * @returns {Promise<void>}
   */
  async abortAutofill() {
    this.#autofillTicket++;
    await this.#stopAutofill();
  }

  /** Aborts the pending autofill request, if any, and waits until the browser has let go. */
  async #stopAutofill() {
    const controller = this.#autofill;
    const done = this.#autofillDone;
    if (!controller) return;
    controller.abort(new WsauthnError("aborted", "Autofill was aborted."));
    await done;
  }

  /**
   * @param {string | undefined} username
   * @param {"conditional" | undefined} mediation
   * @param {AbortSignal | undefined} signal
   * @param {Session["via"]} via
   * @param {AbortController} [renew] aborted to renew an autofill request (see above)
   * @returns {Promise<Session>}
   */
  async #login(username, mediation, signal, via, renew) {
    const connection = this.#connection();
    /** @type {Record<string, unknown>} */
    const begin = { type: "login.begin", token: true };
    if (username) begin.username = username;
    const opts = await connection.request(begin, "login.options");
    throwIfAborted(signal);
    let credential;
    let renewTimer;
    const renewOnClose = () => renew?.abort();
    try {
      /** @type {CredentialRequestOptions & { mediation?: string }} */
      const request = { publicKey: requestOptionsFromJSON(opts.publicKey), signal };
      if (mediation) request.mediation = mediation;
      if (renew) {
        const timeout = opts.publicKey.timeout;
        if (typeof timeout === "number") {
          renewTimer = setTimeout(() => renew.abort(), Math.max(timeout - RENEW_MARGIN_MS, 1_000));
        }
        connection.socket.addEventListener("close", renewOnClose);
        request.signal = anySignal([signal, renew.signal]);
      }
      credential = await navigator.credentials.get(/** @type {CredentialRequestOptions} */ (request));
    } catch (e) {
      throw fromBrowserError(e, "get");
    } finally {
      clearTimeout(renewTimer);
      connection.socket.removeEventListener("close", renewOnClose);
    }
    if (!credential) throw new WsauthnError("cancelled", "No passkey was used.");
    // Aborted while the browser was answering (a button took over from autofill): finishing
    // would open a session nobody uses.
    throwIfAborted(signal);
    let result;
    try {
      result = await connection.request(
        {
          type: "login.finish",
          ceremonyId: opts.ceremonyId,
          credential: credentialToJSON(/** @type {PublicKeyCredential} */ (credential)),
          token: true,
        },
        "login.result",
      );
    } catch (e) {
      // The server does not know this passkey (deleted, or its account was): let the browser's
      // passkey manager forget it, so it stops being offered.
      if (e instanceof WsauthnError && e.code === "unknown_credential") {
        await this.#signal("signalUnknownCredential", {
          rpId: opts.publicKey.rpId ?? new URL(this.baseUrl).hostname,
          credentialId: credential.id,
        });
      }
      throw e;
    }
    return this.#signedIn(result, via);
  }

  /**
   * Trades the token for a new one with a fresh lifetime. The session (and every socket bound to
   * it) carries on; the old token stops working at once. Emits `refresh` with the new Session.
   * With `autoRefresh` (the default) the client does this itself when the server warns that the
   * token is about to expire.
   * @returns {Promise<Session>}
   */
  refresh() {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  /** @returns {Promise<Session>} */
  async #refresh() {
    const session = this.#session;
    if (!session) throw new WsauthnError("unauthorized", "Sign in before refreshing the session.");
    const connection = await this.#boundConnection(session);
    const result = await connection.request({ type: "refresh" }, "refresh.result");
    if (this.#session !== session) throw new WsauthnError("unauthorized", "The session ended meanwhile.");
    const { token, expiresAt } = result.authentication;
    this.#session = { ...session, token, expiresAt };
    this.#store(this.#session);
    this.dispatchEvent(new CustomEvent("refresh", { detail: this.#session }));
    return this.#session;
  }

  /**
   * The ceremony connection, signed in with the session's token (after a reconnect it is not).
   * @param {Session} session
   * @returns {Promise<Connection>}
   */
  async #boundConnection(session) {
    const connection = this.#connection();
    if (!this.#bound) {
      await connection.request({ type: "auth", token: session.token }, "auth.result");
      if (this.#conn === connection) this.#bound = true;
    }
    return connection;
  }

  /**
   * Revokes the token on the server, which closes every socket that used it (code 4401), and
   * forgets the session. Resolves once the server has confirmed; the session is forgotten even
   * when the server cannot be reached.
   * @returns {Promise<void>}
   */
  async logout() {
    const session = this.#session;
    if (!session) return;
    try {
      const connection = await this.#boundConnection(session);
      await connection.request({ type: "logout" }, "logout.result");
      // The server closes this socket too; let the next request open a fresh one at once.
      this.#conn = null;
      this.#bound = false;
      connection.close();
    } catch (e) {
      // An unknown token is as good as revoked; anything else still signs this page out.
      if (!(e instanceof WsauthnError && e.code === "unauthorized")) throw e;
    } finally {
      this.#setSession(null);
      this.#closeSocketsSoon();
    }
  }

  /** Closes sockets the server did not close itself (it closes them on `logout`). */
  #closeSocketsSoon() {
    const sockets = [...this.#sockets];
    this.#sockets.clear();
    setTimeout(() => {
      for (const socket of sockets) {
        if (socket.readyState <= WebSocket.OPEN) socket.close(1000, "signed out");
      }
    }, 2_000);
  }

  /**
   * Opens a protected WebSocket at `path` and authenticates it with the session's token (a first
   * `auth` frame). Resolves with the open socket once the server has accepted the token; attach
   * your listeners right after the `await`, and no frame is missed. `logout` closes it.
   * @param {string} path
   * @returns {Promise<WebSocket>}
   */
  async openSocket(path) {
    const session = this.#session;
    if (!session) throw new WsauthnError("unauthorized", "Sign in before opening a protected socket.");
    const url = new URL(path, this.socketUrl);
    const connection = new Connection(url.href, this.timeoutMs, (e) => this.#explainConnectFailure(e));
    try {
      await connection.request({ type: "auth", token: session.token }, "auth.result");
    } catch (e) {
      connection.close();
      // The server no longer knows the token (revoked, expired, or the account deleted).
      if (e instanceof WsauthnError && e.code === "unauthorized" && this.#session === session) {
        this.#setSession(null);
      }
      throw e;
    }
    // From here on the caller owns the frames.
    connection.onFrame = () => {};
    const socket = connection.socket;
    this.#sockets.add(socket);
    socket.addEventListener("close", () => this.#sockets.delete(socket), { once: true });
    return socket;
  }

  /**
   * `fetch` with `Authorization: Bearer <token>`; `path` is resolved against the server's URL.
   * @param {string} path
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  async fetch(path, init = {}) {
    const headers = new Headers(init.headers);
    if (this.#session) headers.set("Authorization", `Bearer ${this.#session.token}`);
    return fetch(new URL(path, this.baseUrl), { ...init, headers });
  }

  /**
   * `GET /api/me`: who the server says the token belongs to, and when it expires.
   * @returns {Promise<{ user: User, expiresAt: number }>}
   */
  async me() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let response;
    try {
      response = await this.fetch("/api/me", { signal: controller.signal });
    } catch (e) {
      const timedOut = controller.signal.aborted;
      throw new WsauthnError(
        timedOut ? "timeout" : "disconnected",
        timedOut ? "The server did not answer in time." : "Cannot reach the server.",
        { cause: e },
      );
    } finally {
      clearTimeout(timer);
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new WsauthnError(body.code ?? "internal", body.message ?? `HTTP ${response.status}`);
    }
    return body;
  }

  // -------------------------------------------------------------------------------------------
  // Staying signed in across a reload.

  /**
   * Resumes the session this tab kept in `sessionStorage` (see `persist`), with no passkey
   * prompt: the stored token signs the ceremony socket in (`auth`) and is replaced at once
   * (`refresh`), so a token read from storage earlier is dead by the time the page runs. The same
   * server session carries on: a reload opens no new one. Resolves with the Session (`via:
   * "restored"`), or `null` when nothing was stored or the server no longer accepts it (it is
   * then forgotten). Rejects, keeping what was stored, when the server cannot be reached.
   * @returns {Promise<Session | null>}
   */
  async restore() {
    if (this.#session) return this.#session;
    let stored;
    try {
      stored = JSON.parse(this.storage?.getItem(this.storageKey) ?? "null");
    } catch {
      stored = null;
    }
    if (!stored?.token || !stored.user) return null;
    const connection = this.#connection();
    let whoami;
    try {
      whoami = await connection.request({ type: "auth", token: stored.token }, "auth.result");
    } catch (e) {
      if (e instanceof WsauthnError && e.code === "unauthorized") {
        this.#store(null);
        return null;
      }
      throw e;
    }
    if (this.#conn === connection) this.#bound = true;
    /** @type {Session} */
    const session = { user: whoami.user, token: stored.token, expiresAt: whoami.expiresAt, via: "restored" };
    this.#session = session;
    try {
      const fresh = await connection.request({ type: "refresh" }, "refresh.result");
      session.token = fresh.authentication.token;
      session.expiresAt = fresh.authentication.expiresAt;
    } catch (e) {
      this.#session = null;
      this.#store(null);
      if (e instanceof WsauthnError && e.code === "unauthorized") return null;
      throw e;
    }
    this.#setSession(session);
    if (this.signals) this.#signalAccepted();
    return session;
  }

  // -------------------------------------------------------------------------------------------
  // The account: passkeys, sessions, recovery codes, the account itself. All run over the
  // ceremony socket, signed in with the session's token.

  /**
   * One request on the ceremony socket as the signed-in user.
   * @param {Record<string, unknown>} message
   * @param {string} expect
   * @returns {Promise<any>}
   */
  async #account(message, expect) {
    const session = this.#session;
    if (!session) throw new WsauthnError("unauthorized", "Sign in first.");
    const connection = await this.#boundConnection(session);
    return connection.request(message, expect);
  }

  /** @returns {Promise<{ passkeys: Passkey[], rpId: string, userHandle: string }>} */
  #listPasskeys() {
    return this.#account({ type: "passkeys.list" }, "passkeys.list.result");
  }

  /**
   * The signed-in account's passkeys, oldest first. Also tells the browser's passkey manager
   * which passkeys the server still accepts (`signalAllAcceptedCredentials`).
   * @returns {Promise<Passkey[]>}
   */
  async passkeys() {
    const list = await this.#listPasskeys();
    await this.#signal("signalAllAcceptedCredentials", {
      rpId: list.rpId,
      userId: list.userHandle,
      allAcceptedCredentialIds: list.passkeys.map((p) => p.id),
    });
    return list.passkeys;
  }

  /**
   * Renames one of the account's passkeys (1 to 64 characters).
   * @param {string} credentialId
   * @param {string} label
   * @returns {Promise<Passkey>}
   */
  async renamePasskey(credentialId, label) {
    const result = await this.#account({ type: "passkeys.rename", credentialId, label }, "passkeys.rename.result");
    return result.passkey;
  }

  /**
   * Deletes one of the account's passkeys. The sessions it opened end with it (this one too,
   * when it was opened by that passkey) unless `keepSessions`; the account's last passkey is
   * refused (`last_passkey`) unless `allowLast`. Then tells the browser's passkey manager which
   * passkeys are left (`signalAllAcceptedCredentials`), so the deleted one stops being offered.
   * @param {string} credentialId
   * @param {{ allowLast?: boolean, keepSessions?: boolean }} [options]
   * @returns {Promise<{ credentialId: string, sessionsEnded: number }>}
   */
  async deletePasskey(credentialId, options = {}) {
    const before = await this.#listPasskeys();
    const result = await this.#account(
      {
        type: "passkeys.delete",
        credentialId,
        allowLast: !!options.allowLast,
        keepSessions: !!options.keepSessions,
      },
      "passkeys.delete.result",
    );
    // From the list read before: this session may have ended with the passkey.
    await this.#signal("signalAllAcceptedCredentials", {
      rpId: before.rpId,
      userId: before.userHandle,
      allAcceptedCredentialIds: before.passkeys.map((p) => p.id).filter((id) => id !== credentialId),
    });
    return { credentialId: result.credentialId, sessionsEnded: result.sessionsEnded };
  }

  /**
   * Adds a passkey to the signed-in account (another device, or a passkey manager): the
   * browser's create prompt, with the account's passkeys excluded. The session carries on.
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<Passkey>} the new passkey
   */
  async addPasskey(options = {}) {
    const session = this.#session;
    if (!session) throw new WsauthnError("unauthorized", "Sign in first.");
    if (!isSupported()) throw new WsauthnError("unsupported", "This browser does not support passkeys.");
    await this.abortAutofill();
    throwIfAborted(options.signal);
    const connection = await this.#boundConnection(session);
    const result = await this.#createPasskey(connection, { username: session.user.name }, false, options.signal);
    const list = await this.passkeys();
    const added = list.find((p) => p.id === result.credentialId);
    if (!added) throw new WsauthnError("internal", "The new passkey is not listed.");
    return added;
  }

  /**
   * register.begin → navigator.credentials.create → register.finish on `connection`.
   * @param {Connection} connection
   * @param {{ username: string, displayName?: string }} who
   * @param {boolean} token
   * @param {AbortSignal | undefined} signal
   * @returns {Promise<any>} the register.result frame
   */
  async #createPasskey(connection, who, token, signal) {
    /** @type {Record<string, unknown>} */
    const begin = { type: "register.begin", username: who.username, token };
    if (who.displayName) begin.displayName = who.displayName;
    const opts = await connection.request(begin, "register.options");
    let credential;
    try {
      credential = await navigator.credentials.create({
        publicKey: creationOptionsFromJSON(opts.publicKey),
        signal,
      });
    } catch (e) {
      throw fromBrowserError(e, "create");
    }
    if (!credential) throw new WsauthnError("cancelled", "No passkey was created.");
    return connection.request(
      {
        type: "register.finish",
        ceremonyId: opts.ceremonyId,
        credential: credentialToJSON(/** @type {PublicKeyCredential} */ (credential)),
        token,
      },
      "register.result",
    );
  }

  /**
   * The account's sessions, newest first; `current` marks this client's.
   * @returns {Promise<SessionInfo[]>}
   */
  async sessions() {
    return (await this.#account({ type: "sessions.list" }, "sessions.list.result")).sessions;
  }

  /**
   * Ends one session of the account; its sockets close (4401) at once. Ending this client's
   * own session signs it out.
   * @param {string} sessionId
   * @returns {Promise<void>}
   */
  async endSession(sessionId) {
    await this.#account({ type: "sessions.revoke", sessionId }, "sessions.revoke.result");
  }

  /**
   * Ends every session of the account but this client's.
   * @returns {Promise<number>} how many ended
   */
  async endOtherSessions() {
    return (await this.#account({ type: "sessions.revokeOthers" }, "sessions.revokeOthers.result")).revoked;
  }

  /**
   * Changes the account's display name, and tells the browser's passkey manager
   * (`signalCurrentUserDetails`) so its list shows the new one. Emits `user`.
   * @param {{ displayName: string }} changes
   * @returns {Promise<User>}
   */
  async updateAccount(changes) {
    const result = await this.#account(
      { type: "account.update", displayName: changes.displayName },
      "account.update.result",
    );
    if (this.#session) {
      this.#session = { ...this.#session, user: result.user };
      this.#store(this.#session);
    }
    await this.#signal("signalCurrentUserDetails", {
      rpId: result.rpId,
      userId: result.userHandle,
      name: result.user.name,
      displayName: result.user.displayName,
    });
    this.dispatchEvent(new CustomEvent("user", { detail: result.user }));
    return result.user;
  }

  /**
   * Deletes the signed-in account: its passkeys, sessions (every socket closes) and recovery
   * codes. `confirm` must be the username, as the person typed it. Then tells the browser's
   * passkey manager that the account has no passkeys left here, and signs this client out.
   * @param {string} confirm
   * @returns {Promise<void>}
   */
  async deleteAccount(confirm) {
    const list = await this.#listPasskeys().catch(() => null);
    await this.#account({ type: "account.delete", confirm }, "account.delete.result");
    this.#conn = null;
    this.#bound = false;
    if (list) {
      await this.#signal("signalAllAcceptedCredentials", {
        rpId: list.rpId,
        userId: list.userHandle,
        allAcceptedCredentialIds: [],
      });
    }
    this.#setSession(null);
    this.#closeSocketsSoon();
  }

  /**
   * How many recovery codes the account has left.
   * @returns {Promise<RecoveryStatus>}
   */
  async recoveryStatus() {
    const { remaining, createdAt } = await this.#account({ type: "recovery.status" }, "recovery.status.result");
    return { remaining, createdAt };
  }

  /**
   * Makes a new set of one-time recovery codes, replacing the old ones. Show them to the person
   * once and let them save them: the server keeps only slow hashes, and cannot show them again.
   * @returns {Promise<string[]>}
   */
  async createRecoveryCodes() {
    return (await this.#account({ type: "recovery.create" }, "recovery.create.result")).codes;
  }

  /**
   * Recovers an account whose passkeys are lost: a recovery code (spent by this) signs in to a
   * short session that may only add a passkey, and this adds one with the browser's create
   * prompt, which signs in. Resolves with the Session (`via: "recovery"`).
   * @param {string} username
   * @param {string} code
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<Session>}
   */
  async recover(username, code, options = {}) {
    if (!isSupported()) throw new WsauthnError("unsupported", "This browser does not support passkeys.");
    await this.abortAutofill();
    throwIfAborted(options.signal);
    const connection = this.#connection();
    const granted = await connection.request({ type: "recovery.login", username, code }, "recovery.result");
    const result = await this.#createPasskey(connection, { username: granted.user.name }, true, options.signal);
    return this.#signedIn(result, "recovery");
  }

  /** Closes every socket this client opened, without signing out on the server. */
  close() {
    this.#autofill?.abort();
    this.#conn?.close(1000);
    this.#conn = null;
    for (const socket of this.#sockets) socket.close(1000);
    this.#sockets.clear();
  }
}
