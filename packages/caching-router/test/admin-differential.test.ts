import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, startVarnishd, VARNISHADM, varnishInstalled } from './vcl-varnishd.js'

// Debian's varnishadm against varnishd 7.1 and against our -T, the same VCL loaded as "boot":
// the same exit code, output and CLI status for the commands a script tells apart.

const VCL = 'vcl 4.1;\nbackend b { .host = "127.0.0.1"; .port = "9"; }\n'

interface Answer {
  code: number
  stdout: string
  stderr: string
}

function adm(target: string[], args: string[]): Promise<Answer> {
  return new Promise((resolve) => {
    execFile(VARNISHADM, [...target, ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr })
    })
  })
}

const COMMANDS: string[][] = [
  ['foo'],
  ['ping', 'a', 'b'],
  ['help', 'ban'],
  ['help', 'nosuch'],
  ['ban', 'req.url'],
  ['ban', 'req.foo', '==', 'x'],
  ['ban', 'req.url', '=', 'x'],
  ['param.show', 'default_ttl', 'extra'],
  ['param.show', 'nosuch'],
  ['param.set', 'nosuch', '1'],
  ['param.set', 'default_ttl', 'abc'],
  ['param.set', 'default_ttl', '-5'],
  ['param.set', 'http_req_size', 'abc'],
  ['param.set', 'http_req_size', '10'],
  ['param.set', 'http_max_hdr', '70000'],
  ['param.set', 'http_max_hdr', '10'],
  ['param.set', 'http_max_hdr', 'abc'],
  ['vcl.list'],
  ['vcl.use', 'nosuch'],
  ['vcl.show', 'nosuch'],
  ['vcl.discard', 'nosuch'],
  ['vcl.discard', 'boot'],
]

describe('admin CLI: caching-router vs varnishd through varnishadm', { skip: varnishInstalled ? false : 'varnishd/varnishadm not installed' }, () => {
  let varnishd: RunningVarnishd
  let router: VclRouter

  before(async () => {
    ;[varnishd, router] = await Promise.all([startVarnishd(VCL), startVclRouter(VCL)])
  })

  after(async () => {
    await Promise.all([varnishd?.stop(), router?.stop()])
  })

  test('the same exit code and output', async () => {
    for (const command of COMMANDS) {
      const theirs = await adm(['-n', varnishd.workdir], command)
      const ours = await adm(['-T', `${router.admin.host}:${router.admin.port}`], command)
      assert.deepEqual(ours, theirs, command.join(' '))
    }
  })

  test('param.show NAME: the Value/Default/Minimum/Maximum lines scripts read', async () => {
    // The description after them is shortened in ours.
    const head = (a: Answer) => a.stdout.split('\n\n')[0]
    for (const [name, value] of [
      ['default_ttl', undefined],
      ['http_req_size', '1000'],
      ['http_req_hdr_len', undefined],
      ['http_max_hdr', '100'],
      ['connect_timeout', undefined],
    ] as const) {
      if (value !== undefined) {
        await adm(['-n', varnishd.workdir], ['param.set', name, value])
        await adm(['-T', `${router.admin.host}:${router.admin.port}`], ['param.set', name, value])
      }
      const theirs = await adm(['-n', varnishd.workdir], ['param.show', name])
      const ours = await adm(['-T', `${router.admin.host}:${router.admin.port}`], ['param.show', name])
      assert.equal(head(ours), head(theirs), name)
    }
    // The one-line listing too.
    const line = (a: Answer, name: string) => a.stdout.split('\n').find((l) => l.startsWith(`${name} `))
    const theirs = await adm(['-n', varnishd.workdir], ['param.show'])
    const ours = await adm(['-T', `${router.admin.host}:${router.admin.port}`], ['param.show'])
    for (const name of ['default_ttl', 'http_req_size', 'http_max_hdr']) assert.equal(line(ours, name), line(theirs, name), name)
  })

  // varnishd 7.1.1's HTTP/2 parameters (`varnishd -x parameter`): the same names, values,
  // defaults and bounds, and `feature` with +http2 on (src/h2/h2-params.ts).
  test('HTTP/2 parameters and feature=+http2: param.show as varnishd 7.1.1', async () => {
    const H2 = [
      'h2_header_table_size',
      'h2_initial_window_size',
      'h2_max_concurrent_streams',
      'h2_max_frame_size',
      'h2_max_header_list_size',
      'h2_rx_window_increment',
      'h2_rx_window_low_water',
      'h2_rxbuf_storage',
      'idle_send_timeout',
    ]
    const line = (a: Answer, name: string) => a.stdout.split('\n').find((l) => l.startsWith(`${name} `))
    const head = (a: Answer) => a.stdout.split('\n\n')[0]
    const both = async (command: string[]) => [
      await adm(['-n', varnishd.workdir], command),
      await adm(['-T', `${router.admin.host}:${router.admin.port}`], command),
    ]
    let [theirs, ours] = await both(['param.show'])
    for (const name of [...H2, 'feature']) {
      assert.ok(line(theirs as Answer, name), name)
      assert.equal(line(ours as Answer, name), line(theirs as Answer, name), name)
    }
    for (const command of [
      ['param.set', 'h2_max_concurrent_streams', '10'],
      ['param.set', 'h2_initial_window_size', '1000'],
      ['param.set', 'h2_max_frame_size', '16777216'],
      ['param.set', 'h2_rxbuf_storage', 'nosuch'],
      ['param.set', 'feature', '+nosuch'],
      ['param.set', 'feature', '+http2'],
    ]) {
      ;[theirs, ours] = await both(command)
      assert.equal((ours as Answer).code, (theirs as Answer).code, command.join(' '))
    }
    for (const name of [...H2.filter((n) => n !== 'h2_rxbuf_storage'), 'feature']) {
      ;[theirs, ours] = await both(['param.show', name])
      assert.match(head(theirs as Answer) as string, /Value is: /)
      assert.equal(head(ours as Answer), head(theirs as Answer), name)
    }
    await both(['param.set', 'feature', '-http2'])
    await both(['param.reset', 'h2_max_concurrent_streams'])
  })

  test('banner: the CLI banner, status 200', async () => {
    const theirs = await adm(['-n', varnishd.workdir], ['banner'])
    const ours = await adm(['-T', `${router.admin.host}:${router.admin.port}`], ['banner'])
    assert.equal(ours.code, theirs.code)
    // The lines after the title name the platform and the build.
    const head = (a: Answer) => a.stdout.split('\n').slice(0, 3)
    assert.deepEqual(head(ours), head(theirs))
  })
})
