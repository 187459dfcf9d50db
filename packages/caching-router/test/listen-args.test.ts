import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseRouterCommandLine } from '../src/config/command-line.js'

// `-a` and `-b` as varnishd 7.1 reads them (mgt_acceptor.c MAC_Arg, mgt_main.c), and its
// words for what it refuses (varnish's c00003.vtc checks the same strings).

test('-a /path is a Unix socket with an optional mode; -b /path and -b none', () => {
  const m = parseRouterCommandLine(['-a', '/tmp/v1.sock,mode=660', '-a', 'web=127.0.0.1:0,PROXY', '-b', '/tmp/s1.sock'])
  assert.deepEqual(m.listen[0]?.address, { path: '/tmp/v1.sock', mode: 0o660 })
  assert.deepEqual(m.listen[1], { address: { host: '127.0.0.1', port: 0 }, proxy: true, name: 'web' })
  assert.ok(m.vcl.kind === 'text' && m.vcl.text.includes('.path = "/tmp/s1.sock";'))
  const none = parseRouterCommandLine(['-a', '127.0.0.1:0', '-b', 'None'])
  assert.ok(none.vcl.kind === 'text' && none.vcl.text.includes('backend default none;'))
})

test('a bad -a is refused in varnishd words', () => {
  const refused: Array<[string, RegExp]> = [
    ['127.0.0.1:8080,PROXY,FOO', /Too many protocol sub-args/],
    ['foo/bar.sock', /Unix domain socket addresses must be absolute paths/],
    ['127.0.0.1:8080,mode=660', /Invalid sub-arg mode=660 for IP addresses/],
    ['/tmp/x.sock,mode=660,mode=600', /Too many mode sub-args/],
    ['/tmp/x.sock,mode=', /Empty mode sub-arg/],
    ['/tmp/x.sock,mode=999', /Invalid mode sub-arg 999/],
    ['/tmp/x.sock,mode=77777777777777777777777777777777', /Cannot parse mode sub-arg 7/],
    ['/tmp/x.sock,mode=1666', /Mode sub-arg 1666 out of range/],
    ['/tmp/x.sock,mode=0', /Mode sub-arg 0 out of range/],
    ['/tmp/x.sock,foo=bar', /Invalid sub-arg foo=bar/],
    ['/tmp/x.sock,=foo', /Invalid sub-arg =foo/],
    ['/tmp/x.sock,foobar', /Unknown protocol/],
    [`/${'x'.repeat(120)}`, /Got no socket/],
  ]
  for (const [spec, message] of refused) assert.throws(() => parseRouterCommandLine(['-a', spec, '-b', 'none']), message, spec)
  assert.throws(() => parseRouterCommandLine(['-a', '127.0.0.1:38484', '-a', '127.0.0.1:38484', '-b', 'none']), /have same address/)
  assert.throws(() => parseRouterCommandLine(['-a', '/tmp/x.sock', '-a', '/tmp/x.sock', '-b', 'none']), /have same address/)
})
