import { gzipSync } from 'node:zlib'
import type { Received, Script } from './raw-backend.js'

/**
 * The proxy corpus: cases derived from nginx's documentation of ngx_http_proxy_module and
 * ngx_http_upstream_module and from their sources (ngx_http_upstream.c's header handlers and
 * next-upstream logic, ngx_http_proxy_module.c's status line, header and chunked parsers,
 * proxy_redirect handlers), run under real nginx and under static-server with raw backends.
 *
 * In `loc`, `@P@` is the case's own prefix (`/c12`), `@I@` its id (`c12`), `@B@` the raw backend's port, `@B2@` a
 * second raw backend, `@D@` a port nobody listens on. The backend picks the case's answer by
 * the `cN` in the target it receives.
 */
export interface ProxyCase {
  area: Area
  name: string
  /** Location blocks (and anything else server-level) for this case. */
  loc: string
  /** http-level text (upstream blocks), with the same placeholders. */
  http?: string
  /** The backend's answer for this case. */
  script?: Script | ((r: Received) => Script)
  /** The request line target; default `@P@/x`. */
  path?: string
  method?: string
  /** Extra request header lines. */
  headers?: string[]
  body?: string
  /** The whole request, when it must be odd. */
  raw?: string
  /** Sends the request this many times (round robin, failures, keep-alive) and compares all. */
  times?: number
  /** Compare also what the backend received (request line, header lines, body). */
  upstreamRequest?: boolean
  /** Compare how many connections the backends accepted during the case. */
  connections?: boolean
  /** Header values that vary per run (timings): digits replaced before comparing. */
  timing?: boolean
}

export type Area = 'heads' | 'redirect' | 'fields' | 'intercept' | 'dir301' | 'framing' | 'vars' | 'accel' | 'upstream'

/** A raw answer: the status line, header lines and body exactly as a backend writes them. */
export function resp(status: string, headers: string[], body = '', eol = '\r\n'): string {
  return `${status}${eol}${headers.map((h) => `${h}${eol}`).join('')}${eol}${body}`
}
const ok = (headers: string[], body = 'ok\n') => resp('HTTP/1.1 200 OK', [...headers, `Content-Length: ${Buffer.byteLength(body)}`], body)
const closeBody = (status: string, headers: string[], body: string): Script => ({ bytes: resp(status, headers, body), close: true })
const PASS = 'location @P@/ { proxy_pass http://127.0.0.1:@B@; }'
const loc = (body: string) => `location @P@/ { proxy_pass http://127.0.0.1:@B@; ${body} }`

