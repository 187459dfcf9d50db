import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import tls from 'node:tls'
import { CA, fixture, freePort, scratch, writeConf } from './helpers.js'
import { captureBackend, HITCH, hitchMissing, OUR_CLI, pemBlock, startProgram, testConfig, userLines } from './hitch-helpers.js'

/**
 * Debian's hitch and ours on the same hitch.conf (only the ports differ): the bytes each writes
 * to its backend (the PROXY v2 header with its TLVs, then the client's data) must be the same,
 * and a bad line must stop both at load.
 */

type T = Parameters<typeof scratch>[0]

/** Starts hitch and ours on `lines` (FRONTEND1, FRONTEND2 and BACKEND filled in per program). */
async function both(t: T, lines: string[], backendPort: number): Promise<{ hitch: number[]; ours: number[] }> {
  const dir = await scratch(t)
  const count = new Set(lines.join('\n').match(/FRONTEND\d/g)).size
  const ports = { hitch: [] as number[], ours: [] as number[] }
  for (const program of ['hitch', 'ours'] as const) {
    for (let i = 0; i < count; i++) ports[program].push(await freePort())
    const text = lines.map((l) =>
      l.replace(/FRONTEND(\d)/g, (_, n) => String(ports[program][Number(n) - 1])).replace('BACKEND', String(backendPort)),
    )
    const file = await writeConf(dir, [...text, ...userLines], `${program}.conf`)
    const first = ports[program][0] as number
    if (program === 'hitch') await startProgram(t, HITCH, [`--config=${file}`], first)
    else await startProgram(t, process.execPath, [OUR_CLI, `--config=${file}`], first)
  }
  return ports
}

/** One client: handshake, send `data`, end; resolves with the negotiated protocol (or the error). */
function client(port: number, data: string, opts: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: CA, ...opts })
    s.on('secureConnect', () => s.end(data))
    s.on('data', () => undefined)
    s.on('error', (err) => resolve(`error: ${err.message}`))
    s.on('close', () => resolve(String(s.alpnProtocol)))
    s.setTimeout(10_000, () => s.destroy(new Error('timeout')))
  })
}

/** The header with the two ports zeroed (they are the only bytes that must differ). */
function masked(b: Buffer): string {
  const c = Buffer.from(b)
  c.fill(0, 24, 28)
  return c.toString('hex')
}

const skip = hitchMissing()
const base = (extra: string[]) => [
  'frontend = "[127.0.0.1]:FRONTEND1"',
  'frontend = {',
  '  host = "127.0.0.1"',
  '  port = "FRONTEND2"',
  '  client-verify = optional',
  `  client-verify-ca = "${fixture('ca.crt')}"`,
  // A frontend's own settings apply to its own certificates only (hitch.conf(5)).
  ...pemBlock.map((l) => `  ${l}`),
  '}',
  'backend = "[127.0.0.1]:BACKEND"',
  ...pemBlock,
  ...extra,
]

