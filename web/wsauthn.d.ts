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
/**
 * Encodes bytes as base64url without padding, as WebAuthn's JSON forms do.
 * @param {ArrayBuffer | ArrayBufferView} data
 * @returns {string}
 */
export function toBase64url(data: ArrayBuffer | ArrayBufferView): string;
/**
 * Decodes base64url (padding optional; plain base64 is accepted too).
 * @param {string} text
 * @returns {ArrayBuffer}
 */
export function fromBase64url(text: string): ArrayBuffer;
/**
 * The `publicKey` of a `register.options` frame, as `navigator.credentials.create` wants it.
 * @param {any} json
 * @returns {PublicKeyCredentialCreationOptions}
 */
export function creationOptionsFromJSON(json: any): PublicKeyCredentialCreationOptions;
/**
 * The `publicKey` of a `login.options` frame, as `navigator.credentials.get` wants it.
 * @param {any} json
 * @returns {PublicKeyCredentialRequestOptions}
 */
export function requestOptionsFromJSON(json: any): PublicKeyCredentialRequestOptions;
/**
 * A credential from `create` or `get` as the JSON the server reads (`credential.toJSON()`).
 * @param {PublicKeyCredential} credential
 * @returns {object}
 */
export function credentialToJSON(credential: PublicKeyCredential): object;
/** True when this browser can use passkeys at all. */
export function isSupported(): boolean;
/**
 * True when this browser can offer passkeys in the autofill of a field marked
 * `autocomplete="username webauthn"` (conditional mediation).
 * @returns {Promise<boolean>}
 */
