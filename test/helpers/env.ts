/** The environment variables the package's configuration reads, set and cleared per test. */

export const OIDC_ENV_VARS = [
  "AUTH_SERVICE_URL",
  "AUTH_SERVICE_APP_SLUG",
  "AUTH_SERVICE_JWKS_URI",
  "AUTH_SERVICE_ISSUER",
  "AUTH_SERVICE_AUDIENCE",
  "OIDC_ISSUER",
  "OIDC_AUDIENCE",
  "OIDC_JWKS_URI",
] as const;

/** Exactly these configuration variables (every other one of OIDC_ENV_VARS unset). */
export function setOidcEnv(values: Record<string, string> = {}): void {
  for (const name of OIDC_ENV_VARS) delete process.env[name];
  Object.assign(process.env, values);
}
