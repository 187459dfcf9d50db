import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { test } from 'node:test'
import { hasNginx, NGINX } from './helpers.js'
import { proxyCorpus } from './proxy-corpus.js'
import { runProxyCorpus, summary } from './proxy-differential.js'
import { runLoadCorpus } from './proxy-load-corpus.js'

/** Load cases where we refuse what nginx accepts, or word a refusal otherwise (DIFFERENCES.md). */
const LOAD_DIFFERENT = new Set<string>([
  // JavaScript's regex engine words a syntax error otherwise than PCRE2.
  'proxy_redirect with a bad regex',
  // Peer state is per worker: `zone` (shared state) is refused rather than accepted without effect.
  'zone',
])

/**
 * The proxy corpus (proxy-corpus.ts) under real nginx 1.22.1 and under static-server, with raw
 * backends: status line, header lines as written (minus Date and Server), bodies, and where a
 * case says so what the backend received and how many connections it saw. Each case that is
 * not listed below must give nginx's answer; each listed one is a difference written down in
 * DIFFERENCES.md, and must still differ (so the list cannot go stale).
 */
const DIFFERENT = new Set<string>([
  // No valid status line: nginx 1.22 relays the bytes as an HTTP/0.9 answer (no head at all, the
  // backend's text read by the client as it likes); we answer 502.
  'heads: lower-case http/1.1',
  'heads: HTTP/0.9 (no status line)',
  'framing: garbage status line',
  'upstream: invalid_header goes to the next',
  // A status below 100 is no HTTP status: 502.
  'heads: status 099',
  // A field name that is not a token (`X@Bad`) is dropped rather than relayed.
  'heads: name with invalid character',
  // nginx 1.22 sends a backend's 100 Continue as the final answer and the real one as its body;
  // we skip interim answers (RFC 9110 §15.2).
  'heads: 100 Continue before the answer',
  // Framing two hops could read differently is a 502, as nginx 1.23+ (1.22 guesses).
  'framing: Transfer-Encoding gzip, chunked',
  'framing: Transfer-Encoding twice',
  'framing: Transfer-Encoding identity',
  'framing: Content-Length and Transfer-Encoding',
  'framing: Content-Length twice, different',
  'framing: Content-Length not a number',
  'framing: Content-Length negative',
  'framing: Content-Length with a list',
  // Not a proxy matter: a static file's answer keeps our field order (Last-Modified, ETag and
  // Accept-Ranges before Content-Length; nginx writes Last-Modified after it).
  'accel: X-Accel-Redirect to a static file',
])

const missing = !hasNginx && `${NGINX} is not installed`
if (missing && process.env.CI) {
  test('the proxy differential needs real nginx in CI', () => assert.fail(missing))
} else {
  test('proxy corpus: static-server answers as nginx', { skip: missing }, async () => {
    const outcomes = await runProxyCorpus(proxyCorpus())
    const table = summary(outcomes)
    process.stdout.write(`proxy corpus, cases that give nginx's answer:\n${table}\n`)
    if (process.env.PROXY_CORPUS_REPORT) await writeFile(process.env.PROXY_CORPUS_REPORT, JSON.stringify(outcomes, null, 1))
    const wrong = outcomes.filter((o) => o.same === DIFFERENT.has(`${o.area}: ${o.name}`))
    const show = (o: (typeof outcomes)[number]) =>
      `${o.area}: ${o.name}${o.same ? ' (now the same: take it off the list)' : `\n  ours  ${JSON.stringify(o.ours)}\n  nginx ${JSON.stringify(o.nginx)}`}`
    assert.equal(wrong.length, 0, `${wrong.length} cases:\n${wrong.map(show).join('\n')}`)
  })

  test('proxy and upstream directives load, or are refused, as nginx -t', { skip: missing }, async () => {
    const outcomes = await runLoadCorpus()
    process.stdout.write(`load corpus: ${outcomes.filter((o) => o.same).length}/${outcomes.length} as nginx -t\n`)
    const wrong = outcomes.filter((o) => o.same === LOAD_DIFFERENT.has(o.name))
    assert.equal(wrong.length, 0, wrong.map((o) => `${o.name}${o.same ? ' (now the same)' : `\n  ours  ${o.ours}\n  nginx ${o.nginx}`}`).join('\n'))
  })
}
