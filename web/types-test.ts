// Compiled by `npm run check` (tsc, in CI) against wsauthn.d.ts: what an application written in
// TypeScript sees of the package. Not shipped.
import {
  WsauthnClient,
  WsauthnError,
  isAutofillAvailable,
  type Passkey,
  type Session,
  type SessionInfo,
  type SignalEvent,
} from "./wsauthn.js";

export async function example(): Promise<void> {
  const client = new WsauthnClient({ baseUrl: "https://auth.example.com", persist: "session" });
  const restored: Session | null = await client.restore();
  const session: Session = restored ?? (await client.login("alice@example.com"));
  const via: "register" | "login" | "autofill" | "restored" | "recovery" = session.via;
  const passkeys: Passkey[] = await client.passkeys();
  const renamed: Passkey = await client.renamePasskey(passkeys[0].id, "Work laptop");
  const { sessionsEnded }: { sessionsEnded: number } = await client.deletePasskey(renamed.id, { keepSessions: true });
  const added: Passkey = await client.addPasskey();
  const sessions: SessionInfo[] = await client.sessions();
  await client.endSession(sessions[0].id);
  const ended: number = await client.endOtherSessions();
  const codes: string[] = await client.createRecoveryCodes();
  const { remaining } = await client.recoveryStatus();
  const user = await client.updateAccount({ displayName: "Alice" });
  client.addEventListener("signal", (event) => {
    const detail = (event as CustomEvent<SignalEvent>).detail;
    console.log(detail.method, detail.supported);
  });
  if (await isAutofillAvailable()) client.autofill().catch(() => {});
  try {
    await client.recover("alice@example.com", codes[0]);
  } catch (e) {
    if (e instanceof WsauthnError && e.code === "recovery_failed") console.log(e.message, e.fromServer);
  }
  await client.deleteAccount(user.name);
  console.log(via, sessionsEnded, added.label, ended, remaining);
}
