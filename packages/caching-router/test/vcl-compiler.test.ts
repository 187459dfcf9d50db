import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createRequestContext, loadVclFile, startResponse, VclError, VclProgram } from '../src/vcl/index.js'
import { tokenize } from '../src/vcl/lexer.js'
import { compilePcre, VARNISH_REGEX_LIMITS } from '../src/vcl/regex.js'

// Compiler unit tests: the lexer, the parser, the checker's error paths (those varnishd has no
// twin for, or that the differential corpus does not cover) and the regex translation.

const APP = 'backend app { .host = "127.0.0.1"; .port = "3000"; }\n'

function compile(text: string): VclProgram {
  return new VclProgram('t', { name: 'x.vcl', text })
}

/** Asserts the VCL is refused with this problem at line:col, and returns the full message. */
function rejects(text: string, problem: string | RegExp, at?: string): string {
  try {
    compile(text)
  } catch (err) {
    assert.ok(err instanceof VclError, `expected a VclError, got ${String(err)}`)
    const first = err.message.split('\n')[0] as string
    if (typeof problem === 'string') assert.equal(first.replace(/^x\.vcl:\d+:\d+: /, ''), problem)
    else assert.match(err.message, problem)
    if (at) assert.equal(`${err.position?.line}:${err.position?.column}`, at)
    return err.message
  }
  assert.fail(`accepted:\n${text}`)
}

