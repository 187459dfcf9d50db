/**
 * Header fields as received: a flat list `[name, value, name, value, ...]` (Node's rawHeaders
 * shape), names in their original case and order, so proxies forward them unchanged.
 * Lookups are case-insensitive and linear: requests carry a few dozen fields at most, and a
 * scan beats building a map for every request.
 */
export type HeaderList = string[]

/** The first value of a field, or undefined. */
export function getHeader(headers: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() === lowerName) return headers[i + 1]
  }
  return undefined
}

/** Every value of a field, in order. */
export function getHeaderValues(headers: readonly string[], lowerName: string): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() === lowerName) out.push(headers[i + 1] as string)
  }
  return out
}

/** Replaces every instance of a field with one value (appends when absent). */
export function setHeader(headers: string[], name: string, value: string): void {
  removeHeader(headers, name.toLowerCase())
  headers.push(name, value)
}

export function removeHeader(headers: string[], lowerName: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if ((headers[i] as string).toLowerCase() === lowerName) headers.splice(i, 2)
  }
}
