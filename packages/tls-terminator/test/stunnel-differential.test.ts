import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { constants } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import tls from 'node:tls'
import { createTlsTerminator, loadStunnelConf } from '../src/index.js'
import {
  CA,
  captureLogger,
  certLines,
  fixture,
  freePort,
  haveStunnel,
  scratch,
  startBackend,
  startStunnel,
  writeConf,
} from './helpers.js'

/**
 * The real stunnel and ours on the same stunnel.conf (only the ports differ), asked the same
 * questions by the same node:tls client: what a client can tell must be the same.
 */

type T = Parameters<typeof scratch>[0] & { skip(message: string): void }

/** `ACCEPT1`, `ACCEPT2`, ... in the lines become a port of each program. */
async function both(t: T, lines: string[]): Promise<{ stunnel: number[]; ours: number[] }> {
  const dir = await scratch(t)
  const count = new Set(lines.join('\n').match(/ACCEPT\d/g)).size
  const ports = { stunnel: [] as number[], ours: [] as number[] }
  for (const program of ['stunnel', 'ours'] as const) {
    for (let i = 0; i < count; i++) ports[program].push(await freePort())
    const text = lines.map((l) => l.replace(/ACCEPT(\d)/g, (_, n) => String(ports[program][Number(n) - 1])))
    const file = await writeConf(dir, ['foreground = yes', 'pid =', ...text], `${program}.conf`)
    if (program === 'stunnel') await startStunnel(t, file, ports.stunnel[0] as number)
    else {
      const terminator = createTlsTerminator((await loadStunnelConf(file)).model, captureLogger().logger)
      await terminator.listen()
      t.after(() => terminator.close({ drainTimeoutMs: 0 }))
    }
  }
  return ports
}

interface Handshake {
  cipher: string
  protocol: string
  reused: boolean
  /** TLS 1.2 without tickets: the session ID the server gave, to offer again. */
  session: Buffer | undefined
}

/** One handshake and an echo; an error message if the handshake failed. */
function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Handshake | string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ...opts })
    let result: Handshake | undefined
    let session: Buffer | undefined
    // In TLS 1.2 the session comes before secureConnect, in TLS 1.3 after it.
    s.on('session', (sess: Buffer) => {
      session = sess
      if (result) result.session = sess
    })
    s.on('secureConnect', () => {
      result = {
        cipher: s.getCipher().name,
        protocol: s.getProtocol() ?? '-',
        reused: s.isSessionReused(),
        session,
      }
      s.write('ping')
    })
    s.on('data', () => s.end())
    s.on('error', (err) => resolve(err.message))
    s.on('close', () => resolve(result ?? 'closed'))
    s.setTimeout(10_000, () => s.destroy(new Error('timeout')))
  })
}

/** A client certificate from the fixtures' CA that expired in 2021, made with `openssl ca`. */
async function expiredClientCert(dir: string): Promise<{ cert: Buffer; key: Buffer }> {
  const run = (args: string[]) =>
    new Promise<void>((resolve, reject) => execFile('openssl', args, { cwd: dir }, (err) => (err ? reject(err) : resolve())))
  await writeFile(join(dir, 'index.txt'), '')
  await writeFile(join(dir, 'serial'), '01\n')
  await writeFile(
    join(dir, 'ca.cnf'),
    '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n',
  )
  await run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'expired.key'])
  await run(['req', '-new', '-key', 'expired.key', '-subj', '/CN=bob', '-out', 'expired.csr'])
  await run(['ca', '-config', 'ca.cnf', '-batch', '-notext', '-cert', fixture('ca.crt'), '-keyfile', fixture('ca.key')]
    .concat(['-in', 'expired.csr', '-out', 'expired.crt', '-startdate', '20200101000000Z', '-enddate', '20210101000000Z']))
  return { cert: await readFile(join(dir, 'expired.crt')), key: await readFile(join(dir, 'expired.key')) }
}

const NO_TICKET = { maxVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET } as const

