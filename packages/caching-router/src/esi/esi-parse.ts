import type { EsiFeatures, EsiInclude, EsiPart, EsiProgram } from './esi-program.js'

/**
 * varnishd's ESI parser (VEP, cache_esi_parse.c) run once when an object with
 * `beresp.do_esi` is stored: the same state machine, the same tables and the same reading of
 * broken markup (a tag in error is dropped up to its `>`, an unknown `<esi:x>` too), so a page
 * comes out as varnishd assembles it, with an error or a warning counted where vep_error or
 * vep_warn is called. It reads the whole body at once where varnishd reads it
 * piecemeal as it arrives; the machine's result does not depend on where the pieces end.
 * Returns undefined when the body holds no ESI (varnishd then stores no ESI data and the
 * object is delivered as it is, with its Content-Length).
 */
export function parseEsi(body: Buffer, url: string, features: EsiFeatures, counts: EsiParseCounts): EsiProgram | undefined {
  return new Vep(body, url, features, counts).run()
}

/**
 * Where vep_error and vep_warn count (varnishd's MAIN.esi_errors / MAIN.esi_warnings). varnishd
 * also logs each as an ESI_xmlerror record; the router's transaction log leaves ESI out (README).
 */
export interface EsiParseCounts {
  esi_errors: number
  esi_warnings: number
}

enum S {
  Start,
  Bom,
  TestXml,
  NotXml,
  NextTag,
  NotMyTag,
  StartTag,
  Comment,
  Cdata,
  EsiTag,
  EsiRemove,
  EsiInclude,
  EsiComment,
  EsiBogon,
  InTag,
  TagError,
  Attr,
  SkipAttr,
  AttrDelim,
  AttrGetVal,
  AttrVal,
  Until,
  Match,
}

/** One row of a match table: the text, and the state it leads to (text undefined: the default). */
type MatchRow = readonly [text: Buffer | undefined, next: S]

const row = (text: string | undefined, next: S): MatchRow => [text === undefined ? undefined : Buffer.from(text, 'latin1'), next]

const MATCH_STARTTAG: readonly MatchRow[] = [row('!--', S.Comment), row('esi:', S.EsiTag), row('![CDATA[', S.Cdata), row(undefined, S.NotMyTag)]
const MATCH_ESI: readonly MatchRow[] = [row('include', S.EsiInclude), row('remove', S.EsiRemove), row('comment', S.EsiComment), row(undefined, S.EsiBogon)]
// varnishd 7.1 reads onerror= always; whether a fragment's failure ends the page is decided
// at delivery, by feature esi_include_onerror (esi-deliver.ts).
const MATCH_ATTR_INCLUDE: readonly MatchRow[] = [row('src=', S.AttrGetVal), row('onerror=', S.AttrGetVal), row(undefined, S.SkipAttr)]
// cache_esi_parse.c's vep_match_bom, byte for byte.
const MATCH_BOM: readonly MatchRow[] = [row('\xeb\xbb\xbf', S.Start), row(undefined, S.Bom)]

const LT = 0x3c
const GT = 0x3e
const SLASH = 0x2f

// vct.h: SP and HT are "sp"; with CR and LF they are "lws".
const isSp = (c: number) => c === 0x20 || c === 0x09
const isLws = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a
// vct.c's XML name classes (Latin-1 letters beyond ASCII included, as its table has them).
const isXmlNameStart = (c: number) =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x3a || c === 0x5f || (c >= 0xc0 && c !== 0xd7 && c !== 0xf7)
const isXmlName = (c: number) => isXmlNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0xb7

/** Where a body may end without VEP_Finish's error: before or between tags. */
const ENDS_OUTSIDE_TAGS = new Set([S.Start, S.Bom, S.TestXml, S.NotXml, S.NextTag])

function hasLws(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (isLws(value.charCodeAt(i))) return true
  return false
}

const COMMENT_END = Buffer.from('-->')
const CDATA_END = Buffer.from(']]>')
const ESI_COMMENT = Buffer.from('esi')

