import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { get, startOrigin, startRouter } from './router-harness.js'

// RFC 9111 points where the router follows the RFC, each against a real origin on loopback.

describe('caching-router: RFC 9111 delta-seconds (§1.2.2, §4.2.1, §5.1)', () => {
  test('max-age that is not delta-seconds makes the response stale, not heuristically fresh', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      const cc: Record<string, string> = {
        '/decimal': 'max-age=1.5',
        '/zero-point': 'max-age=0.0',
        '/negative': 'max-age=-1',
        '/s-decimal': 's-maxage=30.0, max-age=60',
        '/quoted': 'max-age="60"',
        '/first': 'max-age=60, max-age=0',
      }
      res.setHeader('Cache-Control', cc[req.url ?? ''] ?? 'max-age=60')
      res.end(`${req.url} ${n}`)
    })
    const { url } = await startRouter(t, origin.address, { params: { default_grace: '0' } })
    for (const path of ['/decimal', '/zero-point', '/negative', '/s-decimal']) {
      assert.equal((await get(`${url}${path}`)).body.startsWith(path), true)
      const again = await get(`${url}${path}`)
      assert.equal(again.headers.age, '0', `${path}: a stale copy is not served`)
      assert.notEqual(again.body, (await get(`${url}${path}`)).body, `${path}: each request goes to the origin`)
    }
    // §5.2: the quoted form of an argument is accepted; §4.2.1: the first occurrence is used.
    for (const path of ['/quoted', '/first']) {
      const first = await get(`${url}${path}`)
      assert.equal((await get(`${url}${path}`)).body, first.body, `${path}: stored and fresh`)
    }
  })

  test('Age that is not delta-seconds is ignored; a huge one is taken as 2^31', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.setHeader('Age', req.url === '/huge' ? '99999999999999999999' : '30.5')
      res.end(`${req.url} ${n}`)
    })
    const { url } = await startRouter(t, origin.address, { params: { default_grace: '0' } })
    const first = await get(`${url}/decimal-age`)
    assert.equal((await get(`${url}/decimal-age`)).body, first.body, 'fresh: the Age was ignored')
    const huge = await get(`${url}/huge`)
    assert.notEqual((await get(`${url}/huge`)).body, huge.body, 'an Age beyond max-age leaves it stale')
  })
})
