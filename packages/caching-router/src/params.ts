import { type MatchLimits, UsageError } from '@edgestack/common'
import type { EsiFeatures } from './esi/esi-program.js'
import type { GzipParams } from './gzip/fetch-coding.js'
import { H2_RXBUF_STORAGE, H2_SPECS } from './h2/h2-params.js'

/** One varnishd parameter we honour: its unit, default and bounds, as `param.show` prints them. */
interface ParamSpec {
  unit: 'seconds' | 'bytes' | 'header lines' | 'count' | 'bool' | 'restarts' | 'retries' | 'streams' | 'levels'
  default: number
  min: number
  max?: number
  text: string
}

const UINT_MAX_PARAM = 4294967295

// Defaults are varnishd 7's; the descriptions are shortened from `varnishd -x parameter`.
const SPECS: Record<string, ParamSpec> = {
  default_ttl: { unit: 'seconds', default: 120, min: 0, text: 'The TTL assigned to objects if neither the backend nor the VCL code assigns one.' },
  default_grace: { unit: 'seconds', default: 10, min: 0, text: 'Default grace period: how long past their TTL objects may be served.' },
  default_keep: { unit: 'seconds', default: 0, min: 0, text: 'Default keep period: how long past TTL + grace objects are kept for conditional fetches.' },
  http_req_hdr_len: { unit: 'bytes', default: 8192, min: 40, text: 'Maximum length of any HTTP client request header we will allow.' },
  http_req_size: { unit: 'bytes', default: 32768, min: 256, text: 'Maximum number of bytes of HTTP client request we will deal with.' },
  http_max_hdr: { unit: 'header lines', default: 64, min: 32, max: 65535, text: 'Maximum number of HTTP header lines we allow in a request.' },
  timeout_idle: { unit: 'seconds', default: 5, min: 0, text: 'Idle timeout for client connections.' },
  pipe_timeout: { unit: 'seconds', default: 60, min: 0, text: 'Idle timeout for PIPE sessions.' },
  first_byte_timeout: { unit: 'seconds', default: 60, min: 0, text: 'Default timeout for receiving first byte from backend.' },
  between_bytes_timeout: { unit: 'seconds', default: 60, min: 0, text: 'Default timeout between bytes when receiving data from backend.' },
  backend_idle_timeout: { unit: 'seconds', default: 60, min: 1, text: 'Timeout before we close unused backend connections.' },
  connect_timeout: { unit: 'seconds', default: 3.5, min: 0, text: 'Default connection timeout for backend connections.' },
  max_retries: { unit: 'retries', default: 4, min: 0, text: 'Upper limit on how many times a backend fetch can retry.' },
  max_restarts: { unit: 'restarts', default: 4, min: 0, text: 'Upper limit on how many times a request can restart.' },
  // The bounds of every regex match (VCL `~`, regsub, bans), as varnishd's cache_param->vre_limits.
  pcre2_match_limit: { unit: 'count', default: 10000, min: 1, max: UINT_MAX_PARAM, text: 'The limit for the number of calls to the internal match logic in pcre2_match().' },
  pcre2_depth_limit: { unit: 'count', default: 20, min: 1, max: UINT_MAX_PARAM, text: 'The recursion depth-limit for the internal match logic in a pcre2_match().' },
  // PCRE2's JIT ignores the depth limit (pcre2_set_depth_limit(3)): with it on, only the match limit bounds.
  pcre2_jit_compilation: { unit: 'bool', default: 1, min: 0, max: 1, text: 'Use the pcre2 JIT compiler if available.' },
  // Compression (src/gzip/), as varnishd's cache_gzip.c: gzip_buffer sizes zlib's chunks.
  http_gzip_support: { unit: 'bool', default: 1, min: 0, max: 1, text: 'Enable gzip support: ask backends for gzip, store gzip once, gunzip for clients that do not take it.' },
  gzip_level: { unit: 'count', default: 6, min: 0, max: 9, text: 'Gzip compression level: 0=debug, 1=fast, 9=best' },
  gzip_memlevel: { unit: 'count', default: 8, min: 1, max: 9, text: 'Gzip memory level 1=slow/least, 9=fast/most compression.' },
  gzip_buffer: { unit: 'bytes', default: 32 * 1024, min: 2 * 1024, text: 'Size of malloc buffer used for gzip processing.' },
  max_esi_depth: { unit: 'levels', default: 5, min: 0, text: 'Maximum depth of esi:include processing.' },
  http_resp_hdr_len: { unit: 'bytes', default: 8192, min: 40, text: 'Maximum length of any HTTP backend response header we will allow.' },
  http_resp_size: { unit: 'bytes', default: 32768, min: 256, text: 'Maximum number of bytes of HTTP backend response we will deal with.' },
  shortlived: { unit: 'seconds', default: 10, min: 0, text: 'Objects created with (ttl+grace+keep) shorter than this are always put in transient storage.' },
  // Documented no-ops (README, "No silent no-ops"): they size varnishd's per-request workspaces,
  // which have no counterpart here; accepted with varnishd's bounds because varnish Dockerfiles
  // set them, and what a client sees does not depend on them.
  workspace_client: { unit: 'bytes', default: 96 * 1024, min: 9 * 1024, text: 'Bytes of HTTP protocol workspace for clients HTTP req/resp.' },
  workspace_backend: { unit: 'bytes', default: 96 * 1024, min: 1024, text: 'Bytes of HTTP protocol workspace for backend HTTP req/resp.' },
  ...H2_SPECS,
}