describe('hitch and ours on the same hitch.conf: the PROXY v2 header', { skip }, () => {
  test('ALPN, authority (SNI) and SSL TLVs, byte for byte as hitch writes them', async (t) => {
    const backend = await captureBackend(t)
    const ports = await both(t, base(['alpn-protos = "h2, http/1.1"', 'write-proxy-v2 = on']), backend.port)
    const cases: [string, tls.ConnectionOptions][] = [
      ['TLS 1.3, SNI, ALPN h2', { servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }],
      ['TLS 1.2, no SNI, no ALPN', { maxVersion: 'TLSv1.2' }],
      ['ALPN http/1.1 only', { servername: 'localhost', ALPNProtocols: ['http/1.1'] }],
      ['a client certificate', { servername: 'localhost', cert: await readFile(fixture('client.crt')), key: await readFile(fixture('client.key')) }],
    ]
    const results = { hitch: {} as Record<string, string>, ours: {} as Record<string, string> }
    for (const program of ['hitch', 'ours'] as const) {
      for (const [name, opts] of cases) {
        const port = name === 'a client certificate' ? ports[program][1] : ports[program][0]
        const alpn = await client(port as number, `data for ${name}`, opts)
        results[program][name] = `${alpn} ${masked(await backend.next())}`
      }
    }
    assert.deepEqual(results.ours, results.hitch)
    // What the header says, read back: h2, the server name, and the SSL TLV's version and cipher.
    const h2 = Buffer.from((results.hitch['TLS 1.3, SNI, ALPN h2'] as string).split(' ')[1] as string, 'hex')
    assert.equal((results.hitch['TLS 1.3, SNI, ALPN h2'] as string).split(' ')[0], 'h2')
    assert.match(h2.toString('latin1'), /\x01\x00\x02h2\x02\x00\x09localhost\x20..\x01\x00\x00\x00\x01\x21\x00\x07TLSv1\.3\x23/s)
    // With a verified client certificate: SSL|CERT_CONN|CERT_SESS and verify 0.
    const withCert = Buffer.from((results.hitch['a client certificate'] as string).split(' ')[1] as string, 'hex')
    assert.match(withCert.toString('latin1'), /\x20..\x07\x00\x00\x00\x00\x21/s)
    assert.match(h2.toString('latin1'), /data for TLS 1\.3, SNI, ALPN h2$/)
  })

  test('proxy-tlv = off leaves out the SSL TLV; write-proxy-v1 writes the v1 line', async (t) => {
    const backend = await captureBackend(t)
    const v2 = await both(t, base(['alpn-protos = "h2, http/1.1"', 'write-proxy-v2 = on', 'proxy-tlv = off']), backend.port)
    const got: Record<string, string> = {}
    for (const program of ['hitch', 'ours'] as const) {
      await client(v2[program][0] as number, 'x', { servername: 'localhost', ALPNProtocols: ['h2'] })
      got[program] = masked(await backend.next())
    }
    assert.equal(got.ours, got.hitch)
    assert.equal(Buffer.from(got.hitch as string, 'hex').readUInt16BE(14), 12 + 5 + 12)

    const backend1 = await captureBackend(t)
    const v1 = await both(t, base(['write-proxy-v1 = on']), backend1.port)
    for (const program of ['hitch', 'ours'] as const) {
      await client(v1[program][0] as number, 'y')
      const line = (await backend1.next()).toString('latin1')
      assert.match(line, new RegExp(`^PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 \\d+ ${v1[program][0]}\\r\\ny$`), program)
    }
  })

  test('a client whose ALPN has nothing in common gets no backend connection from either', async (t) => {
    const backend = await captureBackend(t)
    const ports = await both(t, base(['alpn-protos = "h2, http/1.1"', 'write-proxy-v2 = on']), backend.port)
    for (const program of ['hitch', 'ours'] as const) {
      await client(ports[program][0] as number, 'refused', { ALPNProtocols: ['spdy/3'] })
      await client(ports[program][0] as number, 'marker', { ALPNProtocols: ['h2'] })
      // Connections are captured in the order they closed: the first one the backend saw is the marker's.
      assert.match((await backend.next()).toString('latin1'), /marker$/, program)
    }
  })
})

describe('hitch and ours on the same hitch.conf: which certificate', { skip }, () => {
  test('pem-dir with pem-dir-glob: the certificate by SNI name (exact, wildcard), the first file without a match', async (t) => {
    const dir = await scratch(t)
    const certs = join(dir, 'certs')
    await mkdir(certs)
    for (const name of ['example', 'localhost']) {
      await writeFile(join(certs, `${name}.pem`), Buffer.concat([await readFile(fixture(`${name}.key`)), await readFile(fixture(`${name}.crt`))]))
    }
    await writeFile(join(certs, 'notes.txt'), 'not a certificate')
    const backend = await captureBackend(t)
    const ports = await both(t, ['frontend = "[127.0.0.1]:FRONTEND1"', 'backend = "[127.0.0.1]:BACKEND"', `pem-dir = "${certs}"`, 'pem-dir-glob = "*.pem"'], backend.port)
    const subject = (port: number, servername: string | undefined) =>
      new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername ? { servername } : {}) })
        s.on('secureConnect', () => {
          resolve(s.getPeerX509Certificate()?.subject ?? '-')
          s.destroy()
        })
        s.on('error', (err) => resolve(`error: ${err.message}`))
      })
    const names = [undefined, 'localhost', 'www.example.com', 'a.example.org', 'unknown.test']
    const seen: Record<string, string[]> = { hitch: [], ours: [] }
    for (const program of ['hitch', 'ours'] as const) {
      for (const n of names) seen[program]?.push(`${n}: ${await subject(ports[program][0] as number, n)}`)
    }
    assert.deepEqual(seen.ours, seen.hitch)
    assert.deepEqual(seen.hitch, [
      'undefined: CN=www.example.com',
      'localhost: CN=localhost',
      'www.example.com: CN=www.example.com',
      'a.example.org: CN=www.example.com',
      'unknown.test: CN=www.example.com',
    ])
  })
})