export function isAutofillAvailable(): Promise<boolean>;
/** Protocol error codes from the server (docs/protocol.md, "Errors"). */
export const SERVER_CODES: readonly string[];
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
export const CLIENT_CODES: readonly string[];
/** An error with a machine-readable `code`: one of SERVER_CODES or CLIENT_CODES. */
export class WsauthnError extends Error {
    /**
     * @param {string} code
     * @param {string} message
     * @param {{ cause?: unknown }} [options]
     */
    constructor(code: string, message: string, options?: {
        cause?: unknown;
    });
    /** @type {string} */
    code: string;
    /** True when the code came from the server rather than from the browser or this client. */
    get fromServer(): boolean;
}
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
    constructor(options?: ClientOptions);
    /** @type {string} */
    baseUrl: string;
    socketUrl: URL;
    timeoutMs: number;
    autoRefresh: boolean;
    signals: boolean;
    /** @type {Storage | null} */
    storage: Storage | null;
    storageKey: string;
    /** The current session, or null when signed out. */
    get session(): Session | null;
    /** The signed-in user, or null. */
    get user(): User | null;
    /** The bearer token, or null. */
    get token(): string | null;
    /**
     * Opens the ceremony socket if it is not open. Requests call this themselves; calling it early
     * only saves a round trip later.
     * @returns {Promise<void>}
     */
    connect(): Promise<void>;
    /**
     * Creates an account with a new passkey and signs in.
     * @param {string} username
     * @param {{ displayName?: string, signal?: AbortSignal }} [options]
     * @returns {Promise<Session>}
     */
    register(username: string, options?: {
        displayName?: string;
        signal?: AbortSignal;
    }): Promise<Session>;
    /**
     * Signs in with a passkey through the browser's prompt. With a username, only that account's
     * passkeys are offered; without one, the person picks any passkey this site has on the device.
     * @param {string} [username]
     * @param {{ signal?: AbortSignal }} [options]
     * @returns {Promise<Session>}
     */
    login(username?: string, options?: {
        signal?: AbortSignal;
    }): Promise<Session>;
    /**
     * Offers this site's passkeys in the autofill of the field marked
     * `autocomplete="username webauthn"` and resolves with the session once the person picks one.
     * It stays pending until then; abort it with `options.signal` or `abortAutofill()` (which the
     * other ceremonies call first). Rejects with `unsupported` where the browser cannot autofill
     * passkeys, and with `aborted` when aborted.
     * @param {{ signal?: AbortSignal }} [options]
     * @returns {Promise<Session>}
     */
    autofill(options?: {
        signal?: AbortSignal;
    }): Promise<Session>;
    /**
     * Aborts a pending `autofill` and waits until the browser has let go of it.
     * @returns {Promise<void>}
     */
    abortAutofill(): Promise<void>;
    /**
     * Trades the token for a new one with a fresh lifetime. The session (and every socket bound to
     * it) carries on; the old token stops working at once. Emits `refresh` with the new Session.
     * With `autoRefresh` (the default) the client does this itself when the server warns that the
     * token is about to expire.
     * @returns {Promise<Session>}
     */
    refresh(): Promise<Session>;
    /**
     * Revokes the token on the server, which closes every socket that used it (code 4401), and
     * forgets the session. Resolves once the server has confirmed; the session is forgotten even
     * when the server cannot be reached.
     * @returns {Promise<void>}
     */
    logout(): Promise<void>;
    /**
     * Opens a protected WebSocket at `path` and authenticates it with the session's token (a first
     * `auth` frame). Resolves with the open socket once the server has accepted the token; attach
     * your listeners right after the `await`, and no frame is missed. `logout` closes it.
     * @param {string} path
     * @returns {Promise<WebSocket>}
     */
    openSocket(path: string): Promise<WebSocket>;
    /**
     * `fetch` with `Authorization: Bearer <token>`; `path` is resolved against the server's URL.
     * @param {string} path
     * @param {RequestInit} [init]
     * @returns {Promise<Response>}
     */
    fetch(path: string, init?: RequestInit): Promise<Response>;
    /**
     * `GET /api/me`: who the server says the token belongs to, and when it expires.
     * @returns {Promise<{ user: User, expiresAt: number }>}
     */
    me(): Promise<{
        user: User;
        expiresAt: number;
    }>;
    /**
     * Resumes the session this tab kept in `sessionStorage` (see `persist`), with no passkey
     * prompt: the stored token signs the ceremony socket in (`auth`) and is replaced at once
     * (`refresh`), so a token read from storage earlier is dead by the time the page runs. The same
     * server session carries on: a reload opens no new one. Resolves with the Session (`via:
     * "restored"`), or `null` when nothing was stored or the server no longer accepts it (it is
     * then forgotten). Rejects, keeping what was stored, when the server cannot be reached.
     * @returns {Promise<Session | null>}
     */
    restore(): Promise<Session | null>;
    /**
     * The signed-in account's passkeys, oldest first. Also tells the browser's passkey manager
     * which passkeys the server still accepts (`signalAllAcceptedCredentials`).
     * @returns {Promise<Passkey[]>}
     */
    passkeys(): Promise<Passkey[]>;
    /**
     * Renames one of the account's passkeys (1 to 64 characters).
     * @param {string} credentialId
     * @param {string} label
     * @returns {Promise<Passkey>}
     */
    renamePasskey(credentialId: string, label: string): Promise<Passkey>;
    /**
     * Deletes one of the account's passkeys. The sessions it opened end with it (this one too,
     * when it was opened by that passkey) unless `keepSessions`; the account's last passkey is
     * refused (`last_passkey`) unless `allowLast`. Then tells the browser's passkey manager which
     * passkeys are left (`signalAllAcceptedCredentials`), so the deleted one stops being offered.
     * @param {string} credentialId
     * @param {{ allowLast?: boolean, keepSessions?: boolean }} [options]
     * @returns {Promise<{ credentialId: string, sessionsEnded: number }>}
     */
    deletePasskey(credentialId: string, options?: {
        allowLast?: boolean;
        keepSessions?: boolean;
    }): Promise<{
        credentialId: string;
        sessionsEnded: number;
    }>;
    /**
     * Adds a passkey to the signed-in account (another device, or a passkey manager): the
     * browser's create prompt, with the account's passkeys excluded. The session carries on.
     * @param {{ signal?: AbortSignal }} [options]
     * @returns {Promise<Passkey>} the new passkey
     */
    addPasskey(options?: {
        signal?: AbortSignal;
    }): Promise<Passkey>;
    /**
     * The account's sessions, newest first; `current` marks this client's.
     * @returns {Promise<SessionInfo[]>}
     */
    sessions(): Promise<SessionInfo[]>;
    /**
     * Ends one session of the account; its sockets close (4401) at once. Ending this client's
     * own session signs it out.
     * @param {string} sessionId
     * @returns {Promise<void>}
     */
    endSession(sessionId: string): Promise<void>;
    /**
     * Ends every session of the account but this client's.
     * @returns {Promise<number>} how many ended
     */
    endOtherSessions(): Promise<number>;
    /**
     * Changes the account's display name, and tells the browser's passkey manager
     * (`signalCurrentUserDetails`) so its list shows the new one. Emits `user`.
     * @param {{ displayName: string }} changes
     * @returns {Promise<User>}
     */
    updateAccount(changes: {
        displayName: string;
    }): Promise<User>;
    /**
     * Deletes the signed-in account: its passkeys, sessions (every socket closes) and recovery
     * codes. `confirm` must be the username, as the person typed it. Then tells the browser's
     * passkey manager that the account has no passkeys left here, and signs this client out.
     * @param {string} confirm
     * @returns {Promise<void>}
     */
    deleteAccount(confirm: string): Promise<void>;
    /**
     * How many recovery codes the account has left.
     * @returns {Promise<RecoveryStatus>}
     */
    recoveryStatus(): Promise<RecoveryStatus>;
    /**
     * Makes a new set of one-time recovery codes, replacing the old ones. Show them to the person
     * once and let them save them: the server keeps only slow hashes, and cannot show them again.
     * @returns {Promise<string[]>}
     */
    createRecoveryCodes(): Promise<string[]>;
    /**
     * Recovers an account whose passkeys are lost: a recovery code (spent by this) signs in to a
     * short session that may only add a passkey, and this adds one with the browser's create
     * prompt, which signs in. Resolves with the Session (`via: "recovery"`).
     * @param {string} username
     * @param {string} code
     * @param {{ signal?: AbortSignal }} [options]
     * @returns {Promise<Session>}
     */
    recover(username: string, code: string, options?: {
        signal?: AbortSignal;
    }): Promise<Session>;
    /** Closes every socket this client opened, without signing out on the server. */
    close(): void;
    #private;
}
export type User = {
    /**
     * the account's id (a UUID)
     */
    id: string;
    /**
     * the username, as it was spelled at sign-up
     */
    name: string;
    displayName: string;
};
export type Session = {
    user: User;
    /**
     * the bearer token (64 hex digits); keep it secret
     */
    token: string;
    /**
     * unix seconds: the token's absolute end of life
     */
    expiresAt: number;
    /**
     * how this session
     * was obtained: a ceremony, a reload that found it in `sessionStorage`, or a recovery code
     */
    via: "register" | "login" | "autofill" | "restored" | "recovery";
};
/**
 * one passkey of the signed-in account (`passkeys.list`)
 */
