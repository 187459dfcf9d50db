import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { devCertificatePaths, ensureDevCertificates } from '@edgestack/tls-terminator'
import { programMissing } from './layers.js'
import { freePort } from './ports.js'
import { type Daemon, startDaemon, startProcess } from './processes.js'
import { CERT_DIR } from './stack.js'

/**
 * The same hitch.conf in front of the same varnishd (`-p feature=+http2`, a PROXY listener),
 * once with Debian's hitch and once with tls-terminator: varnishd answers every request with
 * what it was told (req.proto, client.ip, and vmod_proxy's view of the PROXY v2 TLVs: ALPN,
 * authority, SSL version and cipher). curl asks the same questions through each; the answers
 * must be the same. A missing peer fails with CI set and skips loudly otherwise.
 */

const VARNISHD = '/usr/sbin/varnishd'
const HITCH = '/usr/sbin/hitch'
const missing = (await programMissing(VARNISHD, 'varnish')) ?? (await programMissing(HITCH, 'hitch'))
if (missing) {
  if (process.env.CI) test('the hitch differential needs its peers', () => assert.fail(missing))
  else process.stderr.write(`SKIP: ${missing}: the hitch.conf differential is skipped (with CI set it fails)\n`)
}

const VCL = `vcl 4.1;
import proxy;
backend none none;
sub vcl_recv { return (synth(200)); }
sub vcl_synth {
  set resp.http.x-proto = req.proto;
  set resp.http.x-client = client.ip;
  set resp.http.x-alpn = proxy.alpn();
  set resp.http.x-authority = proxy.authority();
  set resp.http.x-ssl = proxy.is_ssl();
  set resp.http.x-ssl-version = proxy.ssl_version();
  set resp.http.x-ssl-cipher = proxy.ssl_cipher();
  set resp.http.x-client-cert = proxy.client_has_cert_conn();
  set resp.body = "seen " + req.method + " " + req.url + " host " + req.http.host;
  return (deliver);
}
`

function curl(args: string[]): Promise<string> {
  return new Promise((resolve) =>
    execFile('curl', ['-sS', '--max-time', '10', '-D', '-', ...args], (err, stdout, stderr) => resolve(err ? `error: ${stderr.trim()}` : stdout)),
  )
}

/** The answer without what may differ between two runs: the date, and the port in the host. */
function normalized(text: string, tlsPort: number): string[] {
  return text
    .replaceAll(String(tlsPort), 'PORT')
    .split(/\r?\n/)
    .filter((l) => !/^(date|x-varnish|age):/i.test(l))
    .map((l) => l.trim())
    .filter(Boolean)
}