class Vep {
  readonly #b: Buffer
  readonly #url: string
  readonly #f: EsiFeatures
  readonly #counts: EsiParseCounts
  #state = S.Start
  /** Where classified bytes end: [done, p) are not yet known to be sent or skipped. */
  #done = 0
  #lastVerbatim = true
  #found = false
  #endTag = false
  #emptyTag = false
  #canAttr = false
  #remove = false
  #inEsiTag = false
  #match: readonly MatchRow[] = MATCH_STARTTAG
  #hit: MatchRow | undefined
  #attr: readonly MatchRow[] | undefined
  /** The ESI element whose tag is being read (vep->dostuff). */
  #element: 'include' | 'remove' | 'comment' | undefined
  /** `<!--esi` was seen: the `-->` that ends it is looked for (esicmt, esicmt_p). */
  #esiCmt: Buffer | undefined
  #esiCmtI = 0
  #until: Buffer = COMMENT_END
  #untilI = 0
  #attrDelim = 0
  #attrStart = -1
  #src: string | undefined
  #onErrorContinue = false
  readonly #parts: EsiPart[] = []
  #includes = 0

  constructor(body: Buffer, url: string, features: EsiFeatures, counts: EsiParseCounts) {
    this.#b = body
    this.#url = url
    this.#f = features
    this.#counts = counts
  }