/** The ESI feature bits (src/esi/): on and off as in varnishd. */
const ESI_BITS = new Set(['esi_ignore_https', 'esi_disable_xml_check', 'esi_ignore_other_elements', 'esi_remove_bom', 'esi_include_onerror'])

/** varnishd's feature bits (mgt_param_bits.c feature_tweak); we act on http2, validate_headers and the ESI bits. */
const FEATURE_BITS = new Set([
  'http2', 'short_panic', 'no_coredump', 'https_scheme', 'http_date_postel', 'esi_ignore_https',
  'esi_disable_xml_check', 'esi_ignore_other_elements', 'esi_remove_bom', 'esi_include_onerror',
  'wait_silo', 'validate_headers', 'busy_stats_rate',
])

/**
 * `feature`: varnishd's words, applied left to right; `default` is +validate_headers. Only
 * http2 may change (`+http2` serves HTTP/2, src/h2/); validate_headers is always on (headers
 * set from VCL are always validated), and every other bit changes what varnishd does: refused.
 * The result: whether http2 is on.
 */
function applyFeature(text: string, http2: boolean, esi: Set<string>): boolean {
  let on = http2
  for (const raw of text.split(',')) {
    const flag = raw.trim()
    if (flag === 'default' || flag === 'none') {
      if (flag === 'none') throw new UsageError(`feature=${text}: validate_headers cannot be turned off in caching-router\n\n(attempting to set param 'feature' to '${text}')`)
      on = false
      esi.clear()
      continue
    }
    const sign = flag[0]
    const bit = flag.slice(1)
    if ((sign !== '+' && sign !== '-') || !FEATURE_BITS.has(bit)) throw new UsageError(`Unknown feature bit (${flag})\n\n(attempting to set param 'feature' to '${text}')`)
    if (bit === 'http2') on = sign === '+'
    else if (ESI_BITS.has(bit)) {
      if (sign === '+') esi.add(bit)
      else esi.delete(bit)
    } else if (bit !== 'validate_headers' || sign === '-') {
      throw new UsageError(`feature=${text}: "${flag}" is not supported by caching-router (only http2, the esi_ bits and +validate_headers)\n\n(attempting to set param 'feature' to '${text}')`)
    }
  }
  return on
}

export type ParamName = keyof typeof SPECS

