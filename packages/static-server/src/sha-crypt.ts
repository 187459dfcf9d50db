import { createHash } from 'node:crypto'
import { setImmediate as yieldToLoop } from 'node:timers/promises'

/**
 * SHA-crypt (`$5$` SHA-256, `$6$` SHA-512), as Ulrich Drepper's specification and glibc /
 * libxcrypt's crypt(3), which nginx calls for these lines of an htpasswd file. No npm package
 * of ours does both widths asynchronously, so this is the specification over node:crypto's
 * hashes. `rounds=` reaches 999,999,999 in a file anyone may write: the rounds run in slices
 * that give the event loop back, so one request's hash never stalls the others.
 */
const ROUNDS_DEFAULT = 5000
const ROUNDS_MIN = 1000
const ROUNDS_MAX = 999_999_999
const SLICE = 2000
const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

// The byte order of the final encoding (the specification's b64_from_24bit calls).
const ORDER_256 = [
  [0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14],
  [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29],
]
const ORDER_512 = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48],
  [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13],
  [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
]

function b64(w: number, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) {
    s += ITOA64[w & 0x3f]
    w >>>= 6
  }
  return s
}

/** `count` bytes of `block` repeated. */
function repeat(block: Buffer, count: number): Buffer {
  const out = Buffer.alloc(count)
  for (let i = 0; i < count; i += block.length) block.copy(out, i, 0, Math.min(block.length, count - i))
  return out
}

/**
 * crypt(password, setting) for a setting beginning `$5$` or `$6$`; the whole string crypt(3)
 * returns, for nginx's comparison with the stored one. Undefined: a rounds field crypt(3)
 * would not take (libxcrypt then returns its failure token, which matches nothing).
 */
export async function shaCrypt(password: Buffer, setting: string): Promise<string | undefined> {
  const id = setting.startsWith('$5$') ? '5' : '6'
  const alg = id === '5' ? 'sha256' : 'sha512'
  const h = (...parts: Buffer[]) => {
    const x = createHash(alg)
    for (const p of parts) x.update(p)
    return x.digest()
  }
  let rest = setting.slice(3)
  let rounds = ROUNDS_DEFAULT
  let custom = false
  if (rest.startsWith('rounds=')) {
    const m = /^rounds=(\d+)\$/.exec(rest)
    if (!m) return undefined
    rounds = Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, Number(m[1])))
    custom = true
    rest = rest.slice(m[0].length)
  }
  const end = rest.indexOf('$')
  const saltText = (end < 0 ? rest : rest.slice(0, end)).slice(0, 16)
  const P = password
  const S = Buffer.from(saltText, 'latin1')
  const B = h(P, S, P)
  const hl = B.length
  const a = createHash(alg).update(P).update(S).update(repeat(B, P.length))
  for (let n = P.length; n > 0; n >>= 1) a.update(n & 1 ? B : P)
  let C = a.digest()
  // DP and DS hash the password (salt) repeated, fed piecewise: a long password costs no memory.
  const dp = createHash(alg)
  for (let i = 0; i < P.length; i++) dp.update(P)
  const pDash = repeat(dp.digest(), P.length)
  const ds = createHash(alg)
  for (let i = 0; i < 16 + (C[0] as number); i++) ds.update(S)
  const sDash = repeat(ds.digest(), S.length)
  for (let i = 0; i < rounds; i++) {
    if (i % SLICE === SLICE - 1) await yieldToLoop()
    const x = createHash(alg)
    x.update(i & 1 ? pDash : C)
    if (i % 3) x.update(sDash)
    if (i % 7) x.update(pDash)
    x.update(i & 1 ? C : pDash)
    C = x.digest()
  }
  let out = `$${id}$${custom ? `rounds=${rounds}$` : ''}${saltText}$`
  for (const [x, y, z] of hl === 32 ? ORDER_256 : ORDER_512) out += b64(((C[x as number] as number) << 16) | ((C[y as number] as number) << 8) | (C[z as number] as number), 4)
  out += hl === 32 ? b64(((C[31] as number) << 8) | (C[30] as number), 3) : b64(C[63] as number, 2)
  return out
}
