/**
 * How the resource server authenticates to the introspection endpoint
 * (RFC 7662 section 2.1 requires it): HTTP Basic or form fields with a client
 * secret (RFC 6749 section 2.3.1), or a JWT assertion signed with the
 * client's private key (`private_key_jwt`, RFC 7523 section 2.2 and 3, OpenID
 * Connect Core section 9). Assertions are signed by jose, one per request,
 * each with its own `jti` and a short life, so a captured one is useless
 * soon after and cannot be replayed to a server that remembers `jti`s.
 */
import { randomUUID } from "node:crypto";
import type { KeyObject } from "node:crypto";
import type { CryptoKey, JWK } from "jose";
import { loadJose } from "../jwt/jose.js";
import { ASYMMETRIC_ALGORITHMS } from "../config/defaults.js";

/** The client authentication methods supported. */
export type IntrospectionAuthMethod = "client_secret_basic" | "client_secret_post" | "private_key_jwt";

/** A signing key for `private_key_jwt`: a private JWK (with `d`), a private `KeyObject` or a `CryptoKey`. */
export type IntrospectionSigningKey = JWK | KeyObject | CryptoKey;

/** The credentials part of the introspector's options. */
export interface IntrospectionCredentials {
  /** The resource server's client id at the provider. */
  clientId: string;
  /** Default: `client_secret_basic` with a `clientSecret`, `private_key_jwt` with a `privateKey`. */
  clientAuthMethod?: IntrospectionAuthMethod | undefined;
  /** For `client_secret_basic` and `client_secret_post`. */
  clientSecret?: string | undefined;
  /** For `private_key_jwt`. */
  privateKey?: IntrospectionSigningKey | undefined;
  /** The assertion's `alg`. Default: the JWK's `alg`, else RS256 for RSA, ES256/384/512 for P-256/384/521, EdDSA for Ed25519. */
  signingAlg?: string | undefined;
  /** The assertion's `kid` header. Default: the JWK's `kid`, if any. */
  keyId?: string | undefined;
  /**
   * The assertion's `aud`: one string. Default: the issuer identifier, which
   * every provider accepts and which names nothing but the provider (an
   * endpoint URL taken from a document could name someone else's server).
   */
  assertionAudience?: string | undefined;
}

/** How long an assertion is valid, in seconds (it is used at once). */
const ASSERTION_LIFETIME = 60;

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** What a request carries to authenticate: extra headers and extra form fields. */
export interface ClientAuthentication {
  headers: Record<string, string>;
  fields: Record<string, string>;
}

/** Adds the client authentication to one request. Built once per introspector; validates the options eagerly. */
export type ClientAuthenticator = () => Promise<ClientAuthentication>;

/** RFC 6749 section 2.3.1: both halves are form-encoded before Basic encoding. */
function basic(clientId: string, secret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, "+");
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(secret)}`).toString("base64")}`;
}

function defaultAlg(jwk: JWK | undefined): string | undefined {
  if (jwk === undefined) return undefined;
  if (typeof jwk.alg === "string") return jwk.alg;
  if (jwk.kty === "RSA") return "RS256";
  if (jwk.kty === "EC") return { "P-256": "ES256", "P-384": "ES384", "P-521": "ES512" }[jwk.crv ?? ""];
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  return undefined;
}

function isJwk(key: IntrospectionSigningKey): key is JWK {
  return typeof (key as { kty?: unknown }).kty === "string";
}

/**
 * The authenticator for these credentials. Throws a `TypeError` naming the
 * option when they are incomplete or contradictory.
 */
export function createClientAuthenticator(credentials: IntrospectionCredentials, issuer: string): ClientAuthenticator {
  const { clientId, clientSecret, privateKey } = credentials;
  if (typeof clientId !== "string" || clientId === "") throw new TypeError("introspection: clientId must be a non-empty string");
  const method = credentials.clientAuthMethod ?? (privateKey !== undefined ? "private_key_jwt" : "client_secret_basic");
  if (method === "client_secret_basic" || method === "client_secret_post") {
    if (typeof clientSecret !== "string" || clientSecret === "") throw new TypeError(`introspection: clientSecret must be a non-empty string for ${method}`);
    if (privateKey !== undefined) throw new TypeError(`introspection: privateKey is not used with ${method}; remove it or set clientAuthMethod "private_key_jwt"`);
    if (method === "client_secret_basic") {
      const authorization = basic(clientId, clientSecret);
      return () => Promise.resolve({ headers: { authorization }, fields: {} });
    }
    return () => Promise.resolve({ headers: {}, fields: { client_id: clientId, client_secret: clientSecret } });
  }
  if (method !== "private_key_jwt") {
    throw new TypeError(`introspection: clientAuthMethod must be "client_secret_basic", "client_secret_post" or "private_key_jwt"`);
  }
  if (privateKey === undefined || privateKey === null || typeof privateKey !== "object") throw new TypeError("introspection: privateKey is required for private_key_jwt");
  if (clientSecret !== undefined) throw new TypeError("introspection: clientSecret is not used with private_key_jwt");
  const jwk = isJwk(privateKey) ? privateKey : undefined;
  if (jwk !== undefined && typeof jwk.d !== "string") throw new TypeError("introspection: privateKey must be a private key (its JWK has no \"d\")");
  const alg = credentials.signingAlg ?? defaultAlg(jwk);
  if (alg === undefined) throw new TypeError("introspection: signingAlg is required when it cannot be read from the privateKey JWK");
  if (!ASYMMETRIC_ALGORITHMS.includes(alg)) throw new TypeError(`introspection: signingAlg must be one of ${ASYMMETRIC_ALGORITHMS.join(", ")}`);
  const kid = credentials.keyId ?? (typeof jwk?.kid === "string" ? jwk.kid : undefined);
  const audience = credentials.assertionAudience ?? issuer;
  let key: Promise<KeyObject | CryptoKey | Uint8Array> | undefined;
  return async () => {
    const jose = await loadJose();
    key ??= jwk !== undefined ? jose.importJWK(jwk, alg) : Promise.resolve(privateKey as KeyObject | CryptoKey);
    const assertion = await new jose.SignJWT({})
      .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(audience)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${ASSERTION_LIFETIME}s`)
      .sign(await key);
    return { headers: {}, fields: { client_id: clientId, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion } };
  };
}
