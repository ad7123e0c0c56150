/** A minimal cookie jar for one user agent driving a provider's pages with fetch. */
export class CookieJar {
  readonly #cookies = new Map<string, string>();

  /** Keep the response's Set-Cookie values; expired ones are removed. */
  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = "", ...attributes] = line.split(";");
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((attribute) => {
        const [key = "", raw = ""] = attribute.split("=").map((part) => part.trim());
        return (key.toLowerCase() === "max-age" && Number(raw) <= 0) || (key.toLowerCase() === "expires" && Date.parse(raw) <= Date.now());
      });
      if (expired || value === "") this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  /** The Cookie request header. */
  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }
}
