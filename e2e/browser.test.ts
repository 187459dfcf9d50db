import assert from 'node:assert/strict'
import { createHash, createPublicKey } from 'node:crypto'
import { access, constants, mkdir, readFile } from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { type Browser, chromium } from 'playwright-core'
import { io } from 'socket.io-client'
import { LAYERS, type Layer, missingProgram, type TlsConfig } from './layers.js'
import { REPO } from './processes.js'
import { CERT_DIR, type Stack, startStack } from './stack.js'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = `${REPO}.artifacts`
// The flags the project agreed on for Debian's chromium: no sandbox (runs as root in CI), no
// GPU, and nothing that talks to the network on its own, so every request it makes is ours.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const noChromium = await access(CHROMIUM, constants.X_OK).then(
  () => undefined,
  () => `${CHROMIUM} is not installed: apt-get install chromium`,
)

/**
 * Chromium trusts exactly our dev server key, by the SHA-256 of its SubjectPublicKeyInfo
 * (what HPKP pins hash), instead of ignoring every certificate error.
 */
async function spkiHash(): Promise<string> {
  const pem = await readFile(`${CERT_DIR}/server.crt`, 'utf8')
  const der = createPublicKey(pem).export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(der).digest('base64')
}

/** An expression evaluated in the page (this project compiles without the DOM types). */
const inPage = (expression: string) => expression

/**
 * The stacks the browser visits, and the HTTP version its page must arrive over: stunnel.conf
 * offers no ALPN (http/1.1); hitch.conf offers h2, which the chain carries when the router
 * speaks it: ours or varnishd, each with -p feature=+http2.
 */
const stacks: [string, Layer[], TlsConfig, string][] = [
  ['ours', [], 'stunnel', 'http/1.1'],
  ['all-real', [...LAYERS], 'stunnel', 'http/1.1'],
  ['ours-tls-on-hitch.conf -> varnishd', ['router', 'static'], 'hitch', 'h2'],
  ['hitch -> varnishd -> nginx', [...LAYERS], 'hitch', 'h2'],
]

for (const [name, real, tlsConfig, httpVersion] of stacks) {
  const missing = (await Promise.all(real.map((l) => missingProgram(l, tlsConfig)))).find((m) => m !== undefined)
  describe(`a real browser on the ${name} stack`, { skip: noChromium ?? missing }, () => {
    let stack: Stack
    let browser: Browser
    before(async () => {
      stack = await startStack({ real, tlsConfig })
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [...FLAGS, `--ignore-certificate-errors-spki-list=${await spkiHash()}`],
        timeout: 30_000,
      })
    })
    after(async () => {
      await browser?.close()
      await stack?.stop()
    })

    test('the page connects over websocket on wss:, and shows a message a node client sends', async (t) => {
      const page = await browser.newPage({ viewport: { width: 1100, height: 700 } })
      t.after(() => page.close())
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(e.message))
      const res = await page.goto(`${stack.httpsUrl}/`, { timeout: 15_000 })
      assert.equal(res?.status(), 200)
      // The page starts on polling and upgrades: wait for the upgrade, bounded.
      await page.waitForSelector('#state[data-state="connected"]', { timeout: 15_000 })
      await page.waitForFunction(inPage("document.querySelector('#transport').textContent === 'websocket'"), undefined, {
        timeout: 15_000,
      })
      assert.equal(await page.textContent('#scheme'), 'wss:')
      // The page came over the HTTP version the chain negotiates (ALPN), and the page says so;
      // the websocket still upgraded (above): browsers open it on an HTTP/1.1 connection of its
      // own when the h2 server does not offer RFC 8441's extended CONNECT (varnishd does not).
      const protocol = await page.evaluate(inPage("performance.getEntriesByType('navigation')[0].nextHopProtocol"))
      assert.equal(protocol, httpVersion)
      assert.equal(await page.textContent('#http-protocol'), httpVersion)

      const client = io(stack.httpsUrl, { transports: ['websocket'], ca: stack.caCert, reconnection: false, forceNew: true })
      t.after(() => client.close())
      await new Promise<void>((resolve, reject) => {
        client.once('connect', resolve)
        client.once('connect_error', reject)
      })
      await page.waitForFunction(inPage("Number(document.querySelector('#clients').textContent) >= 2"), undefined, { timeout: 10_000 })
      const text = `hello from node to the ${name} stack`
      client.emit('message', text)
      const shown = page.locator('#messages li .text', { hasText: text })
      await shown.waitFor({ timeout: 10_000 })
      assert.equal(await shown.textContent(), text)
      // The round-trip time has been measured at least once (it runs every second).
      await page.waitForFunction(inPage("document.querySelector('#rtt').textContent.endsWith(' ms')"), undefined, { timeout: 10_000 })
      // The page answers the node client from the browser, through the same chain.
      await page.fill('#message', 'and hello back from chromium')
      const back = new Promise<string>((resolve) => {
        client.on('message', (m: { text: string }) => {
          if (m.text === 'and hello back from chromium') resolve(m.text)
        })
      })
      await page.click('button[type=submit]')
      assert.equal(await back, 'and hello back from chromium')
      await page.locator('#messages li.mine').waitFor({ timeout: 10_000 })

      await mkdir(ARTIFACTS, { recursive: true })
      await page.screenshot({ path: `${ARTIFACTS}/browser-${name.replace(/[^a-z0-9.-]+/gi, '-')}.png` })
      assert.deepEqual(errors, [])
    })
  })
}
