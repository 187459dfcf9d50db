import type { LogFormat } from './config/model.js'
import type { VariableSource } from './variables.js'

/**
 * Variables whose values are text decoded from UTF-8 ($uri and what is built from it); every
 * other value holds one byte a character (request line and fields are read as latin1).
 */
const UTF8_VALUES = new Set(['uri', 'document_uri', 'request_filename', 'document_root'])

/**
 * One access-log line as nginx's ngx_http_log_module writes it, as a byte string (one
 * character a byte, written as latin1): literal text as written in the file, each variable's
 * value escaped by the format's `escape=`:
 * - default: `"`, `\`, bytes below 0x20 and from 0x7f up as `\xHH` (ngx_http_log_escape);
 *   a variable with no value as `-`;
 * - json: `"` `\` and control bytes as JSON escapes (`\u00HH` for the unnamed ones), other
 *   bytes as they are (ngx_escape_json); no value as nothing;
 * - none: values as they are; no value as nothing.
 * So no CR, LF or other control byte from a request reaches a line unescaped unless the
 * configuration asks for `escape=none`.
 */
export function formatLine(f: LogFormat, vars: VariableSource): string {
  let s = ''
  for (const p of f.template) {
    if (typeof p === 'string') {
      s += ascii(p) ? p : Buffer.from(p).toString('latin1')
      continue
    }
    const v = vars.get(p.v)
    if (v === '') {
      if (f.escape === 'default') s += '-'
      continue
    }
    const bytes = UTF8_VALUES.has(p.v) && !ascii(v) ? Buffer.from(v).toString('latin1') : toBytes(v)
    s += f.escape === 'default' ? escapeDefault(bytes) : f.escape === 'json' ? escapeJson(bytes) : bytes
  }
  return s
}

function ascii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e) return false
  return true
}

/** A latin1 value stays as it is; a character past 0xff (from a config literal) becomes its UTF-8 bytes. */
function toBytes(v: string): string {
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) > 0xff) return Buffer.from(v).toString('latin1')
  return v
}

const HEX = '0123456789ABCDEF'

function escapeDefault(b: string): string {
  let out = ''
  let from = 0
  for (let i = 0; i < b.length; i++) {
    const c = b.charCodeAt(i)
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) continue
    out += `${b.slice(from, i)}\\x${HEX[c >> 4]}${HEX[c & 15]}`
    from = i + 1
  }
  return from === 0 ? b : out + b.slice(from)
}

const JSON_NAMED: Record<number, string> = { 34: '\\"', 92: '\\\\', 10: '\\n', 13: '\\r', 9: '\\t', 8: '\\b', 12: '\\f' }

function escapeJson(b: string): string {
  let out = ''
  let from = 0
  for (let i = 0; i < b.length; i++) {
    const c = b.charCodeAt(i)
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue
    out += b.slice(from, i) + (JSON_NAMED[c] ?? `\\u00${HEX[c >> 4]}${HEX[c & 15]}`)
    from = i + 1
  }
  return from === 0 ? b : out + b.slice(from)
}
