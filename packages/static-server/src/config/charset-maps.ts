import type { Ctx } from './directive-values.js'
import { NginxConfError } from './errors.js'
import type { CharsetModel, CharsetTable } from './model.js'
import type { Directive } from './parse-tree.js'

/** ngx_http_charset_default_types: what `charset` applies to when charset_types is not set. */
export const CHARSET_TYPES: ReadonlySet<string> = new Set(['text/html', 'text/xml', 'text/plain', 'text/vnd.wap.wml', 'application/javascript', 'application/rss+xml'])

/** nginx's NGX_UTF_LEN less its length byte: a `charset_map ... utf-8` value is at most 3 bytes. */
const UTF_MAX = 3

/** The charsets nginx knows (ngx_http_add_charset: every name charset_map, charset and source_charset write), and the tables. */
export function emptyCharsets(): CharsetModel {
  return { names: new Set(), tables: new Map() }
}

/** The name a charset is known by: nginx compares them case-insensitively (ngx_http_get_charset). */
export function charsetKey(name: string): string {
  return name.toLowerCase()
}

/**
 * `charset_map SRC DST { XX YY; ... }` as ngx_http_charset_map_block reads it: bytes of SRC to
 * bytes of DST (DST `utf-8`: a byte to its UTF-8 sequence in hex, at most three bytes). Bytes
 * 0-7F are themselves, unmapped bytes above become `?`. One map serves both directions.
 */
export function charsetMap(ctx: Ctx, d: Directive): void {
  const [src, dst] = d.args as [string, string]
  const cs = ctx.charsets
  const fail = (msg: string, at: Directive = d) => new NginxConfError(msg, at.file, at.line, at.name === d.name ? d.name : 'charset_map')
  if (charsetKey(src) === charsetKey(dst)) throw fail(`"charset_map" between the same charsets "${src}" and "${dst}"`)
  const key = `${charsetKey(src)}\0${charsetKey(dst)}`
  if (cs.tables.has(key) || cs.tables.has(`${charsetKey(dst)}\0${charsetKey(src)}`)) throw fail(`duplicate "charset_map" between "${src}" and "${dst}"`)
  // nginx reads a map from UTF-8 as a byte table and would recode with it as a UTF-8 one:
  // refused rather than garbage.
  if (charsetKey(src) === 'utf-8') throw fail('"charset_map" from "utf-8" is not supported by static-server: write it as "charset_map X utf-8"')
  cs.names.add(charsetKey(src))
  cs.names.add(charsetKey(dst))
  const toUtf8 = charsetKey(dst) === 'utf-8'
  const forward: (Buffer | number)[] = []
  for (let i = 0; i < 256; i++) forward.push(i < 128 ? (toUtf8 ? Buffer.from([i]) : i) : toUtf8 ? Buffer.from('?') : 0x3f)
  const backward = new Map<number, number>()
  for (let i = 0; i < 128; i++) backward.set(i, i)
  const byteBack = Buffer.alloc(256, 0x3f)
  for (let i = 0; i < 128; i++) byteBack[i] = i
  for (const line of d.block ?? []) {
    if (line.args.length !== 1) throw fail('invalid parameters number', line)
    const from = hex(line.name)
    if (from === undefined || from > 255) throw fail(`invalid value "${line.name}"`, line)
    const to = line.args[0] as string
    if (toUtf8) {
      const bytes: number[] = []
      if (to.length / 2 > UTF_MAX) throw fail(`invalid value "${to}"`, line)
      for (let i = 0; i < to.length; i += 2) {
        const b = hex(to.slice(i, i + 2))
        if (b === undefined || b > 255) throw fail(`invalid value "${to}"`, line)
        bytes.push(b)
      }
      const seq = Buffer.from(bytes)
      const cp = decodeUtf8(seq, 0)
      // ngx_utf8_decode of what was written: nginx keeps a code point up to FFFF for the way back.
      if (cp.value > 0xffff) throw fail(`invalid value "${to}"`, line)
      forward[from] = seq
      backward.set(cp.value, from)
    } else {
      const b = hex(to)
      if (b === undefined || b > 255) throw fail(`invalid value "${to}"`, line)
      forward[from] = b
      byteBack[b] = from
    }
  }
  const table: CharsetTable = toUtf8
    ? { kind: 'to-utf8', bytes: forward as Buffer[] }
    : { kind: 'bytes', bytes: Buffer.from(forward as number[]) }
  cs.tables.set(key, table)
  cs.tables.set(`${charsetKey(dst)}\0${charsetKey(src)}`, toUtf8 ? { kind: 'from-utf8', codes: backward } : { kind: 'bytes', bytes: byteBack })
}

/** ngx_hextoi: hex digits only, at least one. */
function hex(s: string): number | undefined {
  return /^[0-9a-fA-F]{1,8}$/.test(s) ? Number.parseInt(s, 16) : undefined
}

/**
 * ngx_utf8_decode at `at`: the code point and the bytes it took, or 0xFFFFFFFF (invalid) /
 * 0xFFFFFFFE (incomplete: `used` 0). As nginx, an invalid continuation byte is consumed too,
 * and a lead byte F0-FF reads three more.
 */
export function decodeUtf8(buf: Uint8Array, at: number): { value: number; used: number } {
  let u = buf[at] as number
  let len: number
  let valid: number
  if (u >= 0xf0) [u, valid, len] = [u & 0x07, 0xffff, 3]
  else if (u >= 0xe0) [u, valid, len] = [u & 0x0f, 0x7ff, 2]
  else if (u >= 0xc2) [u, valid, len] = [u & 0x1f, 0x7f, 1]
  else return { value: 0xffffffff, used: 1 }
  if (buf.length - at - 1 < len) return { value: 0xfffffffe, used: 0 }
  let used = 1
  while (len > 0) {
    const i = buf[at + used] as number
    used++
    if (i < 0x80) return { value: 0xffffffff, used }
    u = ((u << 6) | (i & 0x3f)) >>> 0
    len--
  }
  return { value: u > valid ? u : 0xffffffff, used }
}

/**
 * ngx_http_charset_merge_loc_conf and its postconfiguration: a location recoding between two
 * charsets it names (neither a variable) needs a charset_map between them, or nginx stops,
 * without a line.
 */
export function checkRecode(ctx: Ctx, charset: string | undefined, source: string | undefined, file: string): void {
  if (charset === undefined || source === undefined || charset.startsWith('$') || source.startsWith('$')) return
  const [c, s] = [charsetKey(charset), charsetKey(source)]
  if (c === s || ctx.charsets.tables.has(`${s}\0${c}`)) return
  throw new NginxConfError(`no "charset_map" between the charsets "${source}" and "${charset}"`, file, 0)
}
