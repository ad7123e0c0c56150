/// <reference lib="dom" />

/** The element with this id; index.html is the contract, so a missing one is a bug. */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`#${id} is missing from index.html`);
  return element as T;
}

export const time = (epochMs: number): string => new Date(epochMs).toLocaleTimeString();
