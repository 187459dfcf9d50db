import assert from 'node:assert/strict'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ConfigError, UsageError } from '@edgestack/common'
import { loadStunnelConf, modelFromFlags } from '../src/index.js'
import { certLines, fixture, scratch, writeConf } from './helpers.js'

const REPO_CONF = fileURLToPath(new URL('../../../../config/stunnel.conf', import.meta.url))

async function load(t: Parameters<typeof scratch>[0], lines: string[]) {
  const dir = await scratch(t)
  const file = await writeConf(dir, lines)
  return { file, ...(await loadStunnelConf(file)) }
}

/** Loads and expects a ConfigError; returns its message with the temp path replaced by FILE. */
async function failure(t: Parameters<typeof scratch>[0], lines: string[]): Promise<string> {
  const dir = await scratch(t)
  const file = await writeConf(dir, lines)
  const err = await loadStunnelConf(file).then(
    () => assert.fail('expected a ConfigError'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof ConfigError, String(err))
  return err.message.replaceAll(file, 'FILE')
}

const service = (...extra: string[]) => ['[s]', 'accept = 127.0.0.1:0', 'connect = 8080', ...extra]

describe('stunnel.conf: what it accepts', () => {
  test("the repository's config/stunnel.conf (the article's, dev ports)", async () => {
    const { model, warnings } = await loadStunnelConf(REPO_CONF)
    assert.deepEqual(warnings, [])
    assert.equal(model.global.foreground, 'yes')
    assert.equal(model.global.debug, 5)
    assert.equal(model.listeners.length, 1)
    const s = model.listeners[0]?.service
    assert.equal(s?.name, 'https')
    assert.deepEqual(s?.accept, { host: '127.0.0.1', port: 8443 })
    assert.deepEqual(s?.connect, [{ host: '127.0.0.1', port: 8080 }])
    assert.equal(s?.timeouts.closeMs, 0)
    assert.equal(s?.cert, '.certs/server.crt')
  })

  test('the flags build the same model as the equivalent stunnel.conf', async (t) => {
    const flags = modelFromFlags({ accept: '127.0.0.1:8443', connect: '8080', cert: 'c.pem', key: 'k.pem' }).model
    const { model } = await load(t, [
      'foreground = yes',
      '[default]',
      'accept = 127.0.0.1:8443',
      'connect = 8080',
      'cert = c.pem',
      'key = k.pem',
    ])
    const strip = (m: typeof model) =>
      JSON.parse(
        JSON.stringify(m, (k, v) => (k === 'position' || k === 'positions' || k === 'source' ? undefined : v)),
      ) as unknown
    assert.deepEqual(strip(flags), strip(model))
    assert.equal(flags.global.source, '(command line)')
  })

  test('bad flags are usage errors naming the flag', () => {
    assert.throws(
      () => modelFromFlags({ accept: '127.0.0.1:99999', connect: '1', cert: 'c', key: 'k' }),
      (e: unknown) => e instanceof UsageError && /^--accept: .*99999 is out of range/.test(e.message),
    )
  })

  test('secure defaults: TLS 1.2 minimum, handshake timeout, stunnel timeouts, prio failover', async (t) => {
    const { model } = await load(t, [...certLines, ...service()])
    const s = model.listeners[0]?.service
    assert.equal(s?.sslVersionMin, 'TLSv1.2')
    assert.equal(s?.sslVersionMax, 'TLSv1.3')
    assert.deepEqual(s?.timeouts, { busyMs: 10_000, closeMs: 60_000, connectMs: 10_000, idleMs: 43_200_000 })
    assert.equal(s?.failover, 'prio')
    assert.equal(s?.sessionCacheSize, 1000)
    assert.equal(s?.key, fixture('localhost.key'))
    // `all` is stunnel's "no bound": the highest version as a maximum (the floor stays TLS 1.2).
    for (const line of ['sslVersion = all', 'sslVersionMax = all']) {
      const v = (await load(t, [...certLines, ...service('sslVersionMax = TLSv1.2', line)])).model.listeners[0]?.service
      assert.deepEqual([v?.sslVersionMin, v?.sslVersionMax], ['TLSv1.2', 'TLSv1.3'], line)
    }
    assert.equal(model.global.foreground, 'no')
    assert.equal(model.maxConnections, 10_000)
  })

  test('comments (; and #), blank lines, any case, spaces around =, key defaults to cert', async (t) => {
    const { model } = await load(t, [
      '; a comment',
      '# another',
      '',
      `  CERT=${fixture('localhost.crt')}  `,
      '[s]',
      'Accept = 0',
      'CONNECT   =   127.0.0.1:8080',
    ])
    const s = model.listeners[0]?.service
    assert.equal(s?.cert, fixture('localhost.crt'))
    assert.equal(s?.key, fixture('localhost.crt'))
    assert.deepEqual(s?.accept, { host: '0.0.0.0', port: 0 })
  })

  test('global service options are defaults; a service overrides them one by one', async (t) => {
    const { model } = await load(t, [
      ...certLines,
      'TIMEOUTidle = 5',
      'TIMEOUTconnect = 3',
      ...service('TIMEOUTidle = 7'),
      '[t]',
      'accept = 127.0.0.1:0',
      'connect = 1',
    ])
    const [a, b] = model.listeners.map((l) => l.service)
    assert.equal(a?.timeouts.idleMs, 7000)
    assert.equal(a?.timeouts.connectMs, 3000)
    assert.equal(b?.timeouts.idleMs, 5000)
  })

  test('several connect lines, failover rr, local, protocol proxy', async (t) => {
    const { model } = await load(t, [
      ...certLines,
      ...service('connect = 127.0.0.1:8081', 'connect = [::1]:8082', 'failover = rr', 'local = 127.0.0.2', 'protocol = proxy'),
    ])
    const s = model.listeners[0]?.service
    assert.deepEqual(s?.connect, [
      { host: '127.0.0.1', port: 8080 },
      { host: '127.0.0.1', port: 8081 },
      { host: '::1', port: 8082 },
    ])
    assert.equal(s?.failover, 'rr')
    assert.equal(s?.local, '127.0.0.2')
    assert.equal(s?.protocol, 'proxy')
  })

  test('sni secondaries attach to their primary, in order, patterns lowercased', async (t) => {
    const { model } = await load(t, [
      ...certLines,
      ...service(),
      '[www]',
      'sni = s:WWW.example.com',
      'sni = s:*.example.org',
      'connect = 9000',
      `cert = ${fixture('example.crt')}`,
      `key = ${fixture('example.key')}`,
    ])
    assert.equal(model.listeners.length, 1)
    const l = model.listeners[0]
    assert.deepEqual(
      l?.virtualHosts.map((v) => [v.pattern, v.service.name]),
      [
        ['www.example.com', 'www'],
        ['*.example.org', 'www'],
      ],
    )
    assert.equal(l?.virtualHosts[0]?.service.accept, undefined)
  })

  test('client certificates: verifyChain implies requireCert unless it says no; verify = N', async (t) => {
    const ca = `CAfile = ${fixture('ca.crt')}`
    const a = (await load(t, [...certLines, ...service(ca, 'verifyChain = yes')])).model.listeners[0]?.service
    assert.deepEqual(a?.clientCerts, {
      caFile: fixture('ca.crt'),
      caPath: undefined,
      crlFile: undefined,
      verifyChain: true,
      verifyPeer: false,
      requireCert: true,
      requestCert: true,
    })
    const b = (await load(t, [...certLines, ...service(ca, 'verifyChain = yes', 'requireCert = no')])).model.listeners[0]
      ?.service
    assert.equal(b?.clientCerts.requireCert, false)
    const c = (await load(t, [...certLines, ...service(ca, 'verify = 4')])).model.listeners[0]?.service
    assert.deepEqual([c?.clientCerts.verifyChain, c?.clientCerts.verifyPeer, c?.clientCerts.requireCert], [false, true, true])
    // In file order, as stunnel's options.c sets its flags: the later line wins.
    const flags = async (...lines: string[]) => {
      const cc = (await load(t, [...certLines, ...service(ca, ...lines)])).model.listeners[0]?.service.clientCerts
      return [cc?.requestCert, cc?.requireCert, cc?.verifyChain, cc?.verifyPeer]
    }
    assert.deepEqual(await flags('requireCert = no', 'verifyChain = yes'), [true, true, true, false])
    assert.deepEqual(await flags('verify = 1'), [true, false, true, false])
    assert.deepEqual(await flags('verify = 0'), [true, false, false, false])
    assert.deepEqual(await flags('verify = 3', 'verifyPeer = no'), [true, true, true, false])
    assert.deepEqual(await flags(), [false, false, false, false])
    const global = (await load(t, [...certLines, ca, 'verify = 2', ...service('verifyChain = no')])).model.listeners[0]?.service
    assert.deepEqual([global?.clientCerts.requireCert, global?.clientCerts.verifyChain], [true, false])
  })

  test('TLS knobs: versions, ciphers, suites, curves, options, tickets, session timeout, debug', async (t) => {
    const { model } = await load(t, [
      'debug = daemon.info',
      ...certLines,
      ...service(
        'sslVersionMin = TLSv1.3',
        'ciphers = ECDHE-ECDSA-AES128-GCM-SHA256',
        'ciphersuites = TLS_AES_128_GCM_SHA256',
        'curves = prime256v1:X25519',
        'options = CIPHER_SERVER_PREFERENCE',
        'options = -NO_TICKET',
        `ticketKeySecret = ${'ab:'.repeat(15)}ab`,
        `ticketMacSecret = ${'cd'.repeat(32)}`,
        'sessionCacheTimeout = 60',
        'sessionCacheSize = 0',
        'debug = warning',
      ),
    ])
    const s = model.listeners[0]?.service
    assert.equal(model.global.debug, 6)
    assert.equal(s?.debug, 4)
    assert.equal(s?.sslVersionMin, 'TLSv1.3')
    assert.equal(s?.ciphers, 'ECDHE-ECDSA-AES128-GCM-SHA256')
    assert.equal(s?.ciphersuites, 'TLS_AES_128_GCM_SHA256')
    assert.equal(s?.curves, 'prime256v1:X25519')
    assert.ok((s?.optionsSet ?? 0) > 0)
    assert.ok((s?.optionsClear ?? 0) > 0)
    assert.equal(s?.ticketKeySecret?.length, 16)
    assert.equal(s?.ticketMacSecret?.length, 32)
    assert.equal(s?.sessionCacheTimeoutS, 60)
    // stunnel's 0 is "no limit"; ours keeps a bound (README, differences).
    assert.equal(s?.sessionCacheSize, 100_000)
  })

  test('global options: pid, output, setuid, setgid, foreground quiet', async (t) => {
    const { model } = await load(t, [
      'pid = /tmp/x.pid',
      'output = /tmp/x.log',
      'setuid = nobody',
      'setgid = nogroup',
      'foreground = quiet',
      ...certLines,
      ...service(),
    ])
    assert.deepEqual(
      { ...model.global, source: undefined },
      {
        source: undefined,
        foreground: 'quiet',
        pid: '/tmp/x.pid',
        output: '/tmp/x.log',
        debug: 5,
        setuid: 'nobody',
        setgid: 'nogroup',
      },
    )
  })

  test('include = DIRECTORY reads its files in name order, in place', async (t) => {
    const dir = await scratch(t)
    await mkdir(join(dir, 'conf.d'))
    await writeFile(join(dir, 'conf.d', '02-b.conf'), '[b]\naccept = 127.0.0.1:0\nconnect = 2\n')
    await writeFile(join(dir, 'conf.d', '01-a.conf'), `${certLines.join('\n')}\n[a]\naccept = 127.0.0.1:0\nconnect = 1\n`)
    // stunnel stat(2)s each name: a symlink to a file is included, a dangling one and a directory are not.
    await writeFile(join(dir, 'c.conf'), '[c]\naccept = 127.0.0.1:0\nconnect = 3\n')
    await symlink(join(dir, 'c.conf'), join(dir, 'conf.d', '03-c.conf'))
    await symlink(join(dir, 'nowhere.conf'), join(dir, 'conf.d', '04-dangling.conf'))
    await mkdir(join(dir, 'conf.d', '05-dir'))
    const file = await writeConf(dir, [`include = ${join(dir, 'conf.d')}`])
    const { model } = await loadStunnelConf(file)
    assert.deepEqual(
      model.listeners.map((l) => l.service.name),
      ['a', 'b', 'c'],
    )
    assert.equal(model.listeners[1]?.service.position?.file, join(dir, 'conf.d', '02-b.conf'))
    assert.equal(model.listeners[1]?.service.position?.line, 1)
  })

  test('the model is frozen', async (t) => {
    const { model } = await load(t, [...certLines, ...service()])
    assert.ok(Object.isFrozen(model))
    assert.ok(Object.isFrozen(model.listeners[0]?.service.timeouts))
    assert.ok(Object.isFrozen(model.listeners[0]?.service.connect))
  })
})

describe('stunnel.conf: warnings for options that only tune what Node does', () => {
  test('each warning names file:line and option', async (t) => {
    const { file, warnings } = await load(t, [
      'RNDbytes = 64',
      ...certLines,
      ...service('stack = 65536', 'sslVersionMin = TLSv1', 'renegotiation = yes', 'delay = yes'),
    ])
    assert.deepEqual(
      warnings.map((w) => w.replaceAll(file, 'FILE')),
      [
        'FILE:1: RNDbytes: ignored: Node seeds OpenSSL itself',
        'FILE:7: stack: ignored: Node has no per-connection threads',
        'FILE:10: delay: ignored: backend names are resolved at every connect anyway',
        'FILE:8: sslVersionMin: raised to TLSv1.2; older versions are never negotiated',
        'FILE:9: renegotiation: stays disabled (client-initiated renegotiation is a DoS vector)',
      ],
    )
  })
})

describe('stunnel.conf: every bad line stops start-up with file:line and the problem', () => {
  const cases: [string, string[], string][] = [
    ['unknown option', ['frobnicate = 1'], 'FILE:1: option "frobnicate" is not supported'],
    ['known but unsupported', ['chroot = /var/empty'], 'FILE:1: option "chroot" is not supported (run it in a container or with systemd RootDirectory=)'],
    ['unsupported in a service', [...certLines, ...service('exec = /bin/sh')], 'FILE:6: option "exec" is not supported'],
    ['client = yes', [...certLines, ...service('client = yes')], 'FILE:6: option "client" is not supported (tls-terminator only terminates TLS)'],
    ['service option in global', ['accept = 443'], 'FILE:1: option "accept" belongs in a [service] section'],
    ['global option in a service', [...certLines, ...service('pid = /x')], 'FILE:6: option "pid" belongs in the global section, before any [service]'],
    ['bad yes/no', [...certLines, ...service('verifyChain = maybe')], 'FILE:6: verifyChain: expected yes or no, got "maybe"'],
    ['bad seconds', [...certLines, ...service('TIMEOUTidle = 1m')], 'FILE:6: TIMEOUTidle: "1m" is not a whole number of seconds'],
    ['bad address', [...certLines, '[s]', 'accept = 127.0.0.1:70000', 'connect = 1'], 'FILE:4: accept: invalid address "127.0.0.1:70000": port 70000 is out of range 0-65535'],
    ['local not an address', [...certLines, ...service('local = nonexistent.invalid')], 'FILE:6: local: "nonexistent.invalid" is not an IP address'],
    ['unix socket', [...certLines, '[s]', 'accept = 0', 'connect = /run/x.sock'], 'FILE:5: connect: Unix socket paths are not supported'],
    ['bad debug level', ['debug = verbose'], 'FILE:1: debug: "verbose" is not a level: use 0-7 or emerg, alert, crit, err, warning, notice, info, debug'],
    ['bad facility', ['debug = nowhere.5'], 'FILE:1: debug: "nowhere" is not a syslog facility'],
    ['bad foreground', ['foreground = maybe'], 'FILE:1: foreground: expected yes, quiet or no, got "maybe"'],
    ['no accept', [...certLines, '[s]', 'connect = 1'], 'FILE:3: [s]: accept is required (or sni = SERVICE:PATTERN)'],
    ['no connect', [...certLines, '[s]', 'accept = 0'], 'FILE:3: [s]: connect is required'],
    ['no cert', ['[s]', 'accept = 0', 'connect = 1'], 'FILE:1: [s]: cert is required (in the service or the global section)'],
    ['no service', [...certLines], 'FILE:1: no [service] section: nothing to accept'],
    ['duplicate service', [...certLines, ...service(), ...service()], 'FILE:6: [s]: service defined twice (first at FILE:3)'],
    ['malformed header', ['[s'], 'FILE:1: malformed section header "[s": expected [name]'],
    ['no =', ['cert /x'], 'FILE:1: expected "option = value", got "cert /x"'],
    ['sni to an unknown primary', [...certLines, ...service(), '[v]', 'sni = nope:x.com', 'connect = 1'], 'FILE:7: sni: "nope" is not a service with accept'],
    ['sni with accept', [...certLines, ...service('sni = s:x.com')], 'FILE:6: sni: a service with sni is reached through its primary service and cannot also accept'],
    ['sni pattern', [...certLines, ...service(), '[v]', 'sni = s:a.*.com', 'connect = 1'], 'FILE:7: sni: "a.*.com": "*" may only start the pattern, as in *.example.com'],
    ['sni without pattern', [...certLines, ...service(), '[v]', 'sni = s', 'connect = 1'], 'FILE:7: sni: expected SERVICE:PATTERN, got "s"'],
    ['sslVersionMax below 1.2', [...certLines, ...service('sslVersionMax = TLSv1.1')], 'FILE:6: sslVersionMax: "TLSv1.1" would leave no version: TLSv1.2 is the minimum'],
    ['unknown version', [...certLines, ...service('sslVersionMin = TLSv9')], 'FILE:6: sslVersionMin: "TLSv9" is not one of all, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3'],
    ['min above max', [...certLines, ...service('sslVersionMin = TLSv1.3', 'sslVersionMax = TLSv1.2')], 'FILE:3: [s]: sslVersionMin is above sslVersionMax'],
    ['unknown SSL option', [...certLines, ...service('options = NO_SUCH')], 'FILE:6: options: "NO_SUCH" is not an OpenSSL option this Node knows'],
    ['unsafe renegotiation', [...certLines, ...service('options = ALLOW_UNSAFE_LEGACY_RENEGOTIATION')], 'FILE:6: options: ALLOW_UNSAFE_LEGACY_RENEGOTIATION is refused (CVE-2009-3555)'],
    ['short ticket secret', [...certLines, ...service('ticketKeySecret = abcd', 'ticketMacSecret = abcd')], 'FILE:6: ticketKeySecret: expected 16 or 32 bytes in hexadecimal (32 or 64 digits, colons allowed)'],
    ['one ticket secret', [...certLines, ...service(`ticketKeySecret = ${'ab'.repeat(16)}`)], 'FILE:3: [s]: ticketKeySecret and ticketMacSecret go together'],
    ['verifyChain without CA', [...certLines, ...service('verifyChain = yes')], 'FILE:3: [s]: verifyChain and verifyPeer need CAfile or CApath'],
    ['other protocol', [...certLines, ...service('protocol = smtp')], 'FILE:6: protocol: "smtp" is not supported (only proxy)'],
    ['bad failover', [...certLines, ...service('failover = random')], 'FILE:6: failover: expected rr or prio, got "random"'],
    ['bad verify', [...certLines, ...service('verify = 9')], 'FILE:6: verify: "9" is not a number from 0 to 4'],
    ['same accept twice', [...certLines, '[a]', 'accept = 127.0.0.1:8443', 'connect = 1', '[b]', 'accept = 127.0.0.1:8443', 'connect = 1'], 'FILE:7: accept: the same address as [a]'],
    ['include of nothing', ['include = /nonexistent/conf.d'], 'FILE:1: include: cannot read /nonexistent/conf.d: ENOENT'],
  ]
  for (const [name, lines, expected] of cases) {
    test(name, async (t) => {
      assert.equal(await failure(t, lines), expected)
    })
  }

  test('a missing file', async () => {
    await assert.rejects(loadStunnelConf('/nonexistent/stunnel.conf'), {
      message: 'cannot read configuration file /nonexistent/stunnel.conf: ENOENT',
    })
  })

  test('an include loop is cut', async (t) => {
    const dir = await scratch(t)
    const file = join(dir, 'loop.conf')
    await writeFile(file, `include = ${file}\n`)
    await assert.rejects(loadStunnelConf(file), /include: includes nested too deeply \(a loop\?\)/)
  })
})