describe('hitch and ours refuse the same bad hitch.conf lines at load, ours in one line', { skip }, () => {
  const BAD: [string, string[], RegExp][] = [
    ['an unknown key', ['bogus-key = on'], /:4: syntax error: 'bogus-key = on'$/],
    ['a bool that is not one', ['write-proxy-v2 = maybe'], /:4: syntax error: 'write-proxy-v2 = maybe'$/],
    ['a number that is not one', ['workers = many'], /:4: syntax error: 'workers = many'$/],
    ['a negative number', ['keepalive = -1'], /:4: syntax error: 'keepalive = -1'$/],
    ['an unknown TLS version', ['tls-protos = TLSv1.2 TLSv9'], /:4: tls-protos: Invalid 'tls-protos' option 'TLSv9'$/],
    ['tls-protos quoted', ['tls-protos = "TLSv1.2"'], /:4: syntax error: 'tls-protos = "TLSv1.2"'$/],
    ['a backend without brackets', ['backend = "nohost"'], /:4: backend: Invalid address string 'nohost'$/],
    ['a frontend without brackets', ['frontend = "127.0.0.1:8443"'], /:4: frontend: Invalid address string '127\.0\.0\.1:8443'$/],
    ['a port out of range', ['frontend = "[127.0.0.1]:99999"'], /:4: frontend: Invalid port number '99999'$/],
    ['an empty ALPN protocol', ['alpn-protos = "h2,,http/1.1"'], /:4: alpn-protos: alpn-protos configuration "h2,,http\/1\.1" is bad\. alpn-protos has empty proto in list$/],
    ['PROXY v1 and v2 together', ['write-proxy-v1 = on', 'write-proxy-v2 = on'], /:5: write-proxy-v2: Options --write-ip, --write-proxy-proxy, --write-proxy-v1 and --write-proxy-v2 are mutually exclusive\.$/],
    ['a missing certificate', ['pem-file = "/nonexistent/cert.pem"'], /:4: pem-file: Unable to stat x509 certificate PEM file '\/nonexistent\/cert\.pem': ENOENT$/],
    ['an unknown cipher', ['ciphers = "NOPE-CIPHER"'], /ciphers: cannot build the TLS context: .*no cipher match$/],
    ['an unknown key in a frontend block', ['frontend = {', '  port = "8443"', '  bogus = 1', '}'], /:6: syntax error: 'bogus = 1'$/],
  ]
  test('each bad line: hitch -t and tls-terminator -t both exit non-zero; ours names the line', async (t) => {
    const dir = await scratch(t)
    // hitch's usual pem-file: the key and the certificate in one file.
    const combined = join(dir, 'localhost.pem')
    await writeFile(combined, Buffer.concat([await readFile(fixture('localhost.key')), await readFile(fixture('localhost.crt'))]))
    const good = ['frontend = "[127.0.0.1]:8443"', 'backend = "[127.0.0.1]:8000"', `pem-file = "${combined}"`]
    for (const [name, lines, message] of BAD) {
      const file = await writeConf(dir, [...good, ...lines], 'bad.conf')
      const [theirs, ours] = [await testConfig(HITCH, file), await testConfig(process.execPath, file)]
      assert.notEqual(theirs.code, 0, `hitch accepted ${name}: ${theirs.output}`)
      assert.equal(ours.code, 1, `ours accepted ${name}: ${ours.output}`)
      const [line, ...more] = ours.output.trim().split('\n')
      assert.deepEqual(more, [], `${name}: one line only`)
      assert.match(line as string, message, name)
    }
  })
})
