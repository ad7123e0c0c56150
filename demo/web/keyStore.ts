/// <reference lib="dom" />
/**
 * Where the page keeps its DPoP key pair: IndexedDB, as a structured clone of
 * the WebCrypto `CryptoKeyPair`. A non-extractable private key can be stored
 * and read back this way, but never exported: no script, this page's
 * included, can read its bytes; it can only ask the browser to sign with it.
 *
 * The key must outlive the trip to the provider's login page and back (the
 * authorization code is bound to it) and a reload (the tokens in
 * sessionStorage are bound to it). IndexedDB is shared by every tab of the
 * origin, sessionStorage is not: each tab stores its key under an id of its
 * own, kept in its sessionStorage, so that signing in in one tab does not
 * replace the key of another. A tab closed while signed in leaves its key
 * behind; the next sign-in deletes the keys older than the longest session
 * the provider grants.
 */

const DB_NAME = "ioserver-oidc-demo";
const STORE = "dpop-keys";
const KEY_ID = "ioserver-oidc-demo.dpop-key-id";
/** The provider's refresh tokens live 8 hours at most: no key is of use for longer. */
const MAX_KEY_AGE_MS = 8 * 3600 * 1000;

/** What the store holds under a tab's id. */
interface StoredKey {
  keyPair: CryptoKeyPair;
  createdAt: number;
}

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error("IndexedDB: cannot open the key store"));
  });
}

async function run<T>(mode: IDBTransactionMode, action: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = action(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(request.result as T);
      transaction.onerror = () => reject(transaction.error ?? new Error("IndexedDB: the key store failed"));
      transaction.onabort = () => reject(transaction.error ?? new Error("IndexedDB: the key store transaction was aborted"));
    });
  } finally {
    db.close();
  }
}

/**
 * A new ES256 key pair for a sign-in: the private key non-extractable, the
 * public key exportable (as every WebCrypto public key), stored for this tab
 * in place of its previous one.
 */
export async function newKeyPair(): Promise<CryptoKeyPair> {
  await clearKeyPair();
  await deleteStaleKeys();
  const keyPair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const id = crypto.randomUUID();
  const stored: StoredKey = { keyPair, createdAt: Date.now() };
  await run("readwrite", (store) => store.put(stored, id));
  sessionStorage.setItem(KEY_ID, id);
  return keyPair;
}

/** Deletes the keys left behind by tabs closed while signed in, once no token bound to them can be alive. */
async function deleteStaleKeys(): Promise<void> {
  const cutoff = Date.now() - MAX_KEY_AGE_MS;
  await run("readwrite", (store) => {
    const cursor = store.openCursor();
    cursor.onsuccess = () => {
      const entry = cursor.result;
      if (entry === null) return;
      const { createdAt } = (entry.value ?? {}) as Partial<StoredKey>;
      if (typeof createdAt !== "number" || createdAt < cutoff) entry.delete();
      entry.continue();
    };
    return cursor;
  });
}

/** This tab's key pair, or null when it has none (signed out, or the tab was never signed in). */
export async function loadKeyPair(): Promise<CryptoKeyPair | null> {
  const id = sessionStorage.getItem(KEY_ID);
  if (id === null) return null;
  const stored = await run<StoredKey | undefined>("readonly", (store) => store.get(id));
  const keyPair = stored?.keyPair;
  return keyPair?.privateKey && keyPair.publicKey ? keyPair : null;
}

/** Forgets this tab's key pair (sign-out): the tokens bound to it are useless from now on. */
export async function clearKeyPair(): Promise<void> {
  const id = sessionStorage.getItem(KEY_ID);
  sessionStorage.removeItem(KEY_ID);
  if (id !== null) await run("readwrite", (store) => store.delete(id));
}