describe('the real stunnel and ours on the same stunnel.conf', { skip: !haveStunnel() && 'stunnel is not installed' }, () => {
  test("cipher choice: stunnel's default list, the client's order unless CIPHER_SERVER_PREFERENCE, ciphersuites alone, sslVersion = all", async (t) => {
    const backend = await startBackend(t)
    const ports = await both(t, [
      ...certLines,
      '[plain]',
      'accept = 127.0.0.1:ACCEPT1',
      `connect = ${backend.port}`,
      '[server-order]',
      'accept = 127.0.0.1:ACCEPT2',
      `connect = ${backend.port}`,
      'ciphers = ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA',
      'options = CIPHER_SERVER_PREFERENCE',
      '[suites-only]',
      'accept = 127.0.0.1:ACCEPT3',
      `connect = ${backend.port}`,
      'ciphersuites = TLS_AES_128_GCM_SHA256',
      '[versions]',
      'accept = 127.0.0.1:ACCEPT4',
      `connect = ${backend.port}`,
      'sslVersionMax = TLSv1.2',
      'sslVersion = all',
    ])
    const ask = async (p: number[]) => {
      const v12 = { maxVersion: 'TLSv1.2' } as const
      const pick = async (port: number, opts: tls.ConnectionOptions) => {
        const r = await handshake(port, opts)
        return typeof r === 'string' ? 'refused' : `${r.protocol} ${r.cipher}`
      }
      const [plain, serverOrder, suitesOnly, versions] = p as [number, number, number, number]
      return {
        clientOrder: await pick(plain, { ...v12, ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-GCM-SHA384' }),
        camellia: await pick(plain, { ...v12, ciphers: 'ECDHE-ECDSA-CAMELLIA256-SHA384' }),
        ffdhe: await pick(plain, { minVersion: 'TLSv1.3', ecdhCurve: 'ffdhe2048' }),
        serverOrder: await pick(serverOrder, { ...v12, ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-GCM-SHA384' }),
        suitesOnly12: await pick(suitesOnly, v12),
        suitesOnly13: await pick(suitesOnly, { minVersion: 'TLSv1.3' }),
        // Line by line: the later `sslVersion = all` lifts the earlier maximum again.
        versions: await pick(versions, { ciphers: 'TLS_AES_128_GCM_SHA256' }),
      }
    }
    const stunnel = await ask(ports.stunnel)
    assert.deepEqual(stunnel, {
      clientOrder: 'TLSv1.2 ECDHE-ECDSA-AES128-SHA',
      camellia: 'TLSv1.2 ECDHE-ECDSA-CAMELLIA256-SHA384',
      ffdhe: 'refused',
      serverOrder: 'TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384',
      suitesOnly12: 'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256',
      suitesOnly13: 'TLSv1.3 TLS_AES_128_GCM_SHA256',
      versions: 'TLSv1.3 TLS_AES_128_GCM_SHA256',
    })
    assert.deepEqual(await ask(ports.ours), stunnel)
  })

  test('TLS 1.2 resumption by session ID (no tickets): sessionResume, sessionCacheSize, per service', async (t) => {
    const backend = await startBackend(t)
    const ports = await both(t, [
      ...certLines,
      '[cached]',
      'accept = 127.0.0.1:ACCEPT1',
      `connect = ${backend.port}`,
      '[off]',
      'accept = 127.0.0.1:ACCEPT2',
      `connect = ${backend.port}`,
      'sessionResume = no',
      '[one]',
      'accept = 127.0.0.1:ACCEPT3',
      `connect = ${backend.port}`,
      'sessionCacheSize = 1',
    ])
    const ask = async (p: number[]) => {
      const [cached, off, one] = p as [number, number, number]
      const resumes = async (port: number, session: Buffer | undefined) => {
        const r = await handshake(port, { ...NO_TICKET, ...(session ? { session } : {}) })
        return typeof r === 'string' ? r : r.reused
      }
      // A server with its cache off gives no session ID, so there may be nothing to offer back.
      const first = async (port: number) => {
        const r = await handshake(port, NO_TICKET)
        assert.ok(typeof r !== 'string', `no handshake with port ${port}: ${r}`)
        return r.session
      }
      const a = await first(cached)
      const offSession = await first(off)
      const oldest = await first(one)
      const newest = await first(one)
      // In this order: every full handshake on [one] pushes the session before it out.
      return {
        cached: await resumes(cached, a),
        off: await resumes(off, offSession),
        kept: await resumes(one, newest),
        evicted: await resumes(one, oldest),
        otherService: await resumes(one, a),
      }
    }
    const stunnel = await ask(ports.stunnel)
    assert.deepEqual(stunnel, { cached: true, off: false, kept: true, evicted: false, otherService: false })
    assert.deepEqual(await ask(ports.ours), stunnel)
  })

  test('client certificates: verify = N and the verify options in file order; wrong CA and expired are refused', async (t) => {
    const backend = await startBackend(t)
    const ca = `CAfile = ${fixture('ca.crt')}`
    const ports = await both(t, [
      ...certLines,
      '[verify1]',
      'accept = 127.0.0.1:ACCEPT1',
      `connect = ${backend.port}`,
      ca,
      'verify = 1',
      '[late-chain]',
      'accept = 127.0.0.1:ACCEPT2',
      `connect = ${backend.port}`,
      ca,
      'requireCert = no',
      'verifyChain = yes',
      '[early-chain]',
      'accept = 127.0.0.1:ACCEPT3',
      `connect = ${backend.port}`,
      ca,
      'verifyChain = yes',
      'requireCert = no',
    ])
    const clients = {
      none: {},
      alice: { cert: await readFile(fixture('client.crt')), key: await readFile(fixture('client.key')) },
      mallory: { cert: await readFile(fixture('stranger.crt')), key: await readFile(fixture('stranger.key')) },
      expired: await expiredClientCert(await scratch(t)),
    }
    // Whether the backend's echo came back: a refusal is an alert from stunnel and a plain close
    // from ours (README, differences), so only getting through is compared.
    const echoed = (port: number, who: tls.ConnectionOptions) =>
      new Promise<boolean>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ...who })
        s.on('secureConnect', () => s.write('ping'))
        s.on('data', () => {
          s.destroy()
          resolve(true)
        })
        s.on('error', () => undefined)
        s.on('close', () => resolve(false))
      })
    const ask = async (p: number[]) => {
      const out: Record<string, string> = {}
      for (const [i, service] of ['verify1', 'late-chain', 'early-chain'].entries()) {
        const passed = []
        for (const [name, who] of Object.entries(clients)) if (await echoed(p[i] as number, who)) passed.push(name)
        out[service] = passed.join(' ')
      }
      return out
    }
    const stunnel = await ask(ports.stunnel)
    assert.deepEqual(stunnel, { verify1: 'none alice', 'late-chain': 'alice', 'early-chain': 'none alice' })
    assert.deepEqual(await ask(ports.ours), stunnel)
  })
})
