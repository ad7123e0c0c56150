/** Thrown for invalid configuration; `optionName` is the option or variable at fault. */
export class OidcConfigError extends TypeError {
  override readonly name = "OidcConfigError";
  constructor(readonly optionName: string, problem: string) {
    super(`ioserver-oidc: ${optionName} ${problem}`);
  }
}