// esi_chop feeds varnishd's VEP the body a byte at a time (cache_esi_fetch.c): VEP's result does
// not depend on where the pieces end, and ours reads the whole body, so clients see the same.
const DEBUG_FLAGS = new Set(['vtc_mode', 'syncvsl', 'workspace', 'witness', 'vclrel', 'lurker', 'vcl_keep', 'vmod_so_keep', 'vsm_keep', 'esi_chop'])

/**
 * Parameters varnishtest passes to every varnishd, taken with the values under which ours
 * behaves as varnishd does (README: "varnishtest's parameters"): anything else is refused.
 */
const FIXED: Record<string, { default: string; accepts(v: string): boolean }> = {
  // No child process restarts on its own, and no CLI line goes to syslog.
  auto_restart: { default: 'on', accepts: (v) => v === 'off' },
  syslog_cli_traffic: { default: 'on', accepts: (v) => v === 'off' },
  // Node serves every connection on one event loop: a thread count changes nothing seen.
  thread_pool_min: { default: '100', accepts: (v) => /^\d+$/.test(v) },
  thread_pool_max: { default: '5000', accepts: (v) => /^\d+$/.test(v) },
  thread_pools: { default: '2', accepts: (v) => /^\d+$/.test(v) },
  thread_pool_stack: { default: '80k', accepts: (v) => parseSize(v) !== undefined },
  // How varnishd grows and shrinks its thread pools (Dockerfiles tune them with the sizes).
  thread_pool_timeout: { default: '300.000', accepts: (v) => /^\d+(\.\d+)?(s|m)?$/.test(v) },
  thread_pool_add_delay: { default: '0.000', accepts: (v) => /^\d+(\.\d+)?(ms|s)?$/.test(v) },
  thread_pool_destroy_delay: { default: '1.000', accepts: (v) => /^\d+(\.\d+)?(ms|s)?$/.test(v) },
  // Debug flags that only change varnishd's own diagnostics (panic text, lock and workspace
  // log records, synchronous log writes, kept build files), none of which we produce.
  debug: { default: 'none', accepts: (v) => v === 'none' || v.split(',').every((f) => DEBUG_FLAGS.has(f.replace(/^[+-]/, ''))) },
  // Debug records are not among the log records we write.
  vsl_mask: { default: 'default', accepts: (v) => v === '+Debug' },
  h2_rxbuf_storage: { default: H2_RXBUF_STORAGE, accepts: (v) => v === H2_RXBUF_STORAGE },
}

/**
 * RFC 9213's target list: the response fields, in order, that steer this cache ahead of
 * Cache-Control (ours; varnishd has no such parameter). Empty: none.
 */
const TARGETED = 'targeted_cache_control'
const TARGETED_DEFAULT = 'CDN-Cache-Control'
const TARGETED_TEXT = 'Targeted cache-control fields (RFC 9213), comma-separated, first match wins; empty for none.'
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** The lower-case field names of a `targeted_cache_control` value, or undefined when one is not a token. */
function targetList(text: string): string[] | undefined {
  const out: string[] = []
  for (const part of text.split(',')) {
    const name = part.trim()
    if (name === '') continue
    if (!FIELD_NAME.test(name)) return undefined
    out.push(name.toLowerCase())
  }
  return out
}

/** Every parameter `-p` and `param.set` accept (`feature` aside). */
export const PARAM_NAMES: readonly string[] = [...Object.keys(SPECS), ...Object.keys(FIXED), TARGETED]

export class Params {
  /** targeted_cache_control, parsed: lower-case field names. */
  targets: readonly string[] = [TARGETED_DEFAULT.toLowerCase()]
  #targetsText = TARGETED_DEFAULT
  readonly #values = new Map<string, number>()
  readonly #text = new Map<string, string>()
  readonly #listeners: Array<(name: string) => void> = []
  #regexLimits: MatchLimits | undefined
  /** `feature` has +http2: a connection that opens with the HTTP/2 preface is served HTTP/2. */
  http2 = false
  /** The ESI feature bits that are on. */
  #esi = new Set<string>()
  #esiFeatures: EsiFeatures | undefined

