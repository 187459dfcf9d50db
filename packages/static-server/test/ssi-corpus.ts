/**
 * Pages for the SSI differential (test/differential-ssi.test.ts): each is served by nginx and
 * by us from the same file under the same nginx.conf, and requested as written in REQUESTS.
 * Built from the ngx_http_ssi_module documentation's examples and the branches of
 * ngx_http_ssi_filter_module.c (the scanner's states, each command's checks, the errors).
 */
const long = (n: number, c = 'v') => c.repeat(n)

export const PAGES: Record<string, string | Buffer> = {
  'plain.html': '<html><body>no commands at all</body></html>\n',
  'empty.html': '',
  // echo
  'echo.shtml': 'uri=<!--# echo var="uri" -->|doc=<!--# echo var="document_uri" -->|req=<!--# echo var="request_uri" -->|args=<!--# echo var="args" -->|\n',
  'echo-missing.shtml': '[<!--# echo var="no_such_var" -->][<!--# echo var="http_x_absent" -->][<!--# echo var="arg_zz" default="dflt" -->][<!--# echo var="arg_zz" default="" -->][<!--# echo var="args" default="d" -->]\n',
  'echo-case.shtml': '[<!--# echo var="URI" -->][<!--# echo var="Http_X_Test" -->][<!--# echo var="arg_A" -->][<!--#echo var="request_method"-->]\n',
  'echo-enc.shtml':
    '<!--# set var="x" value="<a href=\\"q\\">&amp; \'s\' #%\x01é" -->' +
    'd=<!--# echo var="x" -->|n=<!--# echo var="x" encoding="none" -->|keep=<!--# echo var="x" -->|u=<!--# echo var="x" encoding="url" -->|e=<!--# echo var="x" encoding="entity" -->|bad=<!--# echo var="x" encoding="base64" -->|empty=<!--# echo var="nothing" default="" encoding="none" -->|after=<!--# echo var="x" -->\n',
  // set and evaluation of values
  'set.shtml':
    // biome-ignore lint/suspicious/noTemplateCurlyInString: SSI's own ${name} syntax
    '<!--# set var="a" value="1" --><!--# set var="b" value="$a-${a}x-\\$a-\\\\-\\q-$uri-${args}" --><!--# echo var="b" -->|' +
    '<!--# set var="A" value="upper" --><!--# echo var="a" -->|' +
    // biome-ignore lint/suspicious/noTemplateCurlyInString: SSI's own ${name} syntax
    '<!--# set var="c" value="$" -->|<!--# set var="d" value="${unclosed" -->|<!--# set var="e" value="${}" -->|<!--# set var="f" value="$-" -->|' +
    '<!--# set var="g" value="${a" -->|<!--# set var="h" --><!--# set value="x" -->|<!--# set var="i" value="trail\\" --><!--# echo var="i" -->\n',
  // if / elif / else / endif
  'if.shtml':
    '<!--# if expr="$arg_a" -->A set<!--# elif expr="$arg_b = 2" -->b is 2<!--# elif expr="$arg_b != 3" -->b not 3<!--# else -->else<!--# endif -->|' +
    '<!--# if expr="$arg_c = /^x(y+)z$/" -->re $1 [<!--# echo var="1" -->] [<!--# echo var="2" -->]<!--# else -->no re<!--# endif -->|' +
    '<!--# if expr="$arg_c = /^(?<cap>x)/" -->named [<!--# echo var="cap" -->]<!--# endif -->|' +
    '<!--# if expr="$arg_c = \\/literal" -->lit<!--# else -->notlit<!--# endif -->|' +
    '<!--# if expr="$arg_d = abc" -->eq<!--# endif -->|<!--# if expr="$ARG_D" -->upper<!--# endif -->\n',
  'if-bad.shtml':
    '1<!--# if expr="$arg_a < 2" -->in<!--# endif -->|2<!--# if expr="$arg_a = /unterminated" -->x<!--# endif -->|' +
    '3<!--# else -->|4<!--# endif -->|5<!--# elif expr="1" -->|6<!--# if expr="1" -->one<!--# if expr="1" -->nested<!--# endif -->tail<!--# endif -->|' +
    '7<!--# if expr="" -->empty<!--# else -->notempty<!--# endif -->|8<!--# if expr="$arg_a = /(/" -->bad re<!--# endif -->|' +
    '9<!--# if expr="0" -->zero<!--# endif -->|10<!--# if -->noexpr<!--# endif -->|11<!--# if expr="$a = $" -->d<!--# endif -->\n',
  'if-false-nested.shtml':
    '<!--# if expr="" --><!--# if expr="1" -->hidden<!--# endif -->after<!--# else -->shown<!--# endif -->|' +
    '<!--# if expr="" --><!--# unknowncmd --><!--# echo bogus="1" --><!--# else -->ok<!--# endif -->|' +
    '<!--# if expr="1" -->a<!--# else -->b<!--# else -->c<!--# endif -->|<!--# if expr="1" -->x<!--# elif expr="1" -->y<!--# endif -->\n',
  'if-quotes.shtml': '<!--# if expr=\'"$arg_q" = "ab"\' -->quoted-eq<!--# else -->quoted-ne<!--# endif -->|<!--# if expr="$arg_q=ab" -->nospace<!--# endif -->|<!--# if expr="$arg_q  =  ab" -->spaces<!--# endif -->\n',
  // config
  'config.shtml':
    '<!--# config errmsg="[oops]" --><!--# bogus -->|<!--# config timefmt="%Y" --><!--# echo var="date_gmt" -->|<!--# config errmsg="x\\y" --><!--# bogus -->|' +
    '<!--# config timefmt="%Y-%j %%" --><!--# echo var="date_local" -->|<!--# config sizefmt="bytes" -->\n',
  // blocks and stubs
  'block.shtml':
    '<!--# block name="one" -->stub one <!--# echo var="uri" --> text<!--# endblock -->' +
    '<!--# include virtual="/nonexistent.html" stub="one" -->|<!--# include virtual="/inc/a.html" stub="one" -->|' +
    '<!--# include virtual="/inc/empty.html" stub="one" -->|<!--# include virtual="/nonexistent.html" stub="two" -->|' +
    '<!--# block name="e" --><!--# endblock --><!--# include virtual="/nonexistent.html" stub="e" -->|end\n',
  // include
  'inc/a.html': 'A-content\n',
  'inc/empty.html': '',
  'inc/b.shtml': 'B[<!--# echo var="uri" -->][<!--# echo var="args" -->][<!--# echo var="request_uri" -->]<!--# set var="fromb" value="set-in-b" -->',
  'inc/c.shtml': 'C(<!--# include virtual="b.shtml?c=1" -->)',
  'inc/plain.txt': 'text file <!--# echo var="uri" -->\n',
  'include.shtml':
    '1<!--# include virtual="/inc/a.html" -->2<!--# include virtual="inc/a.html" -->3<!--# include virtual="/inc/b.shtml?x=1&y=2" -->' +
    '4<!--# include virtual="/inc/c.shtml" -->5<!--# include file="/inc/a.html" -->6<!--# include virtual="/inc/a.html" wait="yes" -->' +
    '7<!--# include virtual="/inc/plain.txt" -->8[<!--# echo var="fromb" -->]\n',
  'include-bad.shtml':
    '1<!--# include -->2<!--# include virtual="/inc/a.html" file="/inc/a.html" -->3<!--# include file="/inc/a.html" wait="yes" -->' +
    '4<!--# include virtual="/inc/a.html" wait="maybe" -->5<!--# include virtual="/inc/a.html" set="v" stub="s" -->' +
    '6<!--# include virtual="/../etc/passwd" -->7<!--# include virtual="/inc/%2e%2e/include.shtml" -->8<!--# include virtual="" -->' +
    '9<!--# include virtual="?x" -->10<!--# include virtual="/missing.html" -->11<!--# include virtual="/sub/" -->12<!--# include virtual="/sub" -->\n',
  'include-set.shtml':
    '<!--# include virtual="/inc/a.html" set="got" -->[<!--# echo var="got" -->]<!--# include virtual="/missing.html" set="miss" -->[<!--# echo var="miss" -->]' +
    '<!--# include virtual="/be/plain" set="be" -->[<!--# echo var="be" encoding="none" -->]\n',
  'include-order.shtml': '<!--# include virtual="/inc/b.shtml" -->[<!--# echo var="fromb" -->]<!--# include virtual="/inc/b.shtml" wait="yes" -->[<!--# echo var="fromb" -->]\n',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: SSI's own ${name} syntax
  'include-var.shtml': '<!--# set var="p" value="/inc" --><!--# include virtual="$p/a.html" --><!--# include virtual="${p}/b.shtml?q=$arg_q" -->\n',
  'internal.shtml': '<!--# include virtual="/only-internal/a.html" -->\n',
  'self.shtml': 'x<!--# include virtual="/self.shtml" -->y\n',
  'loop-a.shtml': 'a<!--# include virtual="/loop-b.shtml" -->',
  'loop-b.shtml': 'b<!--# include virtual="/loop-a.shtml" -->',
  'include-proxy.shtml':
    '[<!--# include virtual="/be/plain" -->][<!--# include virtual="/be/ssi-body" -->][<!--# include virtual="/be/notfound" -->][<!--# include virtual="/dead/x" -->]' +
    '[<!--# include virtual="/be/split?from=include" -->][<!--# include virtual="/be/split-utf8" wait="yes" -->][<!--# include virtual="/be/split" set="sp" -->{<!--# echo var="sp" -->}]\n',
  'include-proxy-stub.shtml': '<!--# block name="down" -->backend down<!--# endblock -->[<!--# include virtual="/dead/x" stub="down" -->][<!--# include virtual="/be/notfound" stub="down" -->]\n',
  // the scanner
  'scan.shtml':
    '1<!--#-->2<!--# -->3<!--#echo var="uri"--->4<!--#echo var=uri -->5<!--#echo var -->6<!--#echo var = "uri" -->' +
    "7<!--#echo var='uri' -->8<!--#echo var=\"uri\"x-->9<<!--#echo var=\"uri\" -->10<!--<!--#echo var=\"uri\" -->11<!-- plain comment -->" +
    '12<!--#ECHO var="uri" -->13<!--#\techo\r\n\tvar="uri"\n-->14<!--#echo var="uri" -- >15<!--#echo var="uri" -x>16<!- not-->17<!--#echo\tvar="uri"-->18\n',
  'scan-long.shtml': `1<!--#${long(32, 'e')} -->2<!--#${long(33, 'e')} -->3<!--#echo ${long(32, 'k')}="x" -->4<!--#echo ${long(33, 'k')}="x" -->5<!--#echo var="${long(255)}" default="d" -->6<!--#echo var="x" default="${long(256)}" -->7<!--#set var="p" value="${long(255)}" --><!--#echo var="p" -->8\n`,
  'scan-params.shtml': `1<!--#echo ${Array.from({ length: 17 }, (_, i) => `p${i}="v"`).join(' ')} -->2<!--#echo var="uri" var="args" -->3<!--#echo var="uri" bogus="1" -->4<!--#echo-->5<!--#echo var="a\\"b" default="q\\'t\\\\" -->6<!--#echo var='x' default='a"b' -->\n`,
  'scan-eof-lt.shtml': 'text before a lone <',
  'scan-eof-open.shtml': 'text before <!-',
  'scan-eof-cmd.shtml': 'text then <!--# echo var="uri" ',
  'scan-unknown.shtml': 'a<!--# printenv -->b<!--# fsize file="x" -->c<!--# exec cmd="ls" -->d\n',
  'utf8.shtml': 'héllo wörld 日本語 <!--# set var="u" value="ünï €" --><!--# echo var="u" -->|<!--# echo var="u" encoding="url" -->|<!--# echo var="u" encoding="entity" --> ✓\n',
  'ssi-types.txt': 'plain <!--# echo var="uri" --> text\n',
  'big.shtml': `${'0123456789abcdef'.repeat(2047)}<!--# echo var="uri" -->${'x'.repeat(100)}<!--# echo var="args" -->\n`,
  'mid.html': 'M'.repeat(4096),
  'big.txt': 'B'.repeat(5000),
  'set-limit.shtml': '[<!--# include virtual="/mid.html" set="m" -->][<!--# echo var="m" -->]|[<!--# include virtual="/big.txt" set="b" -->][<!--# echo var="b" -->]after\n',
  'returns.shtml':
    '[<!--# include virtual="/r302" -->][<!--# include virtual="/r200" -->][<!--# include virtual="/r200" set="x" -->{<!--# echo var="x" -->}]' +
    '[<!--# include virtual="/missing" wait="YES" stub="nope" -->][<!--# include virtual="/inc/a.html" wait="no" -->]\n',
  'dates.shtml': '<!--# config timefmt="%A %a %B %b %d %e %m %y %Y %j %u %w %C %D %F %n %t %% %Z" --><!--# echo var="date_gmt" -->|<!--# echo var="date_gmt" encoding="url" -->\n',
  'typed-include.shtml': '<!--# include virtual="/typed/inc/plain.txt" -->|<!--# include virtual="/inc/plain.txt" -->\n',
  'if-enc.shtml': '<!--# echo var="nope" default="<b>" encoding="url" -->|<!--# echo var="nope" default="<b>" -->|<!--# echo var="uri" encoding="none" --><!--# echo var="nope" default="<i>" -->\n',
  'access.shtml': '[<!--# include virtual="/denied/a.html" -->][<!--# include virtual="/limited/a.html" -->]\n',
  'more.shtml':
    '[<!--# include virtual="/inc/a%2Ehtml" -->][<!--# include virtual="/%C3%BCn%C3%AF.txt" -->][<!--# include virtual="/ünï.txt" -->]' +
    '[<!--# include virtual="/inc/b.shtml?x=%20&y" -->][<!--# set var="p" value="a/b" --><!--# if expr="$p = /a\\/b/" -->slash<!--# endif -->]' +
    '[<!--# if expr="$p = /(?P<first>a)/" --><!--# echo var="first" --><!--# endif -->][<!--# echo var="$p" -->][<!--# echo var="p" encoding="url" -->]' +
    '[<!--# block name="mixed" -->x <!-- not a command --> <!--# echo var="uri" default="d" --> y<!--# endblock --><!--# include virtual="/missing" stub="mixed" -->]\n',
  'err404.shtml': 'custom error for <!--# echo var="uri" --> status <!--# echo var="status" -->\n',
}