describe('in front of varnishd -p feature=+http2: one hitch.conf with ours and with hitch, and stunnel.conf with --alpn-protos', { skip: missing }, () => {
  let dir: string
  let varnishd: Daemon
  let proxyPort: number
  let plainPort: number
  const running: Daemon[] = []
  before(async () => {
    await ensureDevCertificates(CERT_DIR)
    dir = await mkdtemp(join(tmpdir(), 'edgestack-hitch-diff-'))
    // varnishd as root hands its work to its own users: they must read here.
    await chmod(dir, 0o755)
    await writeFile(join(dir, 'echo.vcl'), VCL, { mode: 0o644 })
    proxyPort = await freePort()
    const plain = await freePort()
    plainPort = plain
    varnishd = await startProcess(
      'varnishd',
      VARNISHD,
      ['-F', '-n', join(dir, 'varnish'), '-f', join(dir, 'echo.vcl'), '-a', `127.0.0.1:${plain}`, '-a', `127.0.0.1:${proxyPort},PROXY`, '-p', 'feature=+http2', '-s', 'malloc,16m'],
      { port: plain },
    )
  })
  after(async () => {
    for (const d of running) await d.stop()
    await varnishd?.stop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  async function hitchConf(tlsPort: number, name: string): Promise<string> {
    const certs = devCertificatePaths(CERT_DIR)
    const file = join(dir, name)
    const lines = [
      `frontend = "[127.0.0.1]:${tlsPort}"`,
      `backend = "[127.0.0.1]:${proxyPort}"`,
      'pem-file = {',
      `    cert = "${certs.cert}"`,
      `    private-key = "${certs.key}"`,
      '}',
      'alpn-protos = "h2, http/1.1"',
      'write-proxy-v2 = on',
      ...(process.getuid?.() === 0 ? ['user = "nobody"'] : []),
    ]
    await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o644 })
    return file
  }

  test('h2 and http/1.1 by ALPN, TLS 1.2 and 1.3, with and without SNI: varnishd sees the same', async () => {
    const answers: Record<string, string[][]> = {}
    for (const program of ['hitch', 'ours'] as const) {
      const port = await freePort()
      const file = await hitchConf(port, `${program}.conf`)
      const d =
        program === 'hitch'
          ? await startProcess('hitch', HITCH, [`--config=${file}`], { port })
          : await startDaemon('tls-terminator', [`--config=${file}`], { port })
      running.push(d)
      const ca = ['--cacert', devCertificatePaths(CERT_DIR).caCert]
      const by = `https://localhost:${port}`
      const asked = [
        [...ca, '--http2', `${by}/h2?x=1`],
        [...ca, '--http1.1', `${by}/h1`],
        [...ca, '--http2', '--tls-max', '1.2', `${by}/tls12`],
        // No SNI: an address in the URL, the certificate's IP SAN.
        [...ca, '--http2', `https://127.0.0.1:${port}/by-address`],
        [...ca, '--http1.1', '-X', 'POST', '-d', 'body', `${by}/post`],
      ]
      answers[program] = []
      for (const args of asked) answers[program].push(normalized(await curl(args), port))
      await d.stop()
    }
    assert.deepEqual(answers.ours, answers.hitch)
    // And what they agree on is right: h2 reached varnishd as HTTP/2 with its TLVs.
    const first = (answers.hitch as string[][])[0] as string[]
    assert.equal(first[0], 'HTTP/2 200')
    for (const h of ['x-proto: HTTP/2.0', 'x-alpn: h2', 'x-authority: localhost', 'x-ssl: true', 'x-ssl-version: TLSv1.3', 'x-client: 127.0.0.1']) {
      assert.ok(first.includes(h), `${h} in ${first.join(' | ')}`)
    }
    assert.ok((answers.hitch as string[][])[1]?.includes('x-proto: HTTP/1.1'))
    assert.ok((answers.hitch as string[][])[2]?.includes('x-ssl-version: TLSv1.2'))
  })

  test("stunnel.conf with edgestack's --alpn-protos: h2 reaches varnishd's plain listener by prior knowledge", async () => {
    const port = await freePort()
    const certs = devCertificatePaths(CERT_DIR)
    const file = join(dir, 'stunnel.conf')
    const conf = ['foreground = yes', `cert = ${certs.cert}`, `key = ${certs.key}`, '[https]', `accept = 127.0.0.1:${port}`, `connect = 127.0.0.1:${plainPort}`]
    await writeFile(file, `${conf.join('\n')}\n`, { mode: 0o644 })
    const d = await startDaemon('tls-terminator', [file, '--alpn-protos', 'h2,http/1.1'], { port })
    running.push(d)
    const ca = ['--cacert', certs.caCert]
    const h2 = normalized(await curl([...ca, '--http2', `https://localhost:${port}/`]), port)
    assert.equal(h2[0], 'HTTP/2 200')
    assert.ok(h2.includes('x-proto: HTTP/2.0'), h2.join(' | '))
    // No PROXY header here, so no TLVs: vmod_proxy has nothing to say.
    assert.ok(h2.includes('x-ssl: false'), h2.join(' | '))
    const h1 = normalized(await curl([...ca, '--http1.1', `https://localhost:${port}/`]), port)
    assert.ok(h1.includes('x-proto: HTTP/1.1'), h1.join(' | '))
  })
})
