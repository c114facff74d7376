/** The signed-in session every page reads: the API client and a way out when the key fails. */
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Api } from "./api.ts";

export type Tenant = { id: string; name: string };

export type Session = {
  api: Api;
  tenant: Tenant;
  /** Back to the sign-in form, saying why when it was not the user's choice. */
  signOut(reason?: string): void;
};

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in page");
  return session;
}
