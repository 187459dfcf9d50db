import { crc32 } from 'node:zlib'
import { weighted } from './upstream-ip-hash.js'
import { Choice, type Peer, type PeerGroup, picked, roundRobin, smoothWeighted, usable } from './upstream-peer.js'

/** A key's bytes as nginx hashes them: header and target text is held as latin1, decoded URIs as UTF-8. */
export function keyBytes(key: string): Buffer {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0xff) return Buffer.from(key, 'utf8')
  return Buffer.from(key, 'latin1')
}

/**
 * ngx_http_upstream_get_hash_peer (`hash KEY`): ((crc32([REHASH] KEY) >> 16) & 0x7fff) added
 * to the previous value, the server found by value % total weight along the primary servers
 * in order; a server that cannot be used hashes again with the round's number in front of the
 * key. After 20 such rounds, with a single server or an empty key, round robin decides.
 */
export function hash(c: Choice, now: number): Peer | undefined {
  const g = c.group
  if (c.tries > 20 || g.single || c.key.length === 0) return roundRobin(c, now)
  for (;;) {
    const seed = c.rehash > 0 ? crc32(String(c.rehash)) : 0
    c.hash = (c.hash + ((crc32(c.key, seed) >>> 16) & 0x7fff)) >>> 0
    c.rehash++
    const p = weighted(g, c.hash % g.totalWeight)
    if (usable(c, p, now)) return picked(c, p, now)
    if (++c.tries > 20) return roundRobin(c, now)
  }
}

/** One point of the ring: a hash and the server (as written) it stands for. */
interface Point {
  hash: number
  server: string
}

/**
 * ngx_http_upstream_init_chash (`hash KEY consistent`, ketama): each primary server gets 160
 * points a unit of weight, crc32(HOST \0 PORT PREV_HASH) with PREV_HASH the previous point's
 * four bytes (little-endian, 0 at first), HOST and PORT split from the address as written; the
 * ring is sorted and equal hashes kept once.
 */
export function chashRing(g: PeerGroup): Point[] {
  const points: Point[] = []
  const prev = Buffer.alloc(4)
  for (const p of g.peers) {
    const name = p.server.name
    let host = name
    let port = ''
    if (name.slice(0, 5).toLowerCase() === 'unix:') host = name.slice(5)
    else {
      const m = /:(\d*)$/.exec(name)
      if (m) {
        host = name.slice(0, m.index)
        port = m[1] as string
      }
    }
    const base = crc32(port, crc32('\0', crc32(host)))
    prev.writeUInt32LE(0)
    for (let j = 0; j < p.server.weight * 160; j++) {
      const h = crc32(prev, base)
      points.push({ hash: h, server: name })
      prev.writeUInt32LE(h)
    }
  }
  points.sort((a, b) => a.hash - b.hash)
  return points.filter((pt, i) => i === 0 || (points[i - 1] as Point).hash !== pt.hash)
}

/** ngx_http_upstream_init_chash_peer: the first point at or after crc32(KEY), by index. */
export function chashChoice(group: PeerGroup, ring: readonly Point[], key: string): Choice {
  const bytes = keyBytes(key)
  const h = crc32(bytes)
  let i = 0
  let j = ring.length
  while (i < j) {
    const k = (i + j) >>> 1
    const at = (ring[k] as Point).hash
    if (h > at) i = k + 1
    else if (h < at) j = k
    else return new Choice(group, bytes, k)
  }
  return new Choice(group, bytes, i)
}

/**
 * ngx_http_upstream_get_chash_peer: the usable servers written as the point's server (several
 * when a name has several addresses) share it by smooth weighted round robin; when none is
 * usable the next point clockwise is tried, 20 at most before round robin decides.
 */
export function chash(c: Choice, ring: readonly Point[], now: number): Peer | undefined {
  const g = c.group
  if (c.tries > 20 || g.single || c.key.length === 0) return roundRobin(c, now)
  for (;;) {
    const server = (ring[c.hash % ring.length] as Point).server
    const best = smoothWeighted(c, g.peers, now, (p) => p.server.name === server)
    if (best) return picked(c, best, now)
    c.hash++
    if (++c.tries > 20) return roundRobin(c, now)
  }
}