describe('lexer', () => {
  test('comments, long strings, durations and operators', () => {
    const src = `# hash
// slashes
/* block
comment */ set x = {"a "quoted"
line"} + """triple""" + 1.5s + 10ms + 2w;  !~ && ||`
    const toks = tokenize({ name: 't', text: src }).map((t) => `${t.kind}:${t.value}${t.unit ?? ''}`)
    assert.deepEqual(toks, [
      'id:set',
      'id:x',
      'op:=',
      'string:a "quoted"\nline',
      'op:+',
      'string:triple',
      'op:+',
      'duration:1.5s',
      'op:+',
      'duration:10ms',
      'op:+',
      'duration:2w',
      'op:;',
      'op:!~',
      'op:&&',
      'op:||',
      'eof:',
    ])
  })

  test('identifiers keep dots and dashes: req.http.X-Forwarded-For', () => {
    assert.deepEqual(
      tokenize({ name: 't', text: 'req.http.X-Forwarded-For' }).map((t) => t.value),
      ['req.http.X-Forwarded-For', ''],
    )
  })

  test('lexical errors', () => {
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { set req.ttl = 5x; }`, "Unknown time unit 'x'.  Legal are 'ms', 's', 'm', 'h', 'd', 'w' and 'y'", '3:31')
    rejects(`vcl 4.1;\n${APP}/* never closed`, 'Unterminated /* ... */ comment, starting at', '3:1')
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { set req.url = {"open; }`, 'Unterminated long-string, starting at', '3:30')
  })
})

describe('error messages', () => {
  test('file:line:col, then the source line and a caret under the whole token', () => {
    const msg = rejects(`vcl 4.1;\n${APP}sub vcl_recv {\n\tset req.nothing = "x";\n}`, "Symbol not found: 'req.nothing'", '4:6')
    assert.equal(msg, "x.vcl:4:6: Symbol not found: 'req.nothing'\n set req.nothing = \"x\";\n     ^~~~~~~~~~~")
  })

  test('a use in a custom sub names the sub and the method that calls it', () => {
    const msg = rejects(
      `vcl 4.1;\n${APP}sub helper { set beresp.ttl = 1s; }\nsub vcl_recv { call helper; }`,
      /Cannot be set from subroutine 'vcl_recv'\.\n\.\.\.in subroutine "helper" called from "vcl_recv"/,
      '3:18',
    )
    assert.match(msg, /\.\.\.called from "vcl_recv" \(x\.vcl:4:21\)\nsub vcl_recv \{ call helper; \}\n {20}\^~~~~~/)
  })

  test('an illegal return lists the legal ones, like varnishd', () => {
    rejects(`vcl 4.1;\n${APP}sub vcl_hit { return (fetch); }`, /Invalid return "fetch"\nLegal returns are: "deliver" "fail" "pass" "restart" "synth"/)
  })
})

describe('checker error paths', () => {
  test('parser', () => {
    rejects(`vcl 4.1;\n${APP}include "other.vcl";`, 'include needs a file: load the VCL with loadVclFile()')
    rejects(`${APP}vcl 4.1;`, "The 'vcl' line must be the first thing in the file")
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { { set req.url = "/"; } }`, 'Nested blocks are not supported: use if')
    rejects(`vcl 4.1;\n${APP}bogus x { }`, /^x\.vcl:3:1: Expected one of/)
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { if (req.url ~ "a") { return (pass); }`, "Expected '}' got 'EOF'")
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { set req.url == "a"; }`, "Expected '=' got '=='")
  })

  test('varnish 3 names are unknown in a 4.x file', () => {
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { if (req.request == "GET") { return (pass); } }`, "Symbol not found: 'req.request'")
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { set req.backend = app; }`, "Symbol not found: 'req.backend'")
  })

  test('backends and probes', () => {
    rejects(`vcl 4.1;\nbackend b { .host = "h"; .host = "i"; }`, "Field 'host' redefined at:")
    rejects(`vcl 4.1;\nbackend b { .host = "h"; .port = "http"; }`, "Backend port 'http' is not a number between 1 and 65535")
    rejects(`vcl 4.1;\nbackend b { .host = "h"; .probe = { .url = "/"; .request = "GET / HTTP/1.1"; }; }`, "Only one of '.url' or '.request' may be specified")
    rejects(`vcl 4.1;\nbackend b { .host = "h"; .probe = { .window = 3; .threshold = 4; }; }`, 'Threshold must not be greater than window')
    rejects(`vcl 4.1;\nbackend b { .host = "h"; .probe = { .window = 65; }; }`, 'Must be 64 or less')
    rejects(`vcl 4.1;\nbackend b { .host = "h"; .probe = { .timeout = 5; }; }`, 'Expression has type INT, expected DURATION')
    rejects(`vcl 4.1;\nbackend b { .host = "h"; .probe = nope; }`, "Symbol not found: 'nope'")
  })

  test('acls', () => {
    // Names are resolved by loadVclFile() before compiling; compiling text alone knows only localhost.
    rejects(`vcl 4.1;\n${APP}acl a { "not-an-ip"; }\nsub vcl_recv { if (client.ip ~ a) { return (pass); } }`, /DNS lookup\(not-an-ip\): not resolved/)
    const named = new VclProgram('t', { name: 'x.vcl', text: `vcl 4.1;\n${APP}acl a { "localhost"; "db.internal"/24; }\nsub vcl_recv { if (client.ip ~ a) { return (pass); } }` }, { hosts: new Map([['db.internal', ['10.9.8.7']]]) })
    const at = (address: string) => named.compiled.acls.get('a')?.match({ address, port: 0, family: address.includes(':') ? 6 : 4 })
    assert.deepEqual([at('127.0.0.1'), at('::1'), at('10.9.8.1'), at('10.9.9.1')], [true, true, true, false])
    rejects(`vcl 4.1;\n${APP}acl a { "10.0.0.0"/33; }\nsub vcl_recv { if (client.ip ~ a) { return (pass); } }`, 'Too wide mask (/33) for IPv4')
  })

  test('subroutines and objects', () => {
    rejects(`vcl 4.1;\n${APP}sub a { }\nsub a { }\nsub vcl_recv { call a; }`, "Subroutine 'a' redefined")
    rejects(`vcl 4.1;\n${APP}sub a { call b; }\nsub b { call a; }\nsub vcl_recv { call a; }`, 'Subroutine recurses on')
    rejects(`vcl 4.1;\nimport directors;\n${APP}sub vcl_recv { new d = directors.round_robin(); }`, /Not a valid action in subroutine 'vcl_recv'/)
    rejects(`vcl 4.1;\nimport directors;\n${APP}sub vcl_init { new d = directors.nope(); }`, "Symbol not found: 'directors.nope'")
    rejects(`vcl 4.1;\n${APP}sub vcl_init { new d = directors.round_robin(); }`, "Symbol not found: 'directors.round_robin'")
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { return (vcl(other)); }`, 'return (vcl(...)) labels are not supported by caching-router')
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { req.url; }`, "Symbol not found: 'req.url'")
  })

  test('regexes PCRE has and JavaScript cannot express are refused, not approximated', () => {
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { if (req.url ~ "a++") { return (pass); } }`, /Regexp compilation error:\npossessive quantifiers are not supported/)
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { if (req.url ~ "(?>a)") { return (pass); } }`, /group \(\?> is not supported/)
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { if (req.url ~ "[[:nope:]]") { return (pass); } }`, /unknown POSIX class name/)
    rejects(`vcl 4.1;\n${APP}sub vcl_recv { if (req.url ~ req.http.x) { return (pass); } }`, 'Expected constant string for a regular expression, got STRING')
  })

  test('what VCC converts implicitly compiles', () => {
    compile(`vcl 4.1;\n${APP}sub vcl_recv { set req.hash_always_miss = 1; set req.url = 1; if (1) { set req.http.x = now; } }`)
  })
})

