/**
 * Loading panva's `oidc-provider` (v8, the newest line that runs on Node 20)
 * with just enough types for the demo.
 *
 * The package ships no TypeScript declarations. Instead of pulling in
 * `@types/oidc-provider`, the demo describes the small slice of the API it
 * uses. If you copy this demo into a project that installs
 * `@types/oidc-provider`, you can replace this file with a plain
 * `import Provider, { errors } from "oidc-provider"`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** What `provider.interactionDetails()` resolves to (an `Interaction` model). */
export interface Interaction {
  /** The id in the `/interaction/:uid` URL. */
  uid: string;
  /** Which prompt the provider needs answered (`login` or `consent`) and why. */
  prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
  /** The authorization request parameters (`client_id`, `scope`, `resource`, `login_hint`, …). */
  params: Record<string, unknown>;
  /** Set when the end-user already has a session at the provider. */
  session?: { accountId?: string };
  /** The grant already established for this client in this session, if any. */
  grantId?: string;
}

/** A `Grant`: what the end-user allowed a client to obtain (scopes, claims, resource scopes). */
export interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  rejectResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

export interface Provider {
  /** The Koa app's request listener: every route of the provider (`/auth`, `/token`, `/jwks`, discovery, …). */
  callback(): (req: IncomingMessage, res: ServerResponse) => unknown;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
  /** Stores the interaction result and answers with a `303` back to the authorization endpoint. */
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: {
    new (properties: { accountId: string; clientId: string }): Grant;
    find(id: string): Promise<Grant | undefined>;
  };
}

/** The error classes used by the demo; all of them carry an OAuth `error` code and a `statusCode`. */
type OAuthErrorClass = new (description?: string, detail?: string) => Error & { error: string; statusCode: number };

export interface OidcProviderModule {
  default: new (issuer: string, configuration: Record<string, unknown>) => Provider;
  errors: {
    InvalidTarget: OAuthErrorClass;
    SessionNotFound: OAuthErrorClass;
  };
}

/** `import("oidc-provider")`, typed with the slice above (a non-literal specifier keeps TypeScript from looking for declarations). */
export async function loadOidcProvider(): Promise<OidcProviderModule> {
  const specifier: string = "oidc-provider";
  return (await import(specifier)) as OidcProviderModule;
}
