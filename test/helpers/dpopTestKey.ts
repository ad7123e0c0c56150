/**
 * DPoP proofs (RFC 9449) signed in a test: what the demo page's
 * non-extractable WebCrypto key does in the browser, on top of the proof
 * helpers of `dpop.ts`.
 */
import type { JWK } from "jose";
import { proof, proofKey, type ProofKey } from "./dpop.js";

/**
 * A DPoP key pair made in the test (ES256, with jose), standing in for the
 * page's non-extractable WebCrypto key: it signs RFC 9449 proofs.
 */
export class DpopTestKey {
  private constructor(private readonly key: ProofKey) {}

  static async create(): Promise<DpopTestKey> {
    return new DpopTestKey(await proofKey());
  }

  /** The public JWK embedded in every proof's header. */
  get publicJwk(): JWK {
    return this.key.jwk;
  }

  /** RFC 7638 SHA-256 thumbprint: the `cnf.jkt` of the tokens bound to this key. */
  get jkt(): string {
    return this.key.jkt;
  }

  /** A fresh proof for one request: `htu` without query and fragment, `ath` when a token goes with it. */
  proof(options: { method: string; url: string; accessToken?: string; nonce?: string }): Promise<string> {
    const url = new URL(options.url);
    return proof(this.key, { htm: options.method, htu: `${url.origin}${url.pathname}`, token: options.accessToken, nonce: options.nonce });
  }

  /** The proof a Socket.IO handshake or in-band refresh carries: `GET` of the engine endpoint `<origin>/socket.io/`. */
  socketProof(origin: string, accessToken: string): Promise<string> {
    return this.proof({ method: "GET", url: `${origin}/socket.io/`, accessToken });
  }
}
