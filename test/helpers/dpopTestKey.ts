/**
 * DPoP proofs (RFC 9449) signed in a test, with jose: what the demo page's
 * non-extractable WebCrypto key does in the browser.
 */
import { createHash, randomUUID } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";

/**
 * A DPoP key pair made in the test (ES256, with jose), standing in for the
 * page's non-extractable WebCrypto key: it signs RFC 9449 proofs.
 */
export class DpopTestKey {
  private constructor(
    private readonly privateKey: CryptoKey,
    /** The public JWK embedded in every proof's header. */
    readonly publicJwk: JWK,
    /** RFC 7638 SHA-256 thumbprint: the `cnf.jkt` of the tokens bound to this key. */
    readonly jkt: string,
  ) {}

  static async create(): Promise<DpopTestKey> {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const { kty, crv, x, y } = await exportJWK(publicKey);
    const publicJwk = { kty, crv, x, y } as JWK;
    return new DpopTestKey(privateKey, publicJwk, await calculateJwkThumbprint(publicJwk, "sha256"));
  }

  /** A fresh proof for one request: `htu` without query and fragment, `ath` when a token goes with it. */
  proof(options: { method: string; url: string; accessToken?: string; nonce?: string }): Promise<string> {
    const url = new URL(options.url);
    const claims: Record<string, string> = { htm: options.method, htu: `${url.origin}${url.pathname}`, jti: randomUUID() };
    if (options.accessToken !== undefined) claims.ath = createHash("sha256").update(options.accessToken).digest("base64url");
    if (options.nonce !== undefined) claims.nonce = options.nonce;
    return new SignJWT(claims).setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: this.publicJwk }).setIssuedAt().sign(this.privateKey);
  }

  /** The proof a Socket.IO handshake or in-band refresh carries: `GET` of the engine endpoint `<origin>/socket.io/`. */
  socketProof(origin: string, accessToken: string): Promise<string> {
    return this.proof({ method: "GET", url: `${origin}/socket.io/`, accessToken });
  }
}