  /** vep_error (its text is the comment at each call). */
  #error(): void {
    this.#counts.esi_errors++
  }

  /** vep_warn. */
  #warn(): void {
    this.#counts.esi_warnings++
  }

  run(): EsiProgram | undefined {
    const b = this.#b
    const e = b.length
    let p = 0
    while (p < e) {
      switch (this.#state) {
        // SECTION A: the start of the body.
        case S.Start:
          if (this.#f.removeBom && b[p] === 0xeb) {
            this.#match = MATCH_BOM
            this.#state = S.Match
          } else this.#state = S.Bom
          break
        case S.Bom:
          this.#mark(p, false)
          this.#state = this.#f.disableXmlCheck ? S.NextTag : S.TestXml
          break
        case S.TestXml:
          // The first non-white-space byte is not '<': not XML, no ESI processing.
          while (p < e && isLws(b[p] as number)) p++
          this.#mark(p, true)
          if (p < e && b[p] === LT) {
            p++
            this.#state = S.StartTag
          } else if (p < e) this.#state = S.NotXml
          break
        case S.NotXml:
          p = e
          this.#mark(p, true)
          break
        // SECTION B: between tags.
        case S.NotMyTag:
          if (this.#f.ignoreOtherElements) {
            p++
            this.#state = S.NextTag
          } else {
            while (p < e) {
              if (b[p++] === GT) {
                this.#state = S.NextTag
                break
              }
            }
          }
          if (p === e && !this.#remove) this.#mark(p, true)
          break
        case S.NextTag:
          p = this.#nextTag(p, e)
          break
        // SECTION C: what a tag is.
        case S.StartTag:
          if (b[p] === SLASH) {
            this.#endTag = true
            p++
          }
          this.#match = MATCH_STARTTAG
          this.#state = S.Match
          break
        case S.Comment:
          p = this.#comment(p, e)
          break
        case S.Cdata:
          this.#untilThen(CDATA_END)
          break
        case S.EsiTag:
          this.#inEsiTag = true
          this.#found = true
          this.#mark(p, false)
          this.#match = MATCH_ESI
          this.#state = S.Match
          break
        case S.EsiInclude:
          if (this.#remove || this.#endTag) {
            // "<esi:include> element nested in <esi:remove>", "</esi:include> illegal end-tag"
            this.#error()
            this.#state = S.TagError
          } else {
            this.#element = 'include'
            this.#state = S.InTag
            this.#attr = MATCH_ATTR_INCLUDE
          }
          break
        case S.EsiRemove:
          this.#element = 'remove'
          this.#state = S.InTag
          break
        case S.EsiComment:
          if (this.#remove || this.#endTag) {
            // "<esi:comment> element nested in <esi:remove>", "</esi:comment> illegal end-tag"
            this.#error()
            this.#state = S.TagError
          } else {
            this.#element = 'comment'
            this.#state = S.InTag
          }
          break
        case S.EsiBogon:
          // "ESI 1.0 <esi:bogus> element"
          this.#error()
          this.#state = S.TagError
          break
        // SECTION D: inside an ESI tag.
        case S.InTag:
          p = this.#inTag(p, e)
          break
        case S.TagError:
          while (p < e && b[p] !== GT) p++
          if (p < e) {
            p++
            this.#mark(p, false)
            this.#inEsiTag = false
            this.#resetTag()
            this.#state = S.NextTag
          }
          break
        // SECTION E: attributes.
        case S.Attr:
          if (this.#attr === undefined) {
            p++
            this.#state = S.SkipAttr
          } else {
            this.#match = this.#attr
            this.#state = S.Match
          }
          break
        case S.SkipAttr: {
          while (p < e && isXmlName(b[p] as number)) p++
          if (p >= e) break
          const c = b[p] as number
          if (c === 0x3d) {
            p++
            this.#state = S.AttrDelim
          } else if (c === GT || c === SLASH || isSp(c)) this.#state = S.InTag
          else {
            // "XML 1.0 Illegal attr char"
            this.#error()
            this.#state = S.TagError
          }
          break
        }
        case S.AttrGetVal:
          this.#attrStart = -2 // collect the value
          this.#state = S.AttrDelim
          break
        case S.AttrDelim: {
          const c = b[p] as number
          const collect = this.#attrStart === -2
          if (c === 0x22 || c === 0x27) {
            this.#attrDelim = c
            p++
            this.#state = S.AttrVal
          } else if (!isSp(c)) {
            this.#attrDelim = 0x20
            this.#state = S.AttrVal
          } else {
            // "XML 1.0 Illegal attribute delimiter"
            this.#error()
            this.#state = S.TagError
            break
          }
          this.#attrStart = collect ? p : -1
          break
        }
        case S.AttrVal:
          p = this.#attrVal(p, e)
          break
        // Utility section.
        case S.Until: {
          const until = this.#until
          while (p < e) {
            if (b[p++] !== until[this.#untilI++]) this.#untilI = 0
            else if (this.#untilI === until.length) {
              this.#state = S.NextTag
              break
            }
          }
          if (p === e && !this.#remove) this.#mark(p, true)
          break
        }
        case S.Match:
          p = this.#matchTable(p, e)
          break
      }
    }
    // VEP_Parse's tail and VEP_Finish: what is left goes the way the last mark went, unless it
    // is inside an ESI tag or an <esi:remove>. A body that ends inside any tag (a comment,
    // CDATA, another element) is "VEP ended inside a tag".
    if (!ENDS_OUTSIDE_TAGS.has(this.#state)) this.#error()
    if (this.#done < e) this.#mark(e, this.#inEsiTag || this.#remove ? false : this.#lastVerbatim)
    if (!this.#found) return undefined
    return { parts: this.#parts, includes: this.#includes }
  }

  /** Bytes up to `p` are sent (verbatim) or skipped: vep_mark_verbatim / vep_mark_skip. */
  #mark(p: number, verbatim: boolean): void {
    if (p > this.#done && verbatim) {
      const last = this.#parts[this.#parts.length - 1]
      if (last !== undefined && 'end' in last && last.end === this.#done) this.#parts[this.#parts.length - 1] = { start: last.start, end: p }
      else this.#parts.push({ start: this.#done, end: p })
    }
    this.#lastVerbatim = verbatim
    this.#done = p
  }

  #resetTag(): void {
    this.#attrStart = -1
  }

  /** VEP_NEXTTAG: to the next '<', watching for the `-->` that ends an `<!--esi`. */
  #nextTag(p: number, e: number): number {
    const b = this.#b
    this.#emptyTag = false
    this.#endTag = false
    this.#attr = undefined
    this.#element = undefined
    while (p < e && b[p] !== LT) {
      const cmt = this.#esiCmt
      if (cmt === undefined) {
        p++
        continue
      }
      if (b[p] !== cmt[this.#esiCmtI]) {
        p++
        this.#esiCmtI = 0
        continue
      }
      if (!this.#remove && this.#esiCmtI === 0) this.#mark(p, true)
      p++
      if (++this.#esiCmtI === cmt.length) {
        this.#found = true
        this.#esiCmt = undefined
        this.#esiCmtI = 0
        // The `-->` is not sent; what came before it is.
        this.#mark(p, false)
      }
    }
    if (p < e) {
      if (!this.#remove) this.#mark(p, true)
      p++
      this.#state = S.StartTag
    } else if (this.#esiCmtI === 0 && !this.#remove) this.#mark(p, true)
    return p
  }

  /** VEP_COMMENT: `<!--esi` opens an ESI comment (its content is parsed), anything else is a comment. */
  #comment(p: number, e: number): number {
    const b = this.#b
    if (this.#esiCmt === undefined) {
      this.#esiCmt = ESI_COMMENT
      this.#esiCmtI = 0
    }
    while (p < e) {
      if (b[p] !== (this.#esiCmt as Buffer)[this.#esiCmtI]) {
        this.#esiCmt = undefined
        this.#esiCmtI = 0
        this.#untilThen(COMMENT_END)
        break
      }
      p++
      if (++this.#esiCmtI !== ESI_COMMENT.length) continue
      // "ESI 1.0 Nested <!--esi element in <esi:remove>"
      if (this.#remove) this.#error()
      this.#esiCmt = COMMENT_END
      this.#esiCmtI = 0
      this.#state = S.NextTag
      this.#mark(p, false)
      break
    }
    return p
  }

  #untilThen(text: Buffer): void {
    this.#until = text
    this.#untilI = 0
    this.#state = S.Until
  }

  /** VEP_INTAG: white space, `/`, `>` or the next attribute. */
  #inTag(p: number, e: number): number {
    const b = this.#b
    while (p < e && isLws(b[p] as number) && !this.#emptyTag) {
      p++
      this.#canAttr = true
    }
    if (p < e && b[p] === SLASH && !this.#emptyTag) {
      p++
      this.#emptyTag = true
      this.#canAttr = false
    }
    if (p >= e) return p
    const c = b[p] as number
    if (c === GT) {
      p++
      this.#mark(p, false)
      if (this.#element === 'include') this.#include()
      else if (this.#element === 'remove') this.#removeTag()
      // vep_do_comment: "ESI 1.0 <esi:comment> needs final '/'"
      else if (this.#element === 'comment' && !this.#emptyTag) this.#error()
      this.#inEsiTag = false
      this.#state = S.NextTag
    } else if (this.#emptyTag) {
      // "XML 1.0 '>' does not follow '/' in tag"
      this.#error()
      this.#state = S.TagError
    } else if (this.#canAttr && isXmlNameStart(c)) this.#state = S.Attr
    else {
      // "XML 1.0 Illegal attribute start char"
      this.#error()
      this.#state = S.TagError
    }
    return p
  }

  #attrVal(p: number, e: number): number {
    const b = this.#b
    const delim = this.#attrDelim
    while (p < e && b[p] !== GT && b[p] !== delim && (delim !== 0x20 || !isSp(b[p] as number))) p++
    if (p >= e) return p
    const start = this.#attrStart
    this.#attrDelim = 0
    this.#attrStart = -1
    if (b[p] === GT) {
      // "XML 1.0 Missing end attribute delimiter"
      this.#error()
      this.#state = S.TagError
      return p
    }
    const value = start >= 0 ? b.toString('latin1', start, p) : undefined
    p++
    this.#state = S.InTag
    if (value !== undefined) this.#includeAttr(value)
    return p
  }

  /** vep_do_include(DO_ATTR). */
  #includeAttr(value: string): void {
    const name = this.#hit?.[0]?.toString('latin1')
    if (name === 'src=') {
      // "ESI 1.0 <esi:include> has whitespace in src= attribute": the tag is dropped.
      if (hasLws(value)) {
        this.#error()
        this.#src = undefined
        this.#state = S.TagError
        return
      }
      if (this.#src !== undefined) {
        // "ESI 1.0 <esi:include> has multiple src= attributes"
        this.#error()
        this.#src = undefined
        this.#state = S.TagError
        return
      }
      this.#src = value
    } else this.#onErrorContinue = value === 'continue'
  }

  /** vep_do_include(DO_TAG): the include, its path resolved as varnishd resolves it. */
  #include(): void {
    const raw = this.#src
    const onErrorContinue = this.#onErrorContinue
    this.#src = undefined
    this.#onErrorContinue = false
    // "ESI 1.0 <esi:include> lacks final '/'"
    if (!this.#emptyTag) this.#warn()
    // "ESI 1.0 <esi:include> lacks src attr": logged, nothing included.
    if (raw === undefined) {
      this.#error()
      return
    }
    let host: string | undefined
    let path: string
    const scheme = raw.startsWith('http://') && raw.length > 7 ? 7 : raw.startsWith('https://') && raw.length > 8 ? 8 : 0
    // "<esi:include> with https:// ignored" unless feature esi_ignore_https, then
    // "https:// treated as http://": a warning either way.
    if (scheme === 8) this.#warn()
    if (scheme === 8 && !this.#f.ignoreHttps) return
    if (scheme > 0) {
      const slash = raw.indexOf('/', scheme)
      // A URL without a path: "ESI 1.0 <esi:include> invalid src= URL", nothing included.
      if (slash === -1) {
        this.#error()
        return
      }
      host = raw.slice(scheme, slash)
      path = decodeEntities(raw.slice(slash))
    } else if (raw.startsWith('/')) path = decodeEntities(raw)
    else {
      // Relative: after the last '/' before any '?' of the object's (bereq) URL.
      const url = this.#url
      const q = url.indexOf('?')
      const dir = url.lastIndexOf('/', q === -1 ? url.length : q - 1)
      path = `${dir === -1 ? url : url.slice(0, dir)}/${decodeEntities(raw)}`
    }
    const part: EsiInclude = { src: path, host, onErrorContinue }
    this.#parts.push(part)
    this.#includes++
  }

  /** vep_do_remove. */
  #removeTag(): void {
    // "<esi:remove/> not legal", "<esi:remove> already open", "<esi:remove> not open".
    if (this.#emptyTag || this.#remove === !this.#endTag) {
      this.#error()
      return
    }
    this.#remove = !this.#endTag
  }

  /** VEP_MATCH: the first row whose text starts here; more input needed at the end is the end. */
  #matchTable(p: number, e: number): number {
    const b = this.#b
    for (const r of this.#match) {
      const text = r[0]
      if (text === undefined) {
        this.#hit = r
        this.#state = r[1]
        return p
      }
      let i = 0
      while (i < text.length && p + i < e && b[p + i] === text[i]) i++
      if (i === text.length) {
        this.#hit = r
        this.#state = r[1]
        return p + text.length
      }
      // The body ends inside what could still be this text: varnishd waits for more input,
      // and there is none (VEP_Finish).
      if (p + i === e) return e
    }
    return e
  }
}

/** The XML entities varnishd decodes in an include's path. */
function decodeEntities(path: string): string {
  if (!path.includes('&')) return path
  return path.replace(/&(apos|quot|lt|gt|amp);/g, (_m, name: string) => ENTITIES[name] as string)
}

const ENTITIES: Record<string, string> = { apos: "'", quot: '"', lt: '<', gt: '>', amp: '&' }