export type Passkey = {
    /**
     * the credential id, base64url
     */
    id: string;
    /**
     * its name: given by its owner, else the authenticator model's
     */
    label: string;
    /**
     * unix seconds
     */
    createdAt: number;
    /**
     * unix seconds of its last sign-in
     */
    lastUsedAt: number | null;
    /**
     * it can be synced (a passkey provider's, not one device's)
     */
    backupEligible: boolean;
    /**
     * it is synced right now
     */
    backedUp: boolean;
    /**
     * the authenticator model's AAGUID
     */
    aaguid: string | null;
    /**
     * the model's name when the AAGUID is a known one
     */
    authenticator: string | null;
};
/**
 * one session of the signed-in account (`sessions.list`)
 */
export type SessionInfo = {
    id: string;
    createdAt: number;
    lastUsedAt: number;
    expiresAt: number;
    /**
     * of the request that opened it
     */
    userAgent: string | null;
    /**
     * ditto
     */
    address: string | null;
    /**
     * the passkey that opened it
     */
    credentialId?: string | undefined;
    /**
     * no token: it lives as long as its socket
     */
    socketOnly: boolean;
    /**
     * the session of this client
     */
    current: boolean;
};
export type RecoveryStatus = {
    /**
     * unused recovery codes
     */
    remaining: number;
    /**
     * when the current set was made, unix seconds
     */
    createdAt: number | null;
};
/**
 * `detail` of the `signal` event
 */
export type SignalEvent = {
    method: "signalUnknownCredential" | "signalAllAcceptedCredentials" | "signalCurrentUserDetails";
    /**
     * what was (or would have been) passed
     */
    options: object;
    /**
     * whether this browser has the method (it was called only then)
     */
    supported: boolean;
};
export type ClientOptions = {
    /**
     * the server's http(s) URL; default: this page's origin
     */
    baseUrl?: string | undefined;
    /**
     * the ceremony socket's path; default "/ws"
     */
    socketPath?: string | undefined;
    /**
     * how long to wait for each server reply; default 10000
     */
    timeoutMs?: number | undefined;
    /**
     * refresh the token when the server warns that it is about to
     * expire (an `expiring` frame), so sockets outlive any one token; default true
     */
    autoRefresh?: boolean | undefined;
    /**
     * keep the session in this tab's `sessionStorage`, so a
     * reload stays signed in (`restore()`); the token is replaced at every restore. Default
     * "session"; `false` keeps it in memory only (see docs/web-client.md for the trade-off)
     */
    persist?: false | "session" | undefined;
    /**
     * tell the browser's passkey manager what the server knows
     * (WebAuthn Signal API, where the browser has it); default true
     */
    signals?: boolean | undefined;
};