/** Requests: a path, and extra request fields when the page reads them. */
export const REQUESTS: { path: string; headers?: Record<string, string>; method?: string }[] = [
  { path: '/plain.html' },
  { path: '/more.shtml' },
  { path: '/star/data.json' },
  { path: '/be/bare-lf' },
  { path: '/be/odd' },
  { path: '/access.shtml' },
  { path: '/denied/a.html' },
  { path: '/set-limit.shtml' },
  { path: '/returns.shtml' },
  { path: '/dates.shtml' },
  { path: '/typed-include.shtml' },
  { path: '/if-enc.shtml' },
  { path: '/iff/echo.shtml' },
  { path: '/iff/echo.shtml?s=1' },
  { path: '/cap/inc/b.shtml' },
  { path: '/empty.html' },
  { path: '/echo.shtml' },
  { path: '/echo.shtml?a=1&b=%20two' },
  { path: '/echo-missing.shtml' },
  { path: '/echo-case.shtml?A=up&a=low', headers: { 'X-Test': 'hdr<&>' } },
  { path: '/echo-enc.shtml' },
  { path: '/set.shtml?k=v' },
  { path: '/if.shtml' },
  { path: '/if.shtml?a=1' },
  { path: '/if.shtml?b=2' },
  { path: '/if.shtml?b=3' },
  { path: '/if.shtml?b=4&c=xyyyz&d=abc' },
  { path: '/if.shtml?c=xz&d=ABC' },
  { path: '/if.shtml?c=/literal' },
  { path: '/if-bad.shtml?a=1' },
  { path: '/if-false-nested.shtml' },
  { path: '/if-quotes.shtml?q=ab' },
  { path: '/if-quotes.shtml?q=zz' },
  { path: '/config.shtml' },
  { path: '/block.shtml' },
  { path: '/include.shtml?top=1' },
  { path: '/include-bad.shtml' },
  { path: '/include-set.shtml' },
  { path: '/include-order.shtml' },
  { path: '/include-var.shtml?q=9' },
  { path: '/internal.shtml' },
  { path: '/only-internal/a.html' },
  { path: '/self.shtml' },
  { path: '/loop-a.shtml' },
  { path: '/include-proxy.shtml' },
  { path: '/include-proxy-stub.shtml' },
  { path: '/scan.shtml' },
  { path: '/scan-long.shtml' },
  { path: '/scan-params.shtml' },
  { path: '/scan-eof-lt.shtml' },
  { path: '/scan-eof-open.shtml' },
  { path: '/scan-eof-cmd.shtml' },
  { path: '/scan-unknown.shtml' },
  { path: '/utf8.shtml' },
  { path: '/ssi-types.txt' },
  { path: '/typed/ssi-types.txt' },
  { path: '/big.shtml?z=1' },
  { path: '/silent/if-bad.shtml?a=1' },
  { path: '/silent/include-bad.shtml' },
  { path: '/short/scan-long.shtml' },
  { path: '/off/echo.shtml' },
  { path: '/lm/echo.shtml' },
  { path: '/echo.shtml', method: 'HEAD' },
  { path: '/echo.shtml', headers: { Range: 'bytes=0-5' } },
  { path: '/echo.shtml', headers: { 'If-Modified-Since': 'Tue, 02 Jan 2024 03:04:05 GMT' } },
  { path: '/lm/echo.shtml', headers: { 'If-None-Match': '"65937d25-76"' } },
  { path: '/ret' },
  { path: '/missing.html' },
  { path: '/ep/missing.html' },
  { path: '/sub' },
  { path: '/be/ssi-body?a=1' },
  { path: '/be/split-utf8' },
  { path: '/be/split' },
  { path: '/be/notfound' },
  { path: '/be/plain' },
  { path: '/be/typed-text' },
  { path: '/gz/echo.shtml', headers: { 'Accept-Encoding': 'gzip' } },
  { path: '/gz/include.shtml', headers: { 'Accept-Encoding': 'gzip' } },
]

