import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, type TestContext, test } from 'node:test'
import { get, startOrigin } from './router-harness.js'
import { type RouterProcess, spawnRouter } from './router-process.js'

// HTTP-dates through the router as a real process on a host five hours behind UTC: Date.parse
// reads the asctime form in local time and takes invalid forms (RFC 9110 §5.6.7) as valid.
const TZ = 'America/New_York'
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const LONG = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const p2 = (n: number) => String(n).padStart(2, '0')
const clock = (d: Date) => `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`
const imf = (d: Date) => d.toUTCString()
const asctime = (d: Date) =>
  `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${clock(d)} ${d.getUTCFullYear()}`
const rfc850 = (d: Date) =>
  `${LONG[d.getUTCDay()]}, ${p2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${p2(d.getUTCFullYear() % 100)} ${clock(d)} GMT`
const inHours = (h: number) => new Date(Math.floor(Date.now() / 1000) * 1000 + h * 3_600_000)

describe(`HTTP-dates under TZ=${TZ}`, () => {
  let router: RouterProcess
  let dir: string
  const headersFor = new Map<string, Record<string, string>>()
  const closers: (() => Promise<void>)[] = []
  before(async () => {
    const t = { after: (fn: () => Promise<void>) => closers.push(fn) } as unknown as TestContext
    const origin = await startOrigin(t, (req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', Date: imf(new Date()), ...headersFor.get(req.url ?? '') })
      res.end('body of ten')
    })
    dir = await mkdtemp(join(tmpdir(), 'router-dates-'))
    const vcl = join(dir, 'ttl.vcl')
    await writeFile(
      vcl,
      `vcl 4.1;\nbackend default { .host = "127.0.0.1"; .port = "${origin.address.port}"; }\n` +
        'sub vcl_backend_response { set beresp.http.x-ttl = beresp.ttl; }\n',
    )
    router = await spawnRouter(['-F', '-a', '127.0.0.1:0', '-f', vcl], { env: { TZ } })
  })
  after(async () => {
    await router?.stop()
    for (const close of closers) await close()
    await rm(dir, { recursive: true, force: true })
  })

  const ttlOf = async (path: string, expires: string) => {
    headersFor.set(path, { Expires: expires })
    const r = await get(`http://127.0.0.1:${router.port}${path}`)
    assert.equal(r.status, 200, router.output())
    return Number(r.headers['x-ttl'])
  }

  test('the asctime form is read in UTC, not local time', async () => {
    const ttl = await ttlOf('/asctime', asctime(inHours(1)))
    assert.ok(Math.abs(ttl - 3600) <= 5, `ttl ${ttl}`)
    // Two hours ago in UTC is three hours ahead when read as New York time.
    assert.ok((await ttlOf('/asctime-past', asctime(inHours(-2)))) <= 0)
  })

  test('IMF-fixdate and rfc850 (two-digit year) are valid', async () => {
    assert.ok(Math.abs((await ttlOf('/imf', imf(inHours(1)))) - 3600) <= 5)
    assert.ok(Math.abs((await ttlOf('/rfc850', rfc850(inHours(2)))) - 7200) <= 5)
  })

  for (const [name, mangle] of [
    ['a zone other than GMT', (s: string) => s.replace(/GMT$/, 'UTC')],
    ['no comma', (s: string) => s.replace(',', '')],
    ['doubled spaces', (s: string) => s.replace(' ', '  ')],
    ['dashes in an IMF-fixdate', (s: string) => s.replace(/ (\w{3}) (\d{4})/, '-$1-$2')],
    ['a one-digit hour', (s: string) => s.replace(/ 0?(\d):/, ' $1:').replace(/ (\d\d):(\d\d):(\d\d) /, ' 7:$2:$3 ')],
    ['a lower-case month', (s: string) => s.replace(/ (\w)(\w\w) (\d{4})/, (_m, a: string, b: string, y: string) => ` ${a.toLowerCase()}${b} ${y}`)],
    ['a wrong day name', (s: string) => s.replace(/^\w{3}/, (d) => DAYS[(DAYS.indexOf(d) + 1) % 7] as string)],
    ['the number 0', () => '0'],
  ] as const) {
    test(`an Expires with ${name} counts as already expired (RFC 9111 §5.3)`, async () => {
      const text = mangle(imf(inHours(3)))
      assert.notEqual(text, imf(inHours(3)))
      assert.ok(!Number.isNaN(Date.parse(text)) || text === '0', `Date.parse takes ${text}`)
      const ttl = await ttlOf(`/bad-${name.replaceAll(' ', '-')}`, text)
      assert.ok(ttl <= 0, `${text}: ttl ${ttl}`)
    })
  }

  test('If-Modified-Since and If-Range in the asctime form compare in UTC', async () => {
    const lm = inHours(-10)
    headersFor.set('/validators', { 'Last-Modified': imf(lm), 'Cache-Control': 'max-age=600' })
    const url = `http://127.0.0.1:${router.port}/validators`
    assert.equal((await get(url)).status, 200)
    assert.equal((await get(url, { headers: { 'If-Modified-Since': asctime(lm) } })).status, 304)
    // Two hours before Last-Modified: modified since, whatever the host's zone.
    assert.equal((await get(url, { headers: { 'If-Modified-Since': asctime(inHours(-12)) } })).status, 200)
    const ranged = await get(url, { headers: { Range: 'bytes=0-3', 'If-Range': asctime(lm) } })
    assert.equal(ranged.status, 206)
    assert.equal(ranged.body, 'body')
    const invalid = await get(url, { headers: { Range: 'bytes=0-3', 'If-Range': imf(lm).replace('GMT', 'UTC') } })
    assert.equal(invalid.status, 200)
  })
})
