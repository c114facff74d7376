/**
 * The API key, kept in this tab's session storage: pasted once, gone when the tab closes, never
 * in a cookie or in local storage that other tabs and later visits would share.
 */
const KEY = "revq.apiKey";

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function storeKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY);
}