describe('include', () => {
  const FIXTURES = fileURLToPath(new URL('../../test/fixtures/vcl/', import.meta.url))
  const ip = { address: '127.0.0.1', port: 1, family: 4 as const }

  test('included files (nested, with their own vcl line) become part of the program', async () => {
    const p = await loadVclFile(`${FIXTURES}valid/with-include.vcl`)
    const c = createRequestContext({ method: 'GET', url: '/admin/x', proto: 'HTTP/1.1', headers: ['Host', 'h'], client: ip, local: ip, xid: '1' })
    assert.equal(p.run('recv', c).action, 'pass')
    startResponse(c, { status: 200, reason: 'OK', headers: [] })
    p.run('deliver', c)
    assert.equal(c.resp?.http.get('X-Included'), 'yes')
    assert.equal(p.sources.length, 3)
    assert.match(p.describe(), /^\/\/ VCL 4\.1 from .*with-include\.vcl, .*recv\.vcl, .*deliver\.vcl\nbackend app 127\.0\.0\.1:3000 \(default\)\n/)
  })

  test('an error inside an included file points into that file', async () => {
    await assert.rejects(loadVclFile(`${FIXTURES}invalid/include-broken.vcl`), (err: unknown) => {
      assert.ok(err instanceof VclError)
      assert.match(err.message, /invalid\/parts\/broken\.vcl:3:9: Symbol not found: 'req\.nope'/)
      return true
    })
  })
})

describe('robustness', () => {
  test('truncated or damaged VCL gets a VclError, never a crash (bounded corpus)', async () => {
    const { readdir, readFile } = await import('node:fs/promises')
    const dir = fileURLToPath(new URL('../../test/fixtures/vcl/valid/', import.meta.url))
    let tried = 0
    for (const f of (await readdir(dir)).filter((x) => x.endsWith('.vcl'))) {
      const text = await readFile(`${dir}${f}`, 'utf8')
      for (let i = 0; i < text.length; i += 7) {
        for (const v of [text.slice(0, i), text.slice(0, i) + text.slice(i + 5), `${text.slice(0, i)}"${text.slice(i)}`, `${text.slice(0, i)}{${text.slice(i)}`]) {
          tried++
          try {
            compile(v)
          } catch (err) {
            assert.ok(err instanceof VclError, `${f} cut at ${i}: ${String(err)}`)
          }
        }
      }
    }
    assert.ok(tried > 1000)
  })
})

describe('run-time safety', () => {
  const ip = { address: '127.0.0.1', port: 1, family: 4 as const }
  const ctx = (url: string, logs: string[]) =>
    createRequestContext({ method: 'GET', url, proto: 'HTTP/1.1', headers: ['Host', 'h'], client: ip, local: ip, xid: '1', log: (m) => logs.push(m) })

  test('a header value with CR/LF or a URL with spaces fails the request instead of reaching the wire', () => {
    const p = compile(`vcl 4.1;\n${APP}sub vcl_recv {
      if (req.url == "/inject") { set req.http.X = {"a
Injected: yes"}; }
      if (req.url == "/space") { set req.url = "/a b"; }
      if (req.url == "/method") { set req.method = "GET /x"; }
      return (hash);
    }`)
    for (const url of ['/inject', '/space', '/method']) {
      const logs: string[] = []
      assert.deepEqual(p.run('recv', ctx(url, logs)), { action: 'fail' }, url)
      assert.equal(logs.length, 1)
    }
    assert.equal(p.run('recv', ctx('/fine', [])).action, 'hash')
  })

  test('std.collect joins repeated headers', () => {
    const p = compile(`vcl 4.1;\nimport std;\n${APP}sub vcl_recv { std.collect(req.http.Accept); set req.http.Seen = req.http.Accept; }`)
    const c = createRequestContext({ method: 'GET', url: '/', proto: 'HTTP/1.1', headers: ['Host', 'h', 'Accept', 'a', 'accept', 'b'], client: ip, local: ip, xid: '1' })
    p.run('recv', c)
    assert.equal(c.req.http.get('seen'), 'a, b')
  })
})

describe('PCRE to JavaScript RegExp', () => {
  const cases: [string, string, boolean][] = [
    ['(?i)websocket', 'WebSocket', true],
    ['(?i:no-cache|no-store|private)', 'No-Store', true],
    ['^(?i:abc)d$', 'ABCD', false],
    ['^(?i:[a-c]+)$', 'AbC', true],
    ['[[:upper:]]', 'Example.COM', true],
    ['[[:upper:]]', 'example.com', false],
    ['\\Afoo\\z', 'foo', true],
    ['\\Q.*\\E$', 'a.*', true],
    ['\\Q.*\\E$', 'abc', false],
    ['(?P<name>x)', 'x', true],
    ['(?s)a.b', 'a\nb', true],
  ]
  for (const [pattern, input, expected] of cases) {
    test(`${pattern} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(input)}`, () => {
      assert.equal(compilePcre(pattern).test(input, VARNISH_REGEX_LIMITS), expected)
    })
  }
})
