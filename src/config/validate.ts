/**
 * Validators for single options. Each throws `OidcConfigError` naming the
 * option, or the environment variable that supplied it (`names`).
 */
import type { OidcConfigInput } from "../types.js";
import { OidcConfigError } from "./errors.js";

/** The environment variable that supplied each option, when it came from the environment. */
export type Names = Partial<Record<keyof OidcConfigInput, string>>;

export function label(key: keyof OidcConfigInput, names: Names): string {
  return names[key] ?? `"${key}"`;
}

export function httpUrl(value: unknown, key: keyof OidcConfigInput, names: Names): string {
  if (typeof value !== "string" || value.trim() === "") throw new OidcConfigError(label(key, names), "is required (an http or https URL)");
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new OidcConfigError(label(key, names), `is not a valid URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new OidcConfigError(label(key, names), `must use http or https, got ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") throw new OidcConfigError(label(key, names), "must not contain credentials");
  return value.trim();
}

export function nonEmpty(value: unknown, key: keyof OidcConfigInput, names: Names): string {
  if (typeof value !== "string" || value.trim() === "") throw new OidcConfigError(label(key, names), "is required (a non-empty string)");
  return value.trim();
}

export function duration(value: unknown, fallback: number, key: keyof OidcConfigInput, names: Names, integer = true): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the message echoes the rejected value as given; an object printing as [object Object] is acceptable there
    throw new OidcConfigError(label(key, names), `must be a non-negative ${integer ? "integer" : "number"}, got ${String(value)}`);
  }
  return value;
}

export function flag(value: unknown, fallback: boolean, key: keyof OidcConfigInput, names: Names): boolean {
  if (value === undefined) return fallback;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the message echoes the rejected value as given; an object printing as [object Object] is acceptable there
  if (typeof value !== "boolean") throw new OidcConfigError(label(key, names), `must be a boolean, got ${String(value)}`);
  return value;
}

export function stripTrailingSlashes(value: string): string {
  return value.replace(/\/+$/, "");
}

export function audienceList(value: unknown, key: string): readonly string[] {
  if (typeof value === "string" && value.trim() !== "") return Object.freeze([value.trim()]);
  if (Array.isArray(value) && value.length > 0 && value.every((a) => typeof a === "string" && a !== "")) return Object.freeze([...(value as string[])]);
  throw new OidcConfigError(key, "must be a non-empty string or array of non-empty strings");
}

export function claimList(value: unknown, key: string): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((c) => typeof c === "string" && c !== "")) {
    throw new OidcConfigError(key, "must be an array of claim names");
  }
  return value as string[];
}
