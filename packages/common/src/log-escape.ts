/**
 * A value from the network made safe for one log line, as varnishncsa writes it (VSB_quote with
 * VSB_QUOTE_ESCHEX, varnish-cache lib/libvarnish/vsb.c): `"` and `\` get a backslash, tab, CR
 * and LF read `\t`, `\r`, `\n`, every other byte below 0x20 or above 0x7e reads `\xHH`. A client
 * can then neither end the line nor forge a field. Strings are latin1 (one char a byte, as the
 * HTTP core reads heads); a char above 0xff is written as its UTF-8 bytes.
 */
export function escapeLogValue(value: string): string {
  let i = 0
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) break
  }
  if (i === value.length) return value
  let out = value.slice(0, i)
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 0x22 || c === 0x5c) out += `\\${value[i]}`
    else if (c === 0x09) out += '\\t'
    else if (c === 0x0a) out += '\\n'
    else if (c === 0x0d) out += '\\r'
    else if (c >= 0x20 && c <= 0x7e) out += value[i]
    else if (c <= 0xff) out += hex(c)
    else {
      const cp = value.codePointAt(i) as number
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out += hex(b)
      if (cp > 0xffff) i++
    }
  }
  return out
}

function hex(b: number): string {
  return `\\x${b.toString(16).padStart(2, '0')}`
}
