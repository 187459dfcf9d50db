import { createHash } from 'node:crypto'

/**
 * varnish's VRT_HashStrands32 (cache_vrt.c): SHA-256 over the non-empty strands, the last four
 * octets of the digest read little-endian ("for some reason vmod_director's shard director
 * specifically relied on little-endian decoding", kept for a stable hash). The hash director,
 * the shard director's ring, `shard.key()` and its by=URL key all use it. Strings are taken as
 * the bytes the request carried (the HTTP core reads heads as latin1).
 */
export function hashStrands32(strands: readonly (string | undefined)[]): number {
  const h = createHash('sha256')
  for (const s of strands) if (s !== undefined && s !== '') h.update(s, 'latin1')
  return h.digest().readUInt32LE(28)
}