/** The backend's answers, by path: heads and bodies a test can split anywhere. */
export function backendParts(path: string): { parts: (string | Buffer)[]; close?: boolean } {
  const html = (body: string, status = '200 OK', extra = '') =>
    `HTTP/1.1 ${status}\r\nContent-Type: text/html\r\nContent-Length: ${Buffer.byteLength(body)}\r\nLast-Modified: Tue, 02 Jan 2024 03:04:05 GMT\r\nETag: "be-1"\r\nAccept-Ranges: bytes\r\n${extra}\r\n${body}`
  switch (path.replace(/\?.*/, '')) {
    case '/plain':
      return { parts: [html('backend plain')] }
    case '/ssi-body':
      return { parts: [html('be uri=<!--# echo var="uri" --> args=<!--# echo var="args" --> <!--# include virtual="/inc/a.html" -->')] }
    case '/notfound':
      return { parts: [html('backend says not found', '404 Not Found')] }
    case '/bare-lf':
      // A head with bare LF line ends, mixed-case names, an odd reason, a close-delimited body.
      return { parts: ['HTTP/1.1 200 Fine By Me\nCONTENT-type: text/HTML\nX-Mixed-Case: 1\n\n', 'lf <!--# echo var="uri" -->', ' tail'], close: true }
    case '/odd':
      return { parts: ['HTTP/1.1 203 Odd Reason\r\nContent-Type: text/html;charset=ISO-8859-1\r\nContent-Length: 29\r\n\r\n', '[<!--# echo var="args" -->]..'] }
    case '/typed-text':
      return { parts: ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\n<!--# echo var="uri" -->'] }
    case '/split': {
      // A close-delimited body in small pieces, directives split everywhere.
      const body = 'start <!--# echo var="uri" --> mid <!--# set var="s" value="split value" --><!--# echo var="s" --> <<!--# echo var="args" default="none" --> end'
      const parts: string[] = ['HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n']
      for (let i = 0; i < body.length; i += 3) parts.push(body.slice(i, i + 3))
      return { parts, close: true }
    }
    case '/split-utf8': {
      const body = Buffer.from('ü日本<!--# set var="m" value="日本語" --><!--# echo var="m" encoding="url" -->€')
      const parts: (string | Buffer)[] = [`HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n`]
      for (let i = 0; i < body.length; i += 2) {
        const piece = body.subarray(i, i + 2)
        parts.push(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]))
      }
      parts.push('0\r\n\r\n')
      return { parts }
    }
  }
  return { parts: [html('unknown', '500 Internal Server Error')] }
}

PAGES['sub/index.html'] = '<p>sub index</p>\n'
PAGES['data.json'] = '{"ssi": "<!--# echo var="uri" -->"}\n'
