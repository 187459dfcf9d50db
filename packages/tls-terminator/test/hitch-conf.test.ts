import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { parseHitchConf } from '../src/config/hitch-conf.js'
import { parseHitchCommandLine } from '../src/config/hitch-command-line.js'
import { HITCH_KEYS, hitchOption } from '../src/config/hitch-options.js'
import { buildHitchModel, loadHitch } from '../src/config/hitch-model.js'
import { CA, captureLogger, certLines, fixture, freePort, scratch, startBackend, writeConf } from './helpers.js'
import { OUR_CLI } from './hitch-helpers.js'
import { createTlsTerminator } from '../src/index.js'

/** hitch.conf and hitch's command line read without hitch (hitch-differential.test.ts compares with it). */

const pem = (name: string) => ['pem-file = {', `  cert = "${fixture(`${name}.crt`)}"`, `  private-key = "${fixture(`${name}.key`)}"`, '}']
const build = (lines: string[]) => buildHitchModel(parseHitchConf(lines.join('\n'), 'hitch.conf'), { source: 'hitch.conf' })

async function run(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [OUR_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString()
  })
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString()
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  const [code] = (await once(child, 'exit')) as [number | null]
  clearTimeout(timer)
  return { code, out }
}

describe('hitch.conf', () => {
  test('syntax: comments, quoted strings, bare words, blocks on several lines or one', () => {
    const s = parseHitchConf(
      ['# a comment', 'frontend = {   # trailing comment', '  host = "*"', '  port = "443"', '}', 'tls-protos = TLSv1.2 TLSv1.3', 'frontend = { port = "8443" }', 'backend = "[127.0.0.1]:6086" # varnish'].join('\n'),
      'f',
    )
    assert.deepEqual(
      s.map((x) => [x.key, x.value.kind, x.position?.line]),
      [
        ['frontend', 'block', 2],
        ['tls-protos', 'words', 6],
        ['frontend', 'block', 7],
        ['backend', 'string', 8],
      ],
    )
    assert.throws(() => parseHitchConf('frontend = {\n  port = "1"\n', 'f'), /^ConfigError|f:3: syntax error/)
    assert.throws(() => parseHitchConf('backend "x"', 'f'), /f:1: syntax error: 'backend "x"'/)
    assert.throws(() => parseHitchConf('backend = "x', 'f'), /f:1: syntax error: 'backend = "x' \(unterminated string\)/)
  })

  test('the model: a listener per frontend, the last pem-file the default, names from the certificates for SNI', async () => {
    const { model, workers } = await build([
      'frontend = "[127.0.0.1]:8443"',
      'frontend = {',
      '  host = "127.0.0.1"',
      '  port = "9443"',
      '  ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"',
      ...pem('example').map((l) => `  ${l}`),
      '}',
      'backend = "[127.0.0.1]:6086"',
      ...pem('example'),
      ...pem('localhost'),
      'alpn-protos = "h2, http/1.1"',
      'write-proxy-v2 = on',
      'workers = 3',
      'keepalive = 30',
      'tls-protos = TLSv1.3',
      'prefer-server-ciphers = on',
    ])
    assert.equal(workers, 3)
    const [first, second] = model.listeners
    assert.equal(first?.service.cert, fixture('localhost.crt'))
    assert.deepEqual(first?.service.accept, { host: '127.0.0.1', port: 8443 })
    assert.deepEqual(first?.service.connect, [{ host: '127.0.0.1', port: 6086 }])
    // Exact names first (the later certificate's first), then wildcards.
    assert.deepEqual(
      first?.virtualHosts.map((v) => `${v.pattern} ${v.service.cert === fixture('localhost.crt') ? 'localhost' : 'example'}`),
      ['localhost localhost', 'www.example.com example', '*.example.org example'],
    )
    assert.equal(first?.service.protocol, 'proxy-v2')
    assert.equal(first?.service.proxyTlv, true)
    assert.deepEqual(first?.service.alpnProtocols, ['h2', 'http/1.1'])
    assert.equal(first?.service.keepaliveMs, 30_000)
    assert.equal(first?.service.sslVersionMin, 'TLSv1.3')
    assert.notEqual(first?.service.optionsSet, 0)
    // The second frontend has its own certificate and its own ciphers; the first keeps hitch's default.
    assert.equal(second?.service.cert, fixture('example.crt'))
    assert.equal(second?.service.ciphers, 'ECDHE-ECDSA-AES128-GCM-SHA256')
    assert.equal(first?.service.ciphers, 'EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH')
  })

  test('refused at load in one line: what we do not do, and values hitch would refuse', async () => {
    const base = ['frontend = "[127.0.0.1]:8443"', ...pem('localhost')]
    const cases: [string[], RegExp][] = [
      [['ocsp-dir = "/var/lib/hitch"'], /^hitch\.conf:6: ocsp-dir: not supported by tls-terminator \(OCSP stapling is not implemented\)$/],
      [['proxy-proxy = on'], /^hitch\.conf:6: proxy-proxy: not supported by tls-terminator/],
      [['tls-protos = TLSv1.1 TLSv1.2'], /^hitch\.conf:6: tls-protos: TLSv1\.1 is never negotiated by tls-terminator: TLSv1\.2 is the floor$/],
      [['backend = "/run/varnish.sock"'], /^hitch\.conf:6: backend: a UNIX domain socket backend is not supported$/],
      [['client-verify = required'], /^hitch\.conf:6: client-verify: client-verify = required needs client-verify-ca$/],
      [['log-level = 5'], /^hitch\.conf:6: log-level: 5 is not a log level/],
      [['host = "x"'], /^hitch\.conf:6: syntax error: 'host = "x"'$/],
      // hitch 1.7 takes its pid file only as --pidfile: its parser refuses the line.
      [['pidfile = "/run/hitch.pid"'], /^hitch\.conf:6: syntax error: 'pidfile = "\/run\/hitch\.pid"'$/],
      [['sni-nomatch-abort = on'], /^hitch\.conf:6: sni-nomatch-abort: not supported/],
    ]
    for (const [lines, message] of cases) await assert.rejects(build([...base, ...lines]), { message }, lines[0])
    // Their "off" is what we always do.
    await build([...base, 'proxy-proxy = off', 'sni-nomatch-abort = off', 'syslog = off'])
    const { warnings } = await build([...base, 'backlog = 200', 'daemon = on'])
    assert.equal(warnings.length, 2)
    assert.match(warnings[0] as string, /^hitch\.conf:6: backlog: ignored/)
  })

  test("hitch's flags: the file first, then the flags over it; PEM arguments are pem-files", async (t) => {
    const line = parseHitchCommandLine(['--config', 'x.conf', '-b', '[127.0.0.1]:7000', '--write-proxy-v2', '--workers', '2', '-n', '3', '--metrics', '127.0.0.1:0', 'a.pem'])
    assert.equal(line.config, 'x.conf')
    assert.deepEqual(
      line.settings.map((s) => `${s.key}=${s.value.kind === 'string' ? s.value.text : ''}`),
      ['backend=[127.0.0.1]:7000', 'write-proxy-v2=on'],
    )
    assert.deepEqual(line.rest, ['--workers', '2', '--workers', '3', '--metrics', '127.0.0.1:0', 'a.pem'])
    assert.throws(() => parseHitchCommandLine(['--write-proxy-v2=yes']), /Invalid argument 'yes' for option 'write-proxy-v2': expected one of 'on' or 'off'/)
    const dir = await scratch(t)
    const file = await writeConf(dir, ['frontend = "[127.0.0.1]:8443"', 'backend = "[127.0.0.1]:6086"', ...pem('localhost')], 'hitch.conf')
    const built = await loadHitch(file, parseHitchCommandLine(['--backend=[127.0.0.1]:7000', '--alpn-protos=h2']).settings, [], {})
    assert.deepEqual(built.model.listeners[0]?.service.connect, [{ host: '127.0.0.1', port: 7000 }])
    assert.deepEqual(built.model.listeners[0]?.service.alpnProtocols, ['h2'])
    await assert.rejects(loadHitch(undefined, parseHitchCommandLine(['--keepalive=soon']).settings, [], {}), { message: "Invalid argument 'soon' for option 'keepalive'" })
  })

  test('ALPN: the first of ours the client offers, as hitch (the server order wins)', async (t) => {
    const backend = await startBackend(t)
    const port = await freePort()
    const { model } = await build([`frontend = "[127.0.0.1]:${port}"`, `backend = "[127.0.0.1]:${backend.port}"`, ...pem('localhost'), 'alpn-protos = "h2, http/1.1"'])
    const server = createTlsTerminator(model, captureLogger().logger)
    await server.listen()
    t.after(() => server.close({ drainTimeoutMs: 0 }))
    const alpn = (offered: string[] | undefined) =>
      new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ...(offered ? { ALPNProtocols: offered } : {}) })
        s.on('secureConnect', () => {
          resolve(String(s.alpnProtocol))
          s.end()
        })
        s.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`))
      })
    assert.equal(await alpn(['http/1.1', 'h2']), 'h2')
    assert.equal(await alpn(['http/1.1']), 'http/1.1')
    assert.equal(await alpn(undefined), 'false')
    assert.equal(await alpn(['spdy/3']), 'error ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL')
  })
})

describe('the command line: hitch.conf or stunnel.conf', () => {
  test('--config=FILE is hitch.conf (-t checks it); a FILE alone stays stunnel.conf; hitch options with it are refused', async (t) => {
    const dir = await scratch(t)
    const hitchConf = await writeConf(dir, ['frontend = "[127.0.0.1]:8443"', ...pem('localhost')], 'hitch.conf')
    const ok = await run(['-t', `--config=${hitchConf}`])
    assert.equal(ok.code, 0, ok.out)
    assert.match(ok.out, /hitch\.conf: configuration OK \(1 listener\(s\)\)/)
    const flagsOnly = await run(['-t', '--frontend=[127.0.0.1]:8443', '--backend=[127.0.0.1]:6086', `--alpn-protos=h2`, fixture('localhost.crt')])
    // hitch's PEM argument holds the key too; the fixture's does not.
    assert.equal(flagsOnly.code, 1)
    assert.match(flagsOnly.out, /is not a usable private key/)
    const stunnelConf = await writeConf(dir, [...certLines, '[x]', 'accept = 127.0.0.1:0', 'connect = 1'])
    const extension = await run(['-t', stunnelConf, '--alpn-protos', 'h2,http/1.1'])
    assert.equal(extension.code, 0, extension.out)
    const refused = await run(['-t', stunnelConf, '--write-proxy-v2'])
    assert.equal(refused.code, 2)
    assert.match(refused.out, /^tls-terminator: --write-proxy-v2 is one of hitch's options: give it with --config=hitch\.conf or --frontend\/--backend$/m)
    const empty = await run(['-t', stunnelConf, '--alpn-protos', 'h2,,x'])
    assert.equal(empty.code, 2)
  })

  test('--alpn-protos with a stunnel.conf: the edgestack extension negotiates ALPN, the file stays stunnel\'s', async (t) => {
    const backend = await startBackend(t)
    const dir = await scratch(t)
    const port = await freePort()
    const file = await writeConf(dir, ['foreground = yes', ...certLines, '[x]', `accept = 127.0.0.1:${port}`, `connect = ${backend.port}`])
    const child = spawn(process.execPath, [OUR_CLI, file, '--alpn-protos=h2,http/1.1'], { stdio: 'ignore' })
    t.after(() => {
      child.kill('SIGKILL')
    })
    let alpn = ''
    for (let i = 0; i < 200 && !alpn; i++) {
      alpn = await new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ALPNProtocols: ['h2'] })
        s.on('secureConnect', () => {
          resolve(String(s.alpnProtocol))
          s.end()
        })
        s.on('error', () => setTimeout(() => resolve(''), 25))
      })
    }
    assert.equal(alpn, 'h2')
  })

  test("hitch's command line alone: --frontend, --backend, --write-proxy-v1, --pidfile, a PEM with key and chain; --ocsp-dir refused in one line", async (t) => {
    const backend = await startBackend(t, { reply: 'ok' })
    const dir = await scratch(t)
    const combined = join(dir, 'site.pem')
    await writeFile(combined, Buffer.concat([await readFile(fixture('localhost.key')), await readFile(fixture('localhost.crt'))]))
    const refused = await run([`--frontend=[127.0.0.1]:8443`, `--backend=[127.0.0.1]:${backend.port}`, '--ocsp-dir=/var/lib/hitch', combined])
    assert.equal(refused.code, 2)
    assert.equal(refused.out.split('\n')[0], 'tls-terminator: --ocsp-dir: not supported by tls-terminator (OCSP stapling is not implemented)')
    const port = await freePort()
    const pid = join(dir, 'hitch.pid')
    const child = spawn(process.execPath, [OUR_CLI, `--frontend=[127.0.0.1]:${port}`, '-b', `[127.0.0.1]:${backend.port}`, '--write-proxy-v1', `--pidfile=${pid}`, combined], { stdio: 'ignore' })
    t.after(() => {
      child.kill('SIGKILL')
    })
    let reply = ''
    for (let i = 0; i < 200 && !reply; i++) {
      reply = await new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost' })
        s.on('data', (c: Buffer) => {
          resolve(c.toString())
          s.destroy()
        })
        s.on('secureConnect', () => s.write('hello'))
        s.on('error', () => setTimeout(() => resolve(''), 25))
        s.setTimeout(5000, () => s.destroy(new Error('timeout')))
      })
    }
    assert.equal(reply, 'ok')
    assert.equal((await readFile(pid, 'utf8')).trim(), String(child.pid))
    const header = Buffer.concat(backend.received.at(-1) ?? []).toString('latin1')
    assert.match(header, new RegExp(`^PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 \\d+ ${port}\\r\\nhello`))
  })
})

describe('SIGHUP with hitch.conf', () => {
  test('re-reads the file: a new alpn-protos applies to new connections; a bad file keeps the running one', async (t) => {
    const backend = await startBackend(t)
    const dir = await scratch(t)
    const port = await freePort()
    const lines = (alpn: string) => [`frontend = "[127.0.0.1]:${port}"`, `backend = "[127.0.0.1]:${backend.port}"`, ...pem('localhost'), `alpn-protos = "${alpn}"`]
    const file = await writeConf(dir, lines('h2, http/1.1'), 'hitch.conf')
    const child = spawn(process.execPath, [OUR_CLI, `--config=${file}`, '--drain-timeout', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
    })
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString()
    })
    t.after(() => {
      child.kill('SIGKILL')
    })
    const alpn = () =>
      new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] })
        s.on('secureConnect', () => {
          resolve(String(s.alpnProtocol))
          s.destroy()
        })
        s.on('error', () => setTimeout(() => resolve(''), 25))
        s.setTimeout(5000, () => s.destroy(new Error('timeout')))
      })
    const until = async (want: string) => {
      let got = ''
      for (let i = 0; i < 200 && got !== want; i++) got = await alpn()
      return got
    }
    assert.equal(await until('h2'), 'h2')
    await writeConf(dir, lines('http/1.1'), 'hitch.conf')
    child.kill('SIGHUP')
    assert.equal(await until('http/1.1'), 'http/1.1')
    await writeConf(dir, lines('h2,,x'), 'hitch.conf')
    child.kill('SIGHUP')
    for (let i = 0; i < 200 && !out.includes('reload failed'); i++) await new Promise((r) => setTimeout(r, 25))
    assert.match(out, /reload failed, keeping the running configuration: .*hitch\.conf:7: alpn-protos: alpn-protos configuration "h2,,x" is bad/)
    assert.equal(await alpn(), 'http/1.1')
  })
})

describe('hitch keys: no silent no-ops', () => {
  test('every key is implemented (read by hitch-model.ts), refused, or a documented no-op, and in the README table', async () => {
    const pkg = fileURLToPath(new URL('../../', import.meta.url))
    const readme = await readFile(join(pkg, 'README.md'), 'utf8')
    const table = readme.slice(readme.indexOf('| | keys (and the same `--options`) |'), readme.indexOf('**PROXY v2**'))
    const modelSource = await readFile(join(pkg, 'src', 'config', 'hitch-model.ts'), 'utf8')
    for (const key of HITCH_KEYS) {
      const o = hitchOption(key)
      assert.ok(o)
      // Keys that only exist inside a block are listed with it (host, port, cert, private-key).
      const listed = table.includes(`\`${key}\``) || (key.includes('ocsp') && table.includes('`ocsp-*`')) || /^(shared-cache|ring)-/.test(key)
      assert.ok(listed, `${key} is missing from the README's hitch table`)
      if (o.support === 'yes') assert.ok(modelSource.includes(`'${key}'`), `${key} is marked implemented but hitch-model.ts never reads '${key}'`)
      if (o.support === 'warn') assert.match(table, new RegExp(`warning only[^\\n]*\`${key}\``), `${key} is a no-op not listed as one`)
    }
  })
})
