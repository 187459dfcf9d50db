import type { BodyFilter } from '@edgestack/common'
import { decodeUtf8 } from './config/charset-maps.js'
import type { CharsetTable } from './config/model.js'

const QUESTION = 0x3f

/**
 * The body side of ngx_http_charset_filter: byte tables recode in place of each byte (the
 * length is kept); to UTF-8 each byte becomes its sequence; from UTF-8 each code point its
 * byte, one the table lacks `&#N;`, an invalid sequence `?`, and a sequence cut between two
 * reads waits for the rest (dropped if the body ends inside it, as nginx drops it).
 */
export function recoder(table: CharsetTable): BodyFilter {
  switch (table.kind) {
    case 'bytes': {
      const t = table.bytes
      return {
        keepsLength: true,
        recode: (chunk) => {
          if (chunk === undefined) return Buffer.alloc(0)
          const out = Buffer.allocUnsafe(chunk.length)
          for (let i = 0; i < chunk.length; i++) out[i] = t[chunk[i] as number] as number
          return out
        },
      }
    }
    case 'to-utf8': {
      const t = table.bytes
      return {
        keepsLength: false,
        recode: (chunk) => {
          if (chunk === undefined) return Buffer.alloc(0)
          const parts: Buffer[] = []
          let from = 0
          for (let i = 0; i < chunk.length; i++) {
            if ((chunk[i] as number) < 0x80) continue
            if (i > from) parts.push(chunk.subarray(from, i))
            parts.push(t[chunk[i] as number] as Buffer)
            from = i + 1
          }
          if (from === 0) return chunk
          parts.push(chunk.subarray(from))
          return Buffer.concat(parts)
        },
      }
    }
    case 'from-utf8':
      return fromUtf8(table.codes)
  }
}

function fromUtf8(codes: ReadonlyMap<number, number>): BodyFilter {
  let saved: Buffer | undefined
  return {
    keepsLength: false,
    recode: (input) => {
      if (input === undefined) {
        saved = undefined
        return Buffer.alloc(0)
      }
      const chunk = saved ? Buffer.concat([saved, input]) : input
      saved = undefined
      const out: number[] = []
      let i = 0
      while (i < chunk.length) {
        const c = chunk[i] as number
        if (c < 0x80) {
          out.push(c)
          i++
          continue
        }
        const { value, used } = decodeUtf8(chunk, i)
        if (value === 0xfffffffe) {
          saved = Buffer.from(chunk.subarray(i))
          break
        }
        i += used
        if (value > 0x10ffff) {
          out.push(QUESTION)
          continue
        }
        const b = value < 0x10000 ? codes.get(value) : undefined
        if (b !== undefined && b !== 0) out.push(b)
        else for (const x of Buffer.from(`&#${value};`, 'latin1')) out.push(x)
      }
      return Buffer.from(out)
    },
  }
}