  get(name: string): number {
    return this.#values.get(name) ?? (SPECS[name] as ParamSpec).default
  }

  /** `-p name=value` and `param.set`; throws varnishd's words (mgt_param_tcp/tweak.c). */
  set(name: string, text: string): void {
    if (name === TARGETED) {
      const list = targetList(text)
      if (list === undefined) throw new UsageError(`Not a list of field names (${text})\n\n(attempting to set param '${name}' to '${text}')`)
      this.targets = list
      this.#targetsText = text
      return
    }
    if (name === 'feature') {
      const esi = new Set(this.#esi)
      this.http2 = applyFeature(text, this.http2, esi)
      this.#esi = esi
      this.#esiFeatures = undefined
      for (const l of this.#listeners) l(name)
      return
    }
    const fixed = FIXED[name]
    if (fixed !== undefined) {
      if (name === 'h2_rxbuf_storage' && !fixed.accepts(text)) throw new UsageError(`unknown storage backend '${text}'\n(attempting to set param '${name}' to '${text}')`)
      if (!fixed.accepts(text)) throw new UsageError(`caching-router takes ${name} only as varnishtest sets it\n\n(attempting to set param '${name}' to '${text}')`)
      this.#text.set(name, text)
      return
    }
    const spec = SPECS[name]
    if (!spec) throw new UsageError(`Unknown parameter "${name}".`)
    const value = parseValue(text, spec)
    const problem =
      value === undefined ? NOT_A_VALUE[spec.unit](text)
      : value < spec.min ? (spec.unit === 'seconds' ? `Must be greater or equal to ${bare(spec.min, spec)}` : `Must be at least ${bare(spec.min, spec)}`)
      : spec.max !== undefined && value > spec.max ? `Must be no more than ${bare(spec.max, spec)}`
      : undefined
    if (problem !== undefined) throw new UsageError(`${problem}\n\n(attempting to set param '${name}' to '${text}')`)
    this.#values.set(name, value as number)
    this.#regexLimits = undefined
    for (const l of this.#listeners) l(name)
  }

  /** http_gzip_support and the gzip_* sizes, as they are now. */
  get gzip(): GzipParams {
    return {
      support: this.get('http_gzip_support') === 1,
      level: this.get('gzip_level'),
      memLevel: this.get('gzip_memlevel'),
      buffer: this.get('gzip_buffer'),
    }
  }

  /** Whether `-p feature=+NAME` is on (the ESI bits). */
  feature(name: string): boolean {
    return this.#esi.has(name)
  }

  /** The ESI parser's feature flags, as they are now (param.set applies to the next object stored). */
  get esiFeatures(): EsiFeatures {
    this.#esiFeatures ??= Object.freeze({
      ignoreHttps: this.#esi.has('esi_ignore_https'),
      disableXmlCheck: this.#esi.has('esi_disable_xml_check'),
      ignoreOtherElements: this.#esi.has('esi_ignore_other_elements'),
      removeBom: this.#esi.has('esi_remove_bom'),
    })
    return this.#esiFeatures
  }

  /** What every regex match of this instance may spend, read at match time as varnishd does. */
  get regexLimits(): MatchLimits {
    this.#regexLimits ??= Object.freeze({
      matchLimit: this.get('pcre2_match_limit'),
      depthLimit: this.get('pcre2_jit_compilation') ? Number.POSITIVE_INFINITY : this.get('pcre2_depth_limit'),
    })
    return this.#regexLimits
  }

  /** `param.reset NAME`: back to the default. */
  reset(name: string): void {
    if (name === TARGETED) {
      this.set(TARGETED, TARGETED_DEFAULT)
      return
    }
    if (name === 'feature') {
      this.http2 = false
      this.#esi = new Set()
      this.#esiFeatures = undefined
      for (const l of this.#listeners) l(name)
      return
    }
    if (FIXED[name]) {
      this.#text.delete(name)
      return
    }
    if (!SPECS[name]) throw new UsageError(`Unknown parameter "${name}".`)
    this.#values.delete(name)
    this.#regexLimits = undefined
    for (const l of this.#listeners) l(name)
  }

  /** The parameters set away from their defaults, as `-p` pairs (a manager hands them to its child). */
  *changed(): Generator<readonly [string, string]> {
    if (this.http2 || this.#esi.size > 0) yield ['feature', [...(this.http2 ? ['http2'] : []), ...this.#esi].map((f) => `+${f}`).join(',')]
    for (const [name, text] of this.#text) yield [name, text]
    if (this.#targetsText !== TARGETED_DEFAULT) yield [TARGETED, this.#targetsText]
    // A bool goes back as `on`/`off`, the words `-p` reads.
    for (const [name, v] of this.#values) yield [name, SPECS[name]?.unit === 'bool' ? (v ? 'on' : 'off') : String(v)]
  }

  onChange(listener: (name: string) => void): void {
    this.#listeners.push(listener)
  }

  /**
   * `param.show` (no argument): one line each; with a name, varnishd's long form, whose
   * `Value is:` line scripts read.
   */
  show(name?: string): string {
    if (name === TARGETED) {
      const dflt = this.#targetsText === TARGETED_DEFAULT
      return `${name}\n${INDENT}Value is: ${this.#targetsText}${dflt ? ' (default)' : `\n${INDENT}Default is: ${TARGETED_DEFAULT}`}\n\n${INDENT}${TARGETED_TEXT}\n\n`
    }
    if (name === 'feature') {
      const v = this.#featureText()
      return `${name}\n${INDENT}Value is: ${v}${v !== FEATURE_DEFAULT ? `\n${INDENT}Default is: ${FEATURE_DEFAULT}` : ' (default)'}\n\n${INDENT}Enable/Disable various minor features.\n\n`
    }
    if (name === 'h2_rxbuf_storage') {
      return `${name}\n${INDENT}Value is: ${H2_RXBUF_STORAGE} (default)\n\n${INDENT}The name of the storage backend that HTTP/2 receive buffers should be allocated from.\n\n`
    }
    if (name !== undefined && name !== '-l') {
      const spec = SPECS[name]
      if (!spec) throw new UsageError(`Unknown parameter "${name}".`)
      const v = this.get(name)
      let out = `${name}\n${INDENT}Value is: ${format(v, spec)}`
      out += v === spec.default ? ' (default)\n' : `\n${INDENT}Default is: ${bare(spec.default, spec)}\n`
      // varnishd prints no bounds for a bool, nor an unsigned parameter's UINT_MAX.
      if (spec.unit !== 'bool') out += `${INDENT}Minimum is: ${bare(spec.min, spec)}\n`
      if (spec.max !== undefined && spec.unit !== 'bool' && spec.max !== UINT_MAX) out += `${INDENT}Maximum is: ${bare(spec.max, spec)}\n`
      return `${out}\n${INDENT}${spec.text}\n\n`
    }
    let out = `${'feature'.padEnd(30)}${this.#featureText()}${this.#featureText() !== FEATURE_DEFAULT ? '' : ' (default)'}\n`
    for (const [n, spec] of Object.entries(SPECS)) out += `${this.#line(n, spec)}\n`
    out += `${'h2_rxbuf_storage'.padEnd(30)}${H2_RXBUF_STORAGE} (default)\n`
    out += `${TARGETED.padEnd(30)}${this.#targetsText}${this.#targetsText === TARGETED_DEFAULT ? ' (default)' : ''}\n`
    return out
  }

  /** `param.show -j [NAME]`: varnishd's JSON objects (mcf_param_show_json). */
  json(name?: string): object[] {
    const names = name === undefined ? Object.keys(SPECS).sort() : [name]
    return names.map((n) => {
      const spec = SPECS[n]
      if (!spec) throw new UsageError(`Unknown parameter "${n}".`)
      const v = this.get(n)
      return {
        name: n,
        implemented: true,
        value: v,
        units: spec.unit,
        default: bare(spec.default, spec),
        minimum: bare(spec.min, spec),
        ...(spec.max !== undefined ? { maximum: bare(spec.max, spec) } : {}),
        description: spec.text,
        flags: [],
      }
    })
  }

  /** varnishd's rendering of the feature bits that are on, sorted by name. */
  #featureText(): string {
    if (!this.http2 && this.#esi.size === 0) return FEATURE_DEFAULT
    return [...(this.http2 ? ['http2'] : []), ...this.#esi, 'validate_headers']
      .sort()
      .map((f) => `+${f}`)
      .join(',')
  }

  #line(name: string, spec: ParamSpec): string {
    const v = this.get(name)
    return `${name.padEnd(30)}${format(v, spec)}${v === spec.default ? ' (default)' : ''}`
  }
}

const INDENT = ' '.repeat(8)
const FEATURE_DEFAULT = '+validate_headers'
const UINT_MAX = UINT_MAX_PARAM

/** What varnishd says of a value it cannot read, by the parameter's type. */
const NOT_A_VALUE: Record<ParamSpec['unit'], (text: string) => string> = {
  seconds: (text) => `Invalid number (${text})`,
  bytes: () => "Could not convert to bytes.\nInvalid number\n  Try something like '80k' or '120M'",
  'header lines': (text) => `Not a number (${text})`,
  restarts: (text) => `Not a number (${text})`,
  retries: (text) => `Not a number (${text})`,
  count: (text) => `Not a number (${text})`,
  streams: (text) => `Not a number (${text})`,
  levels: (text) => `Not a number (${text})`,
  bool: () => 'use "on" or "off"',
}

/** A value with its unit, as varnishd's parameter listing prints it. */
function format(v: number, spec: ParamSpec): string {
  if (spec.unit === 'count') return String(v)
  if (spec.unit === 'bool') return `${v ? 'on' : 'off'} [bool]`
  return `${bare(v, spec)} [${spec.unit}]`
}

/** A value without its unit (varnishd's `Default is:`, `Minimum is:`). */
function bare(v: number, spec: ParamSpec): string {
  if (spec.unit === 'seconds') return v.toFixed(3)
  if (spec.unit === 'bytes') return formatBytes(v)
  if (spec.unit === 'bool') return v ? 'on' : 'off'
  return String(v)
}

/** varnishd's fmt_bytes (mgt_param_tbl.c): `1000b`, `0.25k`, `32k`, `16M`. */
function formatBytes(v: number): string {
  let t = v
  if (t === 0 || t % 256 !== 0) return `${t}b`
  for (const suffix of 'kMGTPEZ') {
    if (t % 1024 !== 0) return `${(t / 1024).toFixed(2)}${suffix}`
    t /= 1024
    if (t % 256 !== 0) return `${t}${suffix}`
  }
  return `${t}Y`
}

function parseValue(text: string, spec: ParamSpec): number | undefined {
  if (spec.unit === 'bytes') return parseSize(text)
  if (spec.unit === 'bool') return BOOL[text.trim().toLowerCase()]
  if (spec.unit === 'count') return /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined
  const m = /^(-?\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim())
  if (!m) return undefined
  const n = Number(m[1])
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] ?? 's'] as number
  return spec.unit === 'seconds' ? n * scale : m[2] ? undefined : n
}

/** tweak_bool's spellings (mgt_param_tweak.c). */
const BOOL: Record<string, number> = { on: 1, off: 0, enable: 1, disable: 0, true: 1, false: 0, yes: 1, no: 0 }

/** varnishd's byte sizes: `1024`, `64k`, `16M`, `1G` (b, k, m, g, t; either case). */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(text.trim())
  if (!m) return undefined
  const scale = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] as string).toLowerCase()] as number
  return Math.floor(Number(m[1]) * scale)
}
