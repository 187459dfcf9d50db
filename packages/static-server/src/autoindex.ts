import { lstat, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { logContext } from './log-context.js'
import type { RequestState } from './request-state.js'
import { baseHeaders, finishHeaders, sendWhole } from './respond.js'

/**
 * ngx_http_autoindex_module: a directory's listing as HTML (nginx's exact layout), XML, JSON
 * or JSONP (`?callback=`), with `autoindex_exact_size` and `autoindex_localtime` for the HTML.
 * Entries whose names begin with a dot are left out; directories come first, then byte order.
 */
interface Entry {
  name: string
  dir: boolean
  file: boolean
  size: number
  mtime: Date
}

/** The answer, or a status (400 for a JSONP callback nginx refuses). */
export async function autoindex(st: RequestState, dirPath: string, log: (level: string, msg: string) => void): Promise<'done' | number> {
  let format = st.conf.autoindexFormat
  let callback = ''
  if (format === 'jsonp') {
    // ngx_http_autoindex_jsonp_callback: the raw argument, at most 128 of [A-Za-z0-9_.].
    callback = argument(st.args, 'callback')
    if (callback.length > 128 || !CALLBACK.test(callback)) {
      log('info', `client sent ${callback.length > 128 ? 'too long' : 'invalid'} callback name: "${callback}"${logContext(st)}`)
      return 400
    }
    if (callback === '') format = 'json'
  }
  const entries = await readEntries(dirPath)
  let type: string
  let body: Buffer
  if (format === 'json' || format === 'jsonp') {
    type = format === 'json' ? 'application/json' : 'application/javascript'
    body = Buffer.from(json(entries, format === 'jsonp' ? callback : undefined), 'latin1')
  } else if (format === 'xml') {
    type = 'text/xml; charset=utf-8'
    body = Buffer.from(xml(entries), 'latin1')
  } else {
    type = 'text/html'
    body = html(st, entries)
  }
  // nginx streams the listing (chunked), never with a Content-Length.
  sendWhole(st, 200, finishHeaders(st, 200, [...baseHeaders(), 'Content-Type', type]), body, undefined, { streamed: true })
  return 'done'
}

const CALLBACK = /^[A-Za-z0-9_.]*$/

/** ngx_http_arg: the first `name=` argument's value as sent (not unescaped). */
function argument(args: string, name: string): string {
  for (const part of args.split('&')) if (part.startsWith(`${name}=`)) return part.slice(name.length + 1)
  return ''
}

/** Names as raw bytes (one char a byte), stat followed through links, lstat for a broken one. */
async function readEntries(dirPath: string): Promise<Entry[]> {
  const names = await readdir(dirPath, { encoding: 'buffer' })
  const rows = await Promise.all(
    names
      .filter((n) => n[0] !== 0x2e)
      .map(async (n) => {
        const full = join(dirPath, n.toString())
        const info = await stat(full).catch(() => lstat(full).catch(() => undefined))
        return {
          name: n.toString('latin1'),
          dir: info?.isDirectory() ?? false,
          file: info?.isFile() ?? false,
          size: info?.size ?? 0,
          mtime: info?.mtime ?? new Date(0),
        }
      }),
  )
  return rows.sort((a, b) => (a.dir === b.dir ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.dir ? -1 : 1))
}

/** ngx_http_autoindex_json: one entry a line, CRLF-separated, the last comma dropped. */
function json(entries: readonly Entry[], callback: string | undefined): string {
  const rows = entries.map((e) => {
    const kind = e.dir ? 'directory' : e.file ? 'file' : 'other'
    const tail = e.file ? `", "size":${e.size}` : '"'
    return `\r\n{ "name":"${escapeJson(e.name)}", "type":"${kind}", "mtime":"${e.mtime.toUTCString()}${tail} }`
  })
  const list = `[${rows.join(',')}\r\n]`
  return callback === undefined ? list : `/* callback */\r\n${callback}(${list});`
}

/** ngx_http_autoindex_xml: the type as the element, GMT mtime, size for files. */
function xml(entries: readonly Entry[]): string {
  let s = '<?xml version="1.0"?>\r\n<list>\r\n'
  for (const e of entries) {
    const kind = e.dir ? 'directory' : e.file ? 'file' : 'other'
    const mtime = `${e.mtime.toISOString().slice(0, 19)}Z`
    s += `<${kind} mtime="${mtime}"${e.file ? ` size="${e.size}"` : ''}>${escapeHtml(e.name)}</${kind}>\r\n`
  }
  return `${s}</list>\r\n`
}

/**
 * ngx_http_autoindex_html: names cut at 50 columns (characters under `charset utf-8`, bytes
 * otherwise, so a long name may be cut mid-character), then the date (GMT, or nginx's own
 * time zone with autoindex_localtime) and the exact size or nginx's rounded K/M/G.
 */
function html(st: RequestState, entries: readonly Entry[]): Buffer {
  const utf8 = st.conf.charset?.toLowerCase() === 'utf-8'
  // The byte names as text: UTF-8 decoded when counted in characters.
  const text = (latin1: string) => (utf8 ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1)
  const uri = utf8 ? st.uri : Buffer.from(st.uri).toString('latin1')
  const title = escapeHtml(uri)
  // tp->gmtoff: the offset now, applied to every entry's time.
  const offsetMs = st.conf.autoindexLocaltime ? -new Date().getTimezoneOffset() * 60_000 : 0
  let body = `<html>\r\n<head><title>Index of ${title}</title></head>\r\n<body>\r\n<h1>Index of ${title}</h1><hr><pre><a href="../">../</a>\r\n`
  for (const e of entries) {
    const name = e.dir ? `${e.name}/` : e.name
    const units = [...text(name)]
    const shown = units.length > 50 ? `${units.slice(0, 47).join('')}..>` : units.join('')
    const pad = ' '.repeat(Math.max(1, 51 - Math.min(units.length, 50)))
    const size = st.conf.autoindexExactSize ? (e.dir ? '-' : String(e.size)).padStart(19) : e.dir ? '      -' : roundedSize(e.size)
    body += `<a href="${hrefEscape(e.name)}${e.dir ? '/' : ''}">${escapeHtml(shown)}</a>${pad}${htmlDate(new Date(e.mtime.getTime() + offsetMs))} ${size}\r\n`
  }
  body += '</pre><hr></body>\r\n</html>\r\n'
  return utf8 ? Buffer.from(body) : Buffer.from(body, 'latin1')
}

/** autoindex_exact_size off: K above 9999 bytes, M and G from their unit, each rounded half up. */
function roundedSize(n: number): string {
  const G = 1024 * 1024 * 1024
  const M = 1024 * 1024
  let size: number
  let scale = ''
  if (n > G - 1) [size, scale] = [Math.floor(n / G) + (n % G > G / 2 - 1 ? 1 : 0), 'G']
  else if (n > M - 1) [size, scale] = [Math.floor(n / M) + (n % M > M / 2 - 1 ? 1 : 0), 'M']
  else if (n > 9999) [size, scale] = [Math.floor(n / 1024) + (n % 1024 > 511 ? 1 : 0), 'K']
  else size = n
  return scale ? `${String(size).padStart(6)}${scale}` : ` ${String(size).padStart(6)}`
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
function htmlDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`
}

function escapeHtml(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')
}

/** ngx_escape_json: `"` `\` and control bytes escaped, other bytes as they are. */
function escapeJson(s: string): string {
  let out = ''
  for (const ch of s) {
    const c = ch.charCodeAt(0)
    if (ch === '"' || ch === '\\') out += `\\${ch}`
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (ch === '\b') out += '\\b'
    else if (ch === '\f') out += '\\f'
    else if (c < 0x20) out += `\\u00${c.toString(16).padStart(2, '0')}`
    else out += ch
  }
  return out
}

/** ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT) for the href: all but ALPHA, DIGIT, `-._~`. */
function hrefEscape(s: string): string {
  let out = ''
  for (const b of Buffer.from(s, 'latin1')) {
    const keep = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e
    out += keep ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}