export function proxyCorpus(): ProxyCase[] {
  const c: ProxyCase[] = []
  const add = (k: ProxyCase) => c.push(k)

  // --- heads: names as written, reasons, status lines, header order -------------------------
  const heads: [string, string | Script][] = [
    ['mixed-case names', ok(['X-MiXeD-Case: 1', 'x-lower: 2', 'X-UPPER: 3', 'content-TYPE: text/plain'])],
    ['302 Moved Temporarily', resp('HTTP/1.1 302 Moved Temporarily', ['Location: /elsewhere', 'Content-Length: 0'])],
    ['odd reason phrase', ok([]).replace('200 OK', '200 Okey Dokey')],
    ['no reason phrase', resp('HTTP/1.1 200', ['Content-Length: 2'], 'ok')],
    ['reason phrase empty after space', resp('HTTP/1.1 200 ', ['Content-Length: 2'], 'ok')],
    ['404 with a reason of its own', resp('HTTP/1.1 404 Nothing Here', ['Content-Length: 5'], 'none\n')],
    ['status 299 unknown to nginx', resp('HTTP/1.1 299 Whatever', ['Content-Length: 2'], 'ok')],
    ['status 600', resp('HTTP/1.1 600 Beyond', ['Content-Length: 2'], 'ok')],
    ['status 099', resp('HTTP/1.1 099 Low', ['Content-Length: 2'], 'ok')],
    ['HTTP/1.0 response', resp('HTTP/1.0 200 OK', ['Content-Length: 2'], 'ok')],
    ['HTTP/1.0 response without length', closeBody('HTTP/1.0 200 OK', ['X-A: 1'], 'until close')],
    ['HTTP/2.0 status line', resp('HTTP/2.0 200 OK', ['Content-Length: 2'], 'ok')],
    ['lower-case http/1.1', closeBody('http/1.1 200 OK', ['Content-Length: 2'], 'ok')],
    ['HTTP/0.9 (no status line)', closeBody('hello from 0.9', [], '')],
    ['bare-LF head', { bytes: resp('HTTP/1.1 200 OK', ['X-Lf: yes', 'Content-Length: 3'], 'lf\n', '\n') }],
    ['mixed CRLF and LF', { bytes: 'HTTP/1.1 200 OK\nX-A: 1\r\nX-B: 2\nContent-Length: 2\r\n\nok' }],
    ['header order kept', ok(['Z-First: 1', 'A-Second: 2', 'M-Third: 3', 'Content-Type: text/plain', 'B-Fourth: 4'])],
    ['fixed fields written where nginx writes them', ok(['X-Before: 1', 'Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT', 'X-Middle: 2', 'Location: /somewhere', 'Content-Type: text/css', 'X-After: 3'])],
    ['two Set-Cookie', ok(['Set-Cookie: a=1; Path=/', 'Set-Cookie: b=2', 'set-cookie: c=3'])],
    ['repeated unknown field', ok(['X-Rep: 1', 'X-Rep: 2', 'x-rep: 3'])],
    ['Server and Date from the backend', ok(['Server: backend/1.0', 'Date: Mon, 01 Jan 2024 00:00:00 GMT', 'X-Pad: avoid browser bug'])],
    ['Connection, Keep-Alive and hop-by-hop from the backend', ok(['Connection: keep-alive, X-Hop', 'Keep-Alive: timeout=5', 'X-Hop: 1', 'Proxy-Connection: keep-alive', 'Upgrade: h2c', 'Trailer: X-T'])],
    ['empty field value', ok(['X-Empty:', 'X-Spaces:    '])],
    ['no space after colon', ok(['X-Tight:1'])],
    ['whitespace around value', ok(['X-Ws:   padded value   '])],
    ['underscore in name', ok(['X_Under: 1'])],
    ['name with invalid character', ok(['X@Bad: 1'])],
    ['space before colon', ok(['X-Sp : 1'])],
    ['obs-fold continuation', ok(['X-Fold: a', ' continued'])],
    ['line without colon', ok(['NoColonHere'])],
    ['NUL in value', ok(['X-Nul: a\0b'])],
    ['high-bit bytes in value', ok(['X-Latin: caf\xe9'])],
    ['no Content-Type', ok([])],
    ['Content-Type with parameters and case', ok(['Content-Type: Text/HTML; Charset=UTF-8'])],
    ['ETag, Vary, Cache-Control, Expires', ok(['ETag: "abc"', 'Vary: Accept-Encoding', 'Cache-Control: max-age=60', 'Expires: Thu, 01 Jan 2037 00:00:00 GMT'])],
    ['invalid Last-Modified', ok(['Last-Modified: yesterday'])],
    ['204 with no body', resp('HTTP/1.1 204 No Content', ['X-A: 1'])],
    ['304 with validators', resp('HTTP/1.1 304 Not Modified', ['ETag: "x"', 'Cache-Control: max-age=5'])],
    ['100 Continue before the answer', { bytes: `HTTP/1.1 100 Continue\r\n\r\n${ok(['X-After-100: 1'])}` }],
    ['long reason phrase', ok([]).replace('200 OK', `200 ${'Long '.repeat(40)}`)],
    ['Content-Encoding gzip passed untouched', { bytes: Buffer.concat([Buffer.from(resp('HTTP/1.1 200 OK', ['Content-Encoding: gzip', 'Content-Type: text/plain', 'Content-Length: 29'])), gzipSync('gzipped text\n').subarray(0, 29)]) }],
    ['Accept-Ranges and Content-Range passed', resp('HTTP/1.1 206 Partial Content', ['Content-Range: bytes 0-1/10', 'Accept-Ranges: bytes', 'Content-Length: 2'], 'ok')],
  ]
  for (const [name, s] of heads) add({ area: 'heads', name, loc: PASS, script: typeof s === 'string' ? { bytes: s } : s })
  add({ area: 'heads', name: 'HEAD to the backend', loc: PASS, method: 'HEAD', script: { bytes: resp('HTTP/1.1 200 OK', ['Content-Length: 10', 'X-H: 1']) } })
  add({ area: 'heads', name: 'HTTP/1.0 client gets a close-delimited body', loc: PASS, raw: 'GET @P@/x HTTP/1.0\r\nHost: example.com\r\n\r\n', script: closeBody('HTTP/1.1 200 OK', ['X-A: 1'], 'body') })
  add({ area: 'heads', name: 'close-delimited body to an HTTP/1.1 client', loc: PASS, script: closeBody('HTTP/1.1 200 OK', ['X-A: 1'], 'body until close') })
  add({ area: 'heads', name: 'chunked with extensions and trailer', loc: PASS, script: { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n' } })
  add({ area: 'heads', name: 'request forwarded as nginx writes it', loc: PASS, upstreamRequest: true, path: '@P@/a%20b/../c?q=1&r', headers: ['X-Client: 1', 'x-lower-client: 2', 'TE: trailers', 'Keep-Alive: 5', 'Upgrade: websocket', 'Connection: close, X-Client', 'Accept-Encoding: gzip'], script: { bytes: ok([]) } })
  add({ area: 'heads', name: 'POST body forwarded with its length', loc: PASS, method: 'POST', headers: ['Content-Type: text/plain', 'Content-Length: 5'], body: 'hello', upstreamRequest: true, script: { bytes: ok([]) } })
  add({ area: 'heads', name: 'chunked request body forwarded', loc: PASS, method: 'POST', headers: ['Transfer-Encoding: chunked'], body: '5\r\nhello\r\n0\r\n\r\n', upstreamRequest: true, script: { bytes: ok([]) } })
  add({ area: 'heads', name: 'proxy_http_version 1.1 request', loc: loc('proxy_http_version 1.1;'), upstreamRequest: true, script: { bytes: ok([]) } })
  add({ area: 'heads', name: 'proxy_method', loc: loc('proxy_method PUT;'), upstreamRequest: true, script: { bytes: ok([]) } })
  add({ area: 'heads', name: 'proxy_set_body', loc: loc('proxy_set_body "set $uri";'), upstreamRequest: true, script: { bytes: ok([]) } })

  // Filters nginx runs on proxied answers too: not_modified, range, headers (expires, add_header).
  const lm = 'Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT'
  const filters: [string, string, string[], Script][] = [
    ['If-Modified-Since equal to Last-Modified', PASS, ['If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT'], { bytes: ok([lm, 'ETag: "e1"']) }],
    ['If-Modified-Since later', PASS, ['If-Modified-Since: Wed, 03 Jan 2024 03:04:05 GMT'], { bytes: ok([lm]) }],
    ['If-None-Match equal to ETag', PASS, ['If-None-Match: "e1"'], { bytes: ok([lm, 'ETag: "e1"']) }],
    ['If-None-Match other', PASS, ['If-None-Match: "zz"'], { bytes: ok(['ETag: "e1"']) }],
    ['Range on a proxied 200', PASS, ['Range: bytes=0-1'], { bytes: ok(['Accept-Ranges: bytes', lm], 'abcdef') }],
    ['Range on a proxied 200 without Accept-Ranges', PASS, ['Range: bytes=0-1'], { bytes: ok([], 'abcdef') }],
    ['expires 1h over the backend Cache-Control', loc('expires 1h;'), [], { bytes: ok(['Cache-Control: no-cache', 'Expires: Thu, 01 Jan 1970 00:00:01 GMT']) }],
    ['expires epoch', loc('expires epoch;'), [], { bytes: ok([]) }],
    ['add_header on a proxied 200', loc('add_header X-Mine 1;'), [], { bytes: ok(['X-Theirs: 2']) }],
    ['add_header on a proxied 404 (not always)', loc('add_header X-Mine 1;'), [], { bytes: resp('HTTP/1.1 404 Not Found', ['Content-Length: 2'], 'nf') }],
    ['add_header always on a proxied 500', loc('add_header X-Mine 1 always;'), [], { bytes: resp('HTTP/1.1 500 Internal Server Error', ['Content-Length: 2'], 'er') }],
    ['add_header same name as the backend', loc('add_header X-Theirs mine;'), [], { bytes: ok(['X-Theirs: 2']) }],
  ]
  for (const [name, l, headers, s] of filters) add({ area: 'heads', name, loc: l, headers, script: s })
  add({ area: 'heads', name: 'websocket upgrade answered 101', loc: loc('proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";'), headers: ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'], upstreamRequest: true, script: { bytes: 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-Extra: 1\r\n\r\nframes', close: true } })
  add({ area: 'heads', name: 'upgrade refused by the backend', loc: loc('proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";'), headers: ['Upgrade: websocket', 'Connection: Upgrade'], script: { bytes: ok(['X-No-Upgrade: 1']) } })
  // The URI the backend gets (proxy_pass's rules, ngx_http_proxy_create_request).
  const uris: [string, string, string][] = [
    ['URI part replaces the prefix', 'location @P@/ { proxy_pass http://127.0.0.1:@B@/k@P@/base/; }', '@P@/a/b?x=1'],
    ['URI part, encoded characters', 'location @P@/ { proxy_pass http://127.0.0.1:@B@/k@P@/base/; }', '@P@/a%20b/%2F/%C3%A9?q=%20'],
    ['no URI part, encoded characters kept', PASS, '@P@/a%20b/%2F/%C3%A9?q=%20'],
    ['no URI part, dot segments', PASS, '@P@/a/./b/../c'],
    ['URI part with rewrite break', 'location @P@/ { rewrite ^@P@/(.*)$ /k@P@/rw/$1 break; proxy_pass http://127.0.0.1:@B@/ignored/; }', '@P@/x?y=2'],
    ['URI part with rewrite last to another location', 'location @P@/ { rewrite ^@P@/(.*)$ @P@-two/$1 last; } location @P@-two/ { proxy_pass http://127.0.0.1:@B@/k@P@/two/; }', '@P@/x?y=2'],
    ['no URI part after set $args', 'location @P@/ { set $args "a=1"; proxy_pass http://127.0.0.1:@B@; }', '@P@/x?y=2'],
    ['URI part on an exact location', 'location = @P@/exact { proxy_pass http://127.0.0.1:@B@/k@P@/e; }', '@P@/exact?z'],
    ['HTTP/1.0 client without Host', PASS, 'RAW10'],
    ['client Host with a port', PASS, 'HOSTPORT'],
  ]
  for (const [name, l, path] of uris) {
    const k: ProxyCase = { area: 'fields', name, loc: l, upstreamRequest: true, script: { bytes: ok([]) } }
    if (path === 'RAW10') k.raw = 'GET @P@/x HTTP/1.0\r\n\r\n'
    else if (path === 'HOSTPORT') k.raw = 'GET @P@/x HTTP/1.1\r\nHost: Example.COM:8080\r\nConnection: close\r\n\r\n'
    else k.path = path
    add(k)
  }

  // --- redirect: proxy_redirect on Location and Refresh --------------------------------------
  const loc302 = (to: string, extra: string[] = []) => ({ bytes: resp('HTTP/1.1 302 Found', [`Location: ${to}`, ...extra, 'Content-Length: 0']) })
  const R = 'http://127.0.0.1:@B@'
  const redirects: [string, string, Script][] = [
    ['default, proxy_pass with URI', 'location @P@/ { proxy_pass http://127.0.0.1:@B@/k@P@/; }', loc302(`${R}/k@P@/next`)],
    ['default, proxy_pass without URI', PASS, loc302(`${R}@P@/next`)],
    ['default, Location of another host kept', PASS, loc302('http://other.example/x')],
    ['default, relative Location made absolute', PASS, loc302('@P@/rel')],
    ['default, path-relative Location', PASS, loc302('rel/ative')],
    ['default, Location on a 200', PASS, { bytes: ok([`Location: ${R}@P@/on200`]) }],
    ['default, Location on a 201', PASS, { bytes: resp('HTTP/1.1 201 Created', [`Location: ${R}@P@/made`, 'Content-Length: 0']) }],
    ['off', loc('proxy_redirect off;'), loc302(`${R}@P@/leak`)],
    ['off, relative Location', loc('proxy_redirect off;'), loc302('/rel')],
    ['explicit', loc(`proxy_redirect ${R}/ /new/;`), loc302(`${R}/old/x`)],
    ['explicit, no match', loc('proxy_redirect http://nope/ /new/;'), loc302(`${R}/old/x`)],
    ['explicit to an absolute URL', loc(`proxy_redirect ${R}/ http://public.example/;`), loc302(`${R}/x?y=1`)],
    ['explicit, relative pattern', loc('proxy_redirect / /base/;'), loc302('/x')],
    ['explicit first match wins', loc(`proxy_redirect ${R}/a/ /first/; proxy_redirect ${R}/ /second/;`), loc302(`${R}/a/b`)],
    ['explicit is case-sensitive', loc('proxy_redirect HTTP://127.0.0.1:@B@/ /ci/;'), loc302(`${R}/x`)],
    ['regex', loc('proxy_redirect ~^http://[^/]+/k/(.*)$ /re/$1;'), loc302(`${R}/k/deep/path`)],
    ['regex case-insensitive', loc('proxy_redirect ~*^HTTP://[^/]+/(.*)$ /rei/$1;'), loc302(`${R}/Mixed`)],
    ['regex no match', loc('proxy_redirect ~^https://(.*)$ /s/$1;'), loc302(`${R}/plain`)],
    ['regex named capture', loc('proxy_redirect ~^http://[^/]+/(?<rest>.*)$ /named/$rest;'), loc302(`${R}/n/x`)],
    ['variables in replacement', loc(`proxy_redirect ${R}/ http://$host/v/;`), loc302(`${R}/x`)],
    ['variables in pattern', loc('proxy_redirect http://$proxy_host/ /pv/;'), loc302(`${R}/x`)],
    ['default plus explicit', loc('proxy_redirect default; proxy_redirect http://other.example/ /o/;'), loc302('http://other.example/q')],
    ['Refresh rewritten', PASS, { bytes: ok([`Refresh: 5; url=${R}@P@/r`]) }],
    ['Refresh without url', PASS, { bytes: ok(['Refresh: 5']) }],
    ['Refresh with URL in capitals', PASS, { bytes: ok([`Refresh: 0; URL=${R}@P@/r`]) }],
    ['Refresh, proxy_redirect off', loc('proxy_redirect off;'), { bytes: ok([`Refresh: 1; url=${R}@P@/r`]) }],
    ['explicit rewrites Refresh', loc(`proxy_redirect ${R}/ /rf/;`), { bytes: ok([`Refresh: 1;url=${R}/x`]) }],
    ['absolute_redirect off keeps it relative', loc('absolute_redirect off;'), loc302(`${R}@P@/ar`)],
    ['port_in_redirect off', loc('port_in_redirect off;'), loc302('@P@/pir')],
    ['server_name_in_redirect on', loc('server_name_in_redirect on;'), loc302('@P@/snir')],
    ['Location with mixed-case name', PASS, { bytes: resp('HTTP/1.1 301 Moved Permanently', [`LOCATION: ${R}@P@/up`, 'Content-Length: 0']) }],
    ['two Location fields', PASS, { bytes: resp('HTTP/1.1 302 Found', ['Location: /one', 'Location: /two', 'Content-Length: 0']) }],
    ['empty Location', PASS, loc302('')],
    ['inherited from server level', 'location @P@/ { proxy_pass http://127.0.0.1:@B@/k@P@/; location @P@/in/ { proxy_pass http://127.0.0.1:@B@/k@P@/in/; } }', loc302(`${R}/k@P@/in/x`)],
  ]
  for (const [name, l, s] of redirects) add({ area: 'redirect', name, loc: l, script: s, ...(name.includes('inherited') ? { path: '@P@/in/x' } : {}) })
  add({ area: 'redirect', name: 'default with upstream name', http: 'upstream c_up_@I@ { server 127.0.0.1:@B@; }', loc: 'location @P@/ { proxy_pass http://c_up_@I@/k@P@/; }', script: loc302('http://c_up_@I@/k@P@/x') })

  // --- fields: proxy_hide_header, proxy_pass_header, proxy_set_header, pass_request_* ---------
  const fields: [string, string, Partial<ProxyCase>][] = [
    ['proxy_hide_header', loc('proxy_hide_header X-Secret;'), {}],
    ['proxy_hide_header, other case', loc('proxy_hide_header x-SECRET;'), {}],
    ['proxy_hide_header twice', loc('proxy_hide_header X-Secret; proxy_hide_header X-Other;'), {}],
    ['proxy_pass_header Server', loc('proxy_pass_header Server;'), {}],
    ['proxy_pass_header Date', loc('proxy_pass_header Date;'), {}],
    ['proxy_pass_header X-Pad', loc('proxy_pass_header X-Pad;'), {}],
    ['proxy_pass_header X-Accel-Expires', loc('proxy_pass_header X-Accel-Expires;'), {}],
    ['proxy_hide_header inherited', 'location @P@/ { proxy_hide_header X-Secret; location @P@/n/ { proxy_pass http://127.0.0.1:@B@; } }', { path: '@P@/n/x' }],
    ['proxy_hide_header replaced below', 'location @P@/ { proxy_hide_header X-Secret; location @P@/n/ { proxy_hide_header X-Other; proxy_pass http://127.0.0.1:@B@; } }', { path: '@P@/n/x' }],
    ['proxy_pass_request_headers off', loc('proxy_pass_request_headers off;'), { upstreamRequest: true, headers: ['X-Client: 1', 'Cookie: a=1'] }],
    ['proxy_pass_request_headers off keeps proxy_set_header', loc('proxy_pass_request_headers off; proxy_set_header X-Set $http_x_client;'), { upstreamRequest: true, headers: ['X-Client: 1'] }],
    ['proxy_pass_request_body off', loc('proxy_pass_request_body off;'), { upstreamRequest: true, method: 'POST', headers: ['Content-Length: 5'], body: 'hello' }],
    ['proxy_pass_request_body off, chunked', loc('proxy_pass_request_body off;'), { upstreamRequest: true, method: 'POST', headers: ['Transfer-Encoding: chunked'], body: '5\r\nhello\r\n0\r\n\r\n' }],
    ['proxy_set_header empty removes a client field', loc('proxy_set_header Accept-Encoding "";'), { upstreamRequest: true, headers: ['Accept-Encoding: gzip'] }],
    ['proxy_set_header empty Host', loc('proxy_set_header Host "";'), { upstreamRequest: true }],
    ['proxy_set_header empty variable', loc('proxy_set_header X-Maybe $http_x_absent;'), { upstreamRequest: true }],
    ['proxy_set_header replaces a client field', loc('proxy_set_header X-Client replaced;'), { upstreamRequest: true, headers: ['X-Client: 1'] }],
    ['proxy_set_header Host $host', loc('proxy_set_header Host $host;'), { upstreamRequest: true, headers: [] }],
    ['proxy_set_header Host $http_host', loc('proxy_set_header Host $http_host;'), { upstreamRequest: true }],
    ['proxy_set_header X-Forwarded-For', loc('proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;'), { upstreamRequest: true, headers: ['X-Forwarded-For: 198.51.100.1'] }],
    ['proxy_set_header Connection empty with 1.1', loc('proxy_http_version 1.1; proxy_set_header Connection "";'), { upstreamRequest: true }],
    ['proxy_set_header Content-Length', loc('proxy_set_header Content-Length 3;'), { upstreamRequest: true, method: 'POST', headers: ['Content-Length: 3'], body: 'abc' }],
    ['proxy_set_header order', loc('proxy_set_header X-B b; proxy_set_header X-A a;'), { upstreamRequest: true, headers: ['X-Z: z'] }],
    ['proxy_set_header inherited only when none below', 'proxy_set_header X-Server srv; location @P@/ { proxy_pass http://127.0.0.1:@B@; }', { upstreamRequest: true }],
    ['proxy_set_header at two levels', 'location @P@/ { proxy_set_header X-Outer o; location @P@/n/ { proxy_set_header X-Inner i; proxy_pass http://127.0.0.1:@B@; } }', { upstreamRequest: true, path: '@P@/n/x' }],
    ['client header names kept as written', PASS, { upstreamRequest: true, headers: ['x-MiXeD: 1', 'USER-AGENT: t'] }],
    ['client field without value', PASS, { upstreamRequest: true, headers: ['X-Empty:'] }],
    ['client repeated field', PASS, { upstreamRequest: true, headers: ['X-Rep: 1', 'X-Rep: 2'] }],
    ['client Expect 100-continue', PASS, { upstreamRequest: true, method: 'POST', headers: ['Expect: 100-continue', 'Content-Length: 2'], body: 'hi' }],
    ['proxy_ignore_headers Set-Cookie (no cache: no effect)', loc('proxy_ignore_headers Set-Cookie;'), {}],
    ['proxy_ignore_headers Expires Cache-Control', loc('proxy_ignore_headers Expires Cache-Control X-Accel-Expires;'), {}],
    ['proxy_ignore_headers Vary', loc('proxy_ignore_headers Vary;'), {}],
  ]
  const fieldAnswer = { bytes: ok(['X-Secret: s', 'X-Other: o', 'X-Kept: k', 'Server: be', 'Date: Mon, 01 Jan 2024 00:00:00 GMT', 'X-Pad: p', 'X-Accel-Expires: 10', 'Set-Cookie: s=1', 'Expires: Thu, 01 Jan 2037 00:00:00 GMT', 'Cache-Control: max-age=5', 'Vary: X']) }
  for (const [name, l, extra] of fields) add({ area: 'fields', name, loc: l, script: fieldAnswer, ...extra })

  // --- intercept: proxy_intercept_errors, error_page, return ---------------------------------
  const page = 'location @P@-err/ { return 200 "local page $uri $status\\n"; }'
  const b404 = { bytes: resp('HTTP/1.1 404 Not Found', ['Content-Type: text/plain', 'X-Backend: 1', 'Content-Length: 8'], 'backend\n') }
  const intercept: [string, string, Script, Partial<ProxyCase>?][] = [
    ['intercept on, error_page for it', `${loc('proxy_intercept_errors on; error_page 404 @P@-err/404;')} ${page}`, b404],
    ['intercept on, error_page =200', `${loc('proxy_intercept_errors on; error_page 404 =200 @P@-err/404;')} ${page}`, b404],
    ['intercept on, error_page = takes the page status', `${loc('proxy_intercept_errors on; error_page 404 = @P@-err/404;')} ${page}`, b404],
    ['intercept on, no error_page for the code', `${loc('proxy_intercept_errors on; error_page 500 @P@-err/500;')} ${page}`, b404],
    ['intercept off, error_page for the code', `${loc('error_page 404 @P@-err/404;')} ${page}`, b404],
    ['intercept on, named location', `${loc('proxy_intercept_errors on; error_page 503 = @c_named@I@;')} location @c_named@I@ { return 200 "named\\n"; }`, { bytes: resp('HTTP/1.1 503 Service Unavailable', ['Retry-After: 5', 'Content-Length: 4'], 'busy') }],
    ['intercept on, error_page to a URL', loc('proxy_intercept_errors on; error_page 404 http://errors.example/404;'), b404],
    ['intercept on, error_page =301 URL', loc('proxy_intercept_errors on; error_page 404 =301 http://errors.example/moved;'), b404],
    ['intercept on, 401 keeps WWW-Authenticate', `${loc('proxy_intercept_errors on; error_page 401 @P@-err/401;')} ${page}`, { bytes: resp('HTTP/1.1 401 Unauthorized', ['WWW-Authenticate: Basic realm="x"', 'Content-Length: 4'], 'auth') }],
    ['intercept on, 301 with error_page 301', `${loc('proxy_intercept_errors on; error_page 301 @P@-err/301;')} ${page}`, loc302('/x')],
    ['intercept on, 200 untouched', `${loc('proxy_intercept_errors on; error_page 404 @P@-err/404;')} ${page}`, { bytes: ok([]) }],
    ['intercept on, built-in page when error_page has none', loc('proxy_intercept_errors on; error_page 502 /none;'), { bytes: resp('HTTP/1.1 500 Internal Server Error', ['Content-Length: 4'], 'oops') }],
    ['intercept on, HEAD', `${loc('proxy_intercept_errors on; error_page 404 @P@-err/404;')} ${page}`, b404, { method: 'HEAD' }],
    ['intercept on, POST turns into GET', `${loc('proxy_intercept_errors on; error_page 404 @P@-err/404;')} location @P@-err/ { return 200 "$request_method\\n"; }`, b404, { method: 'POST', headers: ['Content-Length: 2'], body: 'hi' }],
    ['error_page for a dead backend', `location @P@/ { proxy_pass http://127.0.0.1:@D@; error_page 502 @P@-err/502; } ${page}`, { bytes: '' }],
    ['error_page =200 for a dead backend', `location @P@/ { proxy_pass http://127.0.0.1:@D@; error_page 502 =200 @P@-err/502; } ${page}`, { bytes: '' }],
    ['dead backend, built-in 502', 'location @P@/ { proxy_pass http://127.0.0.1:@D@; }', { bytes: '' }],
    ['error_page catches return 404', `location @P@/ { error_page 404 @P@-err/r404; return 404; } ${page}`, { bytes: '' }],
    ['error_page catches return 403 with text', `location @P@/ { error_page 403 @P@-err/r403; return 403 "denied"; } ${page}`, { bytes: '' }],
    ['error_page catches return 302, Location cleared', `location @P@/ { error_page 302 @P@-err/r302; return 302 /gone; } ${page}`, { bytes: '' }],
    ['error_page catches return 301 into a named location', `location @P@/ { error_page 301 = @c_n301@I@; return 301 http://x.example/; } location @c_n301@I@ { return 200 "n301 $status\\n"; }`, { bytes: '' }],
    ['error_page =200 on return 418', `location @P@/ { error_page 418 =200 @P@-err/418; return 418; } ${page}`, { bytes: '' }],
    ['error_page to a URL on return 302 replaces its Location', 'location @P@/ { error_page 302 http://new.example/x; return 302 /old; }', { bytes: '' }],
    ['error_page =301 to a URL on return 302', 'location @P@/ { error_page 302 =301 http://new.example/y; return 302 /old; }', { bytes: '' }],
    ['error_page on return 307 with a named location', `location @P@/ { error_page 307 @c_n307@I@; return 307 http://t.example/; } location @c_n307@I@ { return 200 "n307 $status\\n"; }`, { bytes: '' }],
    ['error_page to a URL on return 404', 'location @P@/ { error_page 404 http://e.example/nf; return 404; }', { bytes: '' }],
    ['error_page catches return 500', `location @P@/ { error_page 500 @P@-err/500; return 500; } ${page}`, { bytes: '' }],
    ['error_page in the page location is not chained', `location @P@/ { error_page 404 @P@-e2/x; return 404; } location @P@-e2/ { error_page 404 @P@-err/again; return 404; } ${page}`, { bytes: '' }],
    ['recursive_error_pages on chains', `location @P@/ { recursive_error_pages on; error_page 404 @P@-e2/x; return 404; } location @P@-e2/ { error_page 404 @P@-err/again; return 404; } ${page}`, { bytes: '' }],
  ]
  for (const [name, l, s, extra] of intercept) add({ area: 'intercept', name, loc: l, script: s, ...extra })

  // --- dir301: the redirect of a location with proxy_pass (clcf->auto_redirect) --------------
  const dir: [string, string, Partial<ProxyCase>][] = [
    ['/dir to /dir/', PASS, { path: '@P@' }],
    ['/dir?args to /dir/?args', PASS, { path: '@P@?a=1&b' }],
    ['/dir POST', PASS, { path: '@P@', method: 'POST', headers: ['Content-Length: 0'] }],
    ['/dir HEAD', PASS, { path: '@P@', method: 'HEAD' }],
    ['/dir with an exact location too', `${PASS} location = @P@ { return 200 "exact\\n"; }`, { path: '@P@' }],
    ['/dir with upstream name', `location @P@/ { proxy_pass http://c_dir@I@; }`, { path: '@P@', http: 'upstream c_dir@I@ { server 127.0.0.1:@B@; }' }],
    ['/dir under ^~', 'location ^~ @P@/ { proxy_pass http://127.0.0.1:@B@; }', { path: '@P@' }],
    ['/dir with a regex location', 'location ~ ^@P@/ { proxy_pass http://127.0.0.1:@B@; }', { path: '@P@' }],
    ['/dir with absolute_redirect off', loc('absolute_redirect off;'), { path: '@P@' }],
    ['/dir without proxy_pass', 'location @P@/ { return 200 "x"; }', { path: '@P@' }],
    ['/dir, nested proxy location', 'location @P@/ { location @P@/in/ { proxy_pass http://127.0.0.1:@B@; } }', { path: '@P@/in' }],
    ['/dir HTTP/1.0 without Host', PASS, { raw: 'GET @P@ HTTP/1.0\r\n\r\n' }],
  ]
  for (const [name, l, extra] of dir) add({ area: 'dir301', name, loc: l, script: { bytes: ok([]) }, ...extra })

  // --- framing: how a backend's answer is delimited and which heads are refused --------------
  const framing: [string, string | Script][] = [
    ['Transfer-Encoding gzip, chunked', resp('HTTP/1.1 200 OK', ['Transfer-Encoding: gzip, chunked'], '2\r\nok\r\n0\r\n\r\n')],
    ['Transfer-Encoding twice', resp('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], '2\r\nok\r\n0\r\n\r\n')],
    ['Transfer-Encoding identity', closeBody('HTTP/1.1 200 OK', ['Transfer-Encoding: identity'], 'ok')],
    ['Transfer-Encoding Chunked (case)', resp('HTTP/1.1 200 OK', ['Transfer-Encoding: Chunked'], '2\r\nok\r\n0\r\n\r\n')],
    ['Transfer-Encoding with trailing space', resp('HTTP/1.1 200 OK', ['Transfer-Encoding: chunked '], '2\r\nok\r\n0\r\n\r\n')],
    ['Transfer-Encoding on HTTP/1.0', closeBody('HTTP/1.0 200 OK', ['Transfer-Encoding: chunked'], '2\r\nok\r\n0\r\n\r\n')],
    ['Content-Length and Transfer-Encoding', resp('HTTP/1.1 200 OK', ['Content-Length: 100', 'Transfer-Encoding: chunked'], '2\r\nok\r\n0\r\n\r\n')],
    ['Content-Length twice, same value', resp('HTTP/1.1 200 OK', ['Content-Length: 2', 'Content-Length: 2'], 'ok')],
    ['Content-Length twice, different', closeBody('HTTP/1.1 200 OK', ['Content-Length: 2', 'Content-Length: 3'], 'okk')],
    ['Content-Length not a number', closeBody('HTTP/1.1 200 OK', ['Content-Length: abc'], 'ok')],
    ['Content-Length negative', closeBody('HTTP/1.1 200 OK', ['Content-Length: -1'], 'ok')],
    ['Content-Length with a list', closeBody('HTTP/1.1 200 OK', ['Content-Length: 2, 2'], 'ok')],
    ['body shorter than Content-Length', closeBody('HTTP/1.1 200 OK', ['Content-Length: 10'], 'short')],
    ['body longer than Content-Length', { bytes: resp('HTTP/1.1 200 OK', ['Content-Length: 2'], 'okEXTRA') }],
    ['Content-Type twice', ok(['Content-Type: text/plain', 'Content-Type: text/html'])],
    ['Location twice', resp('HTTP/1.1 302 Found', ['Location: http://a.example/', 'Location: http://b.example/', 'Content-Length: 0'])],
    ['Last-Modified twice', ok(['Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT', 'Last-Modified: Wed, 03 Jan 2024 03:04:05 GMT'])],
    ['ETag twice', ok(['ETag: "a"', 'ETag: "b"'])],
    ['Expires twice', ok(['Expires: Thu, 01 Jan 2037 00:00:00 GMT', 'Expires: Fri, 02 Jan 2037 00:00:00 GMT'])],
    ['Cache-Control twice', ok(['Cache-Control: max-age=5', 'Cache-Control: public'])],
    ['Content-Encoding twice', ok(['Content-Encoding: gzip', 'Content-Encoding: br'])],
    ['Accept-Ranges twice', ok(['Accept-Ranges: bytes', 'Accept-Ranges: none'])],
    ['WWW-Authenticate twice', resp('HTTP/1.1 401 Unauthorized', ['WWW-Authenticate: Basic', 'WWW-Authenticate: Bearer', 'Content-Length: 0'])],
    ['Server twice', ok(['Server: a', 'Server: b'])],
    ['invalid chunk size', { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', close: true }],
    ['chunked ended by close', { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n', close: true }],
    ['empty answer, connection closed', { bytes: '', close: true }],
    ['connection reset', { reset: true }],
    ['head cut short', { bytes: 'HTTP/1.1 200 OK\r\nX-A: 1\r\n', close: true }],
    ['status line only, then close', { bytes: 'HTTP/1.1 200 OK\r\n\r\n', close: true }],
    ['garbage status line', { bytes: 'FOO BAR\r\n\r\n', close: true }],
    ['head of 3900 bytes', ok([`X-Big: ${'b'.repeat(3800)}`])],
    ['head over 4k (proxy_buffer_size)', ok([`X-Big: ${'b'.repeat(5000)}`])],
    ['head over 4k in many fields', ok(Array.from({ length: 100 }, (_, i) => `X-F${i}: ${'v'.repeat(40)}`))],
    ['field name of 300 bytes', ok([`X-${'n'.repeat(300)}: 1`])],
    ['gzip bomb passed, not decompressed', { bytes: Buffer.concat([Buffer.from(resp('HTTP/1.1 200 OK', ['Content-Encoding: gzip', `Content-Length: ${gzipSync(Buffer.alloc(8 << 20)).length}`])), gzipSync(Buffer.alloc(8 << 20))]) }],
    ['1 MiB body', { bytes: Buffer.concat([Buffer.from(resp('HTTP/1.1 200 OK', ['Content-Length: 1048576'])), Buffer.alloc(1 << 20, 0x61)]) }],
  ]
  for (const [name, s] of framing) add({ area: 'framing', name, loc: PASS, script: typeof s === 'string' ? { bytes: s } : s })
  add({ area: 'framing', name: 'head over 4k with proxy_buffer_size 16k', loc: loc('proxy_buffer_size 16k; proxy_buffers 4 16k;'), script: { bytes: ok([`X-Big: ${'b'.repeat(9000)}`]) } })
  add({ area: 'framing', name: 'head over 4k with proxy_buffering off', loc: loc('proxy_buffering off;'), script: { bytes: ok([`X-Big: ${'b'.repeat(5000)}`]) } })
  add({ area: 'framing', name: 'HEAD, backend sends a body anyway', loc: PASS, method: 'HEAD', script: { bytes: ok([], 'unwanted') } })
  add({ area: 'framing', name: 'proxy_read_timeout', loc: loc('proxy_read_timeout 1;'), script: { hang: true } })
  add({ area: 'framing', name: 'proxy_send_timeout, a backend that never reads', loc: 'location @P@/ { proxy_pass http://127.0.0.1:@NR@; proxy_send_timeout 1s; proxy_read_timeout 30s; client_max_body_size 32m; }', method: 'POST', headers: ['Content-Length: 16777216'], body: 'x'.repeat(16 << 20) })

  // --- vars: upstream variables as nginx computes them ---------------------------------------
  const v = (h: string) => loc(`add_header X-V "${h}";`)
  const vars: [string, string, Partial<ProxyCase>][] = [
    ['$upstream_addr', v('$upstream_addr'), {}],
    ['$upstream_status', v('$upstream_status'), {}],
    ['$upstream_status of a 404', v('$upstream_status'), { script: b404 }],
    ['$proxy_port, port given', v('$proxy_port'), {}],
    ['$proxy_host', v('$proxy_host'), {}],
    ['$proxy_port, upstream name', `location @P@/ { proxy_pass http://c_pp@I@; add_header X-V "$proxy_port $proxy_host"; }`, { http: 'upstream c_pp@I@ { server 127.0.0.1:@B@; }' }],
    ['$upstream_response_time', v('$upstream_response_time'), { timing: true }],
    ['$upstream_header_time', v('$upstream_header_time'), { timing: true }],
    ['$upstream_connect_time', v('$upstream_connect_time'), { timing: true }],
    ['$upstream_http_ field', v('$upstream_http_x_kept $upstream_http_content_type'), {}],
    ['$upstream_bytes_received', v('$upstream_bytes_received'), {}],
    ['$upstream_bytes_sent', v('$upstream_bytes_sent'), {}],
    ['$upstream_response_length', v('$upstream_response_length'), {}],
    ['$upstream_status after a 502 page', `location @P@/ { proxy_pass http://127.0.0.1:@D@; error_page 502 @P@-v/; } location @P@-v/ { return 200 "[$upstream_addr] [$upstream_status] [$upstream_response_length]\\n"; }`, {}],
    ['$upstream_addr after failover', `location @P@/ { proxy_pass http://c_fo@I@; add_header X-V "$upstream_addr | $upstream_status"; }`, { http: 'upstream c_fo@I@ { server 127.0.0.1:@D@; server 127.0.0.1:@B@; }' }],
    ['$upstream_addr, all dead', `location @P@/ { proxy_pass http://c_ad@I@; add_header X-V "$upstream_addr | $upstream_status" always; }`, { http: 'upstream c_ad@I@ { server 127.0.0.1:@D@; server 127.0.0.2:@D@; }' }],
    ['$upstream_status after an intercepted error', `${loc('proxy_intercept_errors on; error_page 404 @P@-err/404;')} location @P@-err/ { return 200 "us=$upstream_status ua=$upstream_addr\\n"; }`, { script: b404 }],
    ['$upstream_addr when not proxied', 'location @P@/ { return 200 "[$upstream_addr][$upstream_status]\\n"; }', {}],
    ['$upstream_cookie_', v('$upstream_cookie_s'), {}],
    ['$proxy_add_x_forwarded_for in a response', v('$proxy_add_x_forwarded_for'), { headers: ['X-Forwarded-For: 10.0.0.1'] }],
  ]
  for (const [name, l, extra] of vars) add({ area: 'vars', name, loc: l, script: fieldAnswer, ...extra })

  // --- accel: X-Accel-* from the backend -----------------------------------------------------
  const xa = (h: string[], body = 'backend body\n', status = 'HTTP/1.1 200 OK') => ({ bytes: resp(status, [...h, `Content-Length: ${body.length}`], body) })
  const internal = 'location @P@-int/ { internal; return 200 "internal $uri $args $request_method\\n"; } location @c_xan@I@ { return 200 "named $uri\\n"; }'
  const accel: [string, string, Script, Partial<ProxyCase>?][] = [
    ['X-Accel-Redirect to an internal location', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @P@-int/file', 'X-Other: o', 'Set-Cookie: s=1', 'Content-Type: text/x-backend'])],
    ['X-Accel-Redirect with args', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @P@-int/file?a=1&b=2'])],
    ['X-Accel-Redirect to a named location', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @c_xan@I@'])],
    ['X-Accel-Redirect on a 404', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @P@-int/f'], 'nf', 'HTTP/1.1 404 Not Found')],
    ['X-Accel-Redirect for POST', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @P@-int/p']), { method: 'POST', headers: ['Content-Length: 2'], body: 'hi' }],
    ['X-Accel-Redirect to a missing named location', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @nowhere'])],
    ['X-Accel-Redirect escaped', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @P@-int/a%20b'])],
    ['X-Accel-Redirect keeps Content-Disposition and Cache-Control', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @P@-int/f', 'Content-Disposition: attachment', 'Cache-Control: no-store', 'Expires: 0', 'Content-Type: a/b', 'Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT'])],
    ['X-Accel-Redirect ignored', loc('proxy_ignore_headers X-Accel-Redirect;'), xa(['X-Accel-Redirect: @P@-int/file'])],
    ['X-Accel-Redirect ignored and passed', loc('proxy_ignore_headers X-Accel-Redirect; proxy_pass_header X-Accel-Redirect;'), xa(['X-Accel-Redirect: @P@-int/file'])],
    ['X-Accel-Redirect to a proxied location', `${PASS} location @P@-int/ { proxy_pass http://127.0.0.1:@B@/k@P@/second; }`, xa(['X-Accel-Redirect: @P@-int/file'])],
    ['X-Accel-Redirect to a static file', `${PASS} location @P@-files/ { internal; alias @ROOT@/files/; }`, xa(['X-Accel-Redirect: @P@-files/secret.txt', 'Content-Type: application/x-backend', 'Content-Disposition: attachment; filename="s.txt"'])],
    ['X-Accel-Redirect to a missing file', `${PASS} location @P@-files/ { internal; alias @ROOT@/files/; }`, xa(['X-Accel-Redirect: @P@-files/nope.txt'])],
    ['X-Accel-Redirect with dot segments', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @P@-int/../secret'])],
    ['X-Accel-Redirect HEAD', `${PASS} ${internal}`, xa(['X-Accel-Redirect: @P@-int/h']), { method: 'HEAD' }],
    ['X-Accel-Redirect and error_page', `${PASS} location @P@-int/ { internal; return 404; error_page 404 =200 @P@-ep/; } location @P@-ep/ { return 200 "ep $uri\\n"; }`, xa(['X-Accel-Redirect: @P@-int/x'])],
    ['X-Accel-Expires hidden', PASS, xa(['X-Accel-Expires: 100'])],
    ['X-Accel-Buffering no', PASS, xa(['X-Accel-Buffering: no'])],
    ['X-Accel-Buffering ignored', loc('proxy_ignore_headers X-Accel-Buffering;'), xa(['X-Accel-Buffering: no'])],
    ['X-Accel-Charset', PASS, xa(['X-Accel-Charset: koi8-r', 'Content-Type: text/html'])],
    ['X-Accel-Charset with charset on', loc('charset utf-8;'), xa(['X-Accel-Charset: koi8-r', 'Content-Type: text/html'])],
    ['X-Accel-Charset same as charset', loc('charset utf-8;'), xa(['X-Accel-Charset: UTF-8', 'Content-Type: text/html'])],
    ['charset on a proxied text/html', loc('charset utf-8;'), xa(['Content-Type: text/html'])],
    ['charset on a proxied type with its own charset', loc('charset utf-8;'), xa(['Content-Type: text/html; charset=koi8-r'])],
    ['charset on a proxied image', loc('charset utf-8;'), xa(['Content-Type: image/png'])],
    ['X-Accel-Charset ignored', loc('charset utf-8; proxy_ignore_headers X-Accel-Charset;'), xa(['X-Accel-Charset: koi8-r', 'Content-Type: text/html'])],
    ['X-Accel-Limit-Rate', PASS, xa(['X-Accel-Limit-Rate: 100000'])],
    ['X-Accel-Something-Else hidden', PASS, xa(['X-Accel-Foo: 1'])],
  ]
  for (const [name, l, s, extra] of accel) add({ area: 'accel', name, loc: l, script: s, ...extra })

  // --- upstream: next upstream, peers, keepalive ---------------------------------------------
  const id = (r: Received): Script => ({ bytes: ok([`X-Id: ${r.backend === 'b2' ? 'b2' : 'b1'}`]) })
  const up = (name: string, servers: string, l = '', times = 1, extra: Partial<ProxyCase> = {}) =>
    add({ area: 'upstream', name, http: `upstream c_u@I@ { ${servers} }`, loc: `location @P@/ { proxy_pass http://c_u@I@; add_header X-UA "$upstream_addr|$upstream_status" always; ${l} }`, script: id, times, ...extra })
  up('error goes to the next', 'server 127.0.0.1:@D@; server 127.0.0.1:@B@;')
  up('proxy_next_upstream off', 'server 127.0.0.1:@D@; server 127.0.0.1:@B@;', 'proxy_next_upstream off;')
  up('proxy_next_upstream_tries 1', 'server 127.0.0.1:@D@; server 127.0.0.2:@D@; server 127.0.0.1:@B@;', 'proxy_next_upstream_tries 1;')
  up('proxy_next_upstream_tries 2', 'server 127.0.0.1:@D@; server 127.0.0.2:@D@; server 127.0.0.1:@B@;', 'proxy_next_upstream_tries 2;')
  up('proxy_next_upstream_timeout', 'server 127.0.0.1:@D@; server 127.0.0.1:@B@;', 'proxy_next_upstream_timeout 10s;')
  up('backup used when primary fails', 'server 127.0.0.1:@D@; server 127.0.0.1:@B@ backup;')
  up('down server skipped', 'server 127.0.0.1:@D@ down; server 127.0.0.1:@B@;', '', 3)
  up('weight order', 'server 127.0.0.1:@B@ weight=2; server 127.0.0.1:@B2@;', '', 6)
  up('round robin', 'server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', '', 4)
  up('least_conn, one request at a time', 'least_conn; server 127.0.0.1:@B@; server 127.0.0.1:@B2@ weight=2;', '', 6)
  up('max_fails=1 marks the dead peer down', 'server 127.0.0.1:@D@ max_fails=1 fail_timeout=30s; server 127.0.0.1:@B@;', '', 4)
  up('max_fails=0 keeps trying it', 'server 127.0.0.1:@D@ max_fails=0; server 127.0.0.1:@B@;', '', 4)
  up('all peers dead: 502', 'server 127.0.0.1:@D@; server 127.0.0.2:@D@;', '', 2)
  up('single dead peer: 502 each time', 'server 127.0.0.1:@D@;', '', 2)
  const status = (code: string) => (r: Received): Script => (r.backend === 'b2' ? { bytes: ok(['X-Id: b2']) } : { bytes: resp(`HTTP/1.1 ${code}`, ['X-Id: b1', 'Content-Length: 3'], 'bad') })
  up('http_502 goes to the next', 'server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', 'proxy_next_upstream error http_502;', 2, { script: status('502 Bad Gateway') })
  up('http_503 not listed', 'server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', 'proxy_next_upstream error;', 2, { script: status('503 Service Unavailable') })
  up('http_404 goes to the next', 'server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', 'proxy_next_upstream http_404;', 2, { script: status('404 Not Found') })
  up('http_500 from the last peer is passed', 'server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', 'proxy_next_upstream http_500;', 1, { script: () => ({ bytes: resp('HTTP/1.1 500 Internal Server Error', ['Content-Length: 3'], 'bad') }) })
  up('invalid_header goes to the next', 'server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', 'proxy_next_upstream error invalid_header;', 2, { script: (r) => (r.backend === 'b2' ? { bytes: ok(['X-Id: b2']) } : { bytes: 'garbage\r\n\r\n', close: true }) })
  up('timeout goes to the next', 'server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', 'proxy_read_timeout 1; proxy_next_upstream timeout;', 1, { script: (r) => (r.backend === 'b2' ? { bytes: ok(['X-Id: b2']) } : { hang: true }) })
  up('POST not retried after sending (non_idempotent)', 'server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', 'proxy_next_upstream error http_502;', 1, { method: 'POST', headers: ['Content-Length: 2'], body: 'hi', script: status('502 Bad Gateway') })
  up('POST retried with non_idempotent', 'server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', 'proxy_next_upstream error http_502 non_idempotent;', 1, { method: 'POST', headers: ['Content-Length: 2'], body: 'hi', script: status('502 Bad Gateway') })
  // A balancing method written after `keepalive` replaces it (nginx warns "load balancing method redefined").
  up('keepalive before ip_hash keeps nothing', 'server 127.0.0.1:@B@; keepalive 2; ip_hash;', 'proxy_http_version 1.1; proxy_set_header Connection "";', 3, { connections: true })
  up('ip_hash before keepalive keeps connections', 'ip_hash; server 127.0.0.1:@B@; keepalive 2;', 'proxy_http_version 1.1; proxy_set_header Connection "";', 3, { connections: true })
  up('hash: http_502 goes to the other server', 'hash $arg_k; server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', 'proxy_next_upstream error http_502;', 3, { path: '@P@/x?k=a', script: status('502 Bad Gateway') })
  up('hash consistent: a dead server, then the next point', 'hash $arg_k consistent; server 127.0.0.1:@D@; server 127.0.0.1:@B@; server 127.0.0.1:@B2@;', '', 3, { path: '@P@/x?k=b' })
  up('ip_hash: proxy_next_upstream off on a dead server', 'ip_hash; server 127.0.0.1:@D@; server 127.0.0.2:@D@;', 'proxy_next_upstream off;', 2)
  up('random two: all down but one', 'random two least_conn; server 127.0.0.1:@D@ down; server 127.0.0.1:@B@;', '', 3)
  up('keepalive reuses connections', 'server 127.0.0.1:@B@; keepalive 2;', 'proxy_http_version 1.1; proxy_set_header Connection "";', 4, { connections: true, upstreamRequest: true })
  up('no keepalive: a connection each', 'server 127.0.0.1:@B@;', '', 3, { connections: true })
  up('keepalive_requests 2 in upstream', 'server 127.0.0.1:@B@; keepalive 2; keepalive_requests 2;', 'proxy_http_version 1.1; proxy_set_header Connection "";', 4, { connections: true })
  up('keepalive with HTTP/1.0 requests', 'server 127.0.0.1:@B@; keepalive 2;', '', 3, { connections: true })
  up('keepalive, backend answers Connection: close', 'server 127.0.0.1:@B@; keepalive 2;', 'proxy_http_version 1.1; proxy_set_header Connection "";', 3, { connections: true, script: () => ({ bytes: ok(['Connection: close']), close: true }) })
  up('keepalive_timeout in upstream', 'server 127.0.0.1:@B@; keepalive 2; keepalive_timeout 30s;', 'proxy_http_version 1.1; proxy_set_header Connection "";', 3, { connections: true })
  up('proxy_buffering off streams', 'server 127.0.0.1:@B@;', 'proxy_buffering off;', 1, { script: { parts: ['HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n', 'abc', 'def'], gapMs: 30 } })
  up('proxy_buffering off, close-delimited', 'server 127.0.0.1:@B@;', 'proxy_buffering off;', 1, { script: { parts: ['HTTP/1.1 200 OK\r\n\r\n', 'abc', 'def'], gapMs: 30, close: true } })
  return c
}
