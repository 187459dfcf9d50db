import type { SsiConf } from './config/model.js'
import type { RequestState } from './request-state.js'
import { type SsiCommand, SsiParser } from './ssi-parser.js'
import { entityEncode, evaluate, ifExpression, SSI_ERROR, type SsiScope, type SsiShared, ssiVariable, urlEncode } from './ssi-values.js'
import { runSubrequest } from './subrequest.js'
import { unsafeUri } from './unsafe-uri.js'

/** NGX_HTTP_SSI_MAX_PARAMS. */
const MAX_PARAMS = 16
/**
 * Subrequests one client request may start. nginx bounds only their nesting (51 levels) and
 * those in flight at once (its 16-bit reference count), so a page that includes itself twice
 * has it run 2^51 of them; we stop well before, with the words of nginx's count limit.
 */
const MAX_SUBREQUESTS = 1000
/** subrequest_output_buffer_size's default (a memory page): the most `include set=` keeps. */
const SET_BUFFER = 4096

/** ngx_http_ssi_commands: parameters (`!` = mandatory), the context it needs, whether it works inside a block. */
interface CommandDef {
  params: readonly string[]
  /** 0, NGX_HTTP_SSI_COND_IF (1) or NGX_HTTP_SSI_COND_ELSE (2). */
  conditional: 0 | 1 | 2
  block: boolean
}
const COMMANDS: ReadonlyMap<string, CommandDef> = new Map<string, CommandDef>([
  ['include', { params: ['virtual', 'file', 'wait', 'set', 'stub'], conditional: 0, block: false }],
  ['echo', { params: ['!var', 'default', 'encoding'], conditional: 0, block: false }],
  ['config', { params: ['errmsg', 'timefmt'], conditional: 0, block: false }],
  ['set', { params: ['!var', '!value'], conditional: 0, block: false }],
  ['if', { params: ['!expr'], conditional: 0, block: false }],
  ['elif', { params: ['!expr'], conditional: 1, block: false }],
  ['else', { params: [], conditional: 1, block: false }],
  ['endif', { params: [], conditional: 2, block: false }],
  ['block', { params: ['!name'], conditional: 0, block: false }],
  ['endblock', { params: [], conditional: 0, block: true }],
])

type Event = { text: string } | { command: SsiCommand } | { error: true }
/** Output in order: bytes, or an include that has not run yet (it writes its own bytes). */
type Item = string | (() => Promise<void>)
type Params = Map<string, string>

/**
 * One SSI-processed answer (nginx's ngx_http_ssi_ctx_t): commands run in document order on
 * the request the answer belongs to. As in nginx, an include without `wait` does not stop the
 * document: the commands after it in the same chunk run first, and the include's body takes its
 * place in the output when the chunk is done (nginx runs the posted subrequest then); `wait`,
 * `file` and `set` run it at once. `push` receives the output bytes (latin1).
 */
export class SsiDocument implements SsiScope {
  timefmt = '%A, %d-%b-%Y %H:%M:%S %Z'
  #errmsg = '[an error occurred while processing the directive]'
  #encoding: 'none' | 'url' | 'entity' = 'entity'
  #output = true
  #chosen = false
  #conditional: 0 | 1 | 2 = 0
  #block = false
  #events: Event[] = []
  #queue: Item[] = []
  readonly #parser: SsiParser

  constructor(
    readonly st: RequestState,
    readonly shared: SsiShared,
    readonly conf: SsiConf,
    readonly push: (bytes: string) => void,
  ) {
    const events = this.#events
    this.#parser = new SsiParser(conf.valueLength, {
      text: (text) => events.push({ text }),
      command: (command) => events.push({ command }),
      error: () => events.push({ error: true }),
      log: (m) => this.log(m),
    })
    st.ssiTimefmt = this.timefmt
  }

  log(message: string): void {
    this.st.logError(message)
  }

  /** One chunk of the answer's body: scanned, then its commands run, then its output written. */
  async feed(chunk: string): Promise<void> {
    this.#parser.feed(chunk)
    const events = this.#events.splice(0)
    for (const e of events) {
      if ('text' in e) this.#text(e.text)
      else if ('error' in e) this.#error()
      else await this.#command(e.command)
    }
    await this.#flush()
  }

  #text(text: string): void {
    if (this.#output) this.#queue.push(text)
    else if (this.#block) this.#lastBlock()?.push(text)
  }

  #lastBlock(): string[] | undefined {
    return this.shared.blocks[this.shared.blocks.length - 1]?.text
  }

  /** ngx_http_ssi_body_filter's `ssi_error`: the error text in the output, unless ssi_silent_errors. */
  #error(): void {
    if (!this.conf.silentErrors) this.#queue.push(this.#errmsg)
  }

  /** The output so far, in order: adjacent texts go out as one piece (one chunk on the wire). */
  async #flush(): Promise<void> {
    let text = ''
    while (this.#queue.length > 0) {
      const item = this.#queue.shift() as Item
      if (typeof item === 'string') {
        text += item
        continue
      }
      if (text !== '') this.push(text)
      text = ''
      await item()
    }
    if (text !== '') this.push(text)
  }

  async #command(cmd: SsiCommand): Promise<void> {
    const def = COMMANDS.get(cmd.name)
    if (def === undefined) {
      if (this.#output) {
        this.log(`invalid SSI command: "${cmd.name}"`)
        this.#error()
      }
      return
    }
    if (!this.#output && !def.block) {
      if (this.#block) {
        // The command's text, rebuilt, belongs to the block (a stub repeats it later).
        let text = `<!--#${cmd.name}`
        for (const [k, v] of cmd.params) text += ` ${k}="${v}"`
        this.#lastBlock()?.push(`${text} -->`)
        return
      }
      if (def.conditional === 0) return
    }
    if (def.conditional !== 0 && (this.#conditional === 0 || this.#conditional > def.conditional)) {
      this.log(`invalid context of SSI command: "${cmd.name}"`)
      return this.#error()
    }
    const params = this.#params(cmd, def)
    if (params === undefined) return this.#error()
    const r = await this.#run(cmd.name, params)
    if (r === SSI_ERROR) this.#error()
  }

  /** The parameters by name, checked as nginx checks them (count, names, duplicates, mandatory ones). */
  #params(cmd: SsiCommand, def: CommandDef): Params | undefined {
    if (cmd.params.length > MAX_PARAMS) {
      this.log(`too many SSI command parameters: "${cmd.name}"`)
      return undefined
    }
    const out: Params = new Map()
    for (const [k, v] of cmd.params) {
      if (!def.params.includes(k) && !def.params.includes(`!${k}`)) {
        this.log(`invalid parameter name: "${k}" in "${cmd.name}" SSI command`)
        return undefined
      }
      if (out.has(k)) {
        this.log(`duplicate "${k}" parameter in "${cmd.name}" SSI command`)
        return undefined
      }
      out.set(k, v)
    }
    for (const p of def.params) {
      if (p.startsWith('!') && !out.has(p.slice(1))) {
        this.log(`mandatory "${p.slice(1)}" parameter is absent in "${cmd.name}" SSI command`)
        return undefined
      }
    }
    return out
  }

  async #run(name: string, p: Params): Promise<typeof SSI_ERROR | undefined> {
    switch (name) {
      case 'include':
        return this.#include(p)
      case 'echo':
        this.#echo(p)
        return
      case 'config': {
        const timefmt = p.get('timefmt')
        if (timefmt !== undefined) {
          this.timefmt = timefmt
          this.st.ssiTimefmt = timefmt
        }
        const errmsg = p.get('errmsg')
        if (errmsg !== undefined) this.#errmsg = errmsg
        return
      }
      case 'set': {
        const value = evaluate(this, p.get('value') as string)
        if (value === SSI_ERROR) return value
        this.shared.variables.set((p.get('var') as string).toLowerCase(), value)
        return
      }
      case 'if':
      case 'elif': {
        if (name === 'if' && this.#conditional !== 0) {
          this.log('the "if" command inside the "if" command')
          return SSI_ERROR
        }
        if (this.#chosen) {
          this.#output = false
          return
        }
        const r = ifExpression(this, p.get('expr') as string)
        if (r === SSI_ERROR) return r
        this.#output = r
        if (r) this.#chosen = true
        this.#conditional = 1
        return
      }
      case 'else':
        this.#output = !this.#chosen
        this.#conditional = 2
        return
      case 'endif':
        this.#output = true
        this.#chosen = false
        this.#conditional = 0
        return
      case 'block':
        this.shared.blocks.push({ name: p.get('name') as string, text: [] })
        this.#output = false
        this.#block = true
        return
      case 'endblock':
        this.#output = true
        this.#block = false
        return
    }
  }

  /** ngx_http_ssi_echo: the value (or default, or `(none)`), in the encoding last asked for. */
  #echo(p: Params): void {
    let value = ssiVariable(this, (p.get('var') as string).toLowerCase())
    if (value === undefined) {
      value = p.get('default') ?? '(none)'
      if (value === '') return
    } else if (value === '') return
    const enc = p.get('encoding')
    if (enc === 'none' || enc === 'url' || enc === 'entity') this.#encoding = enc
    else if (enc !== undefined) this.log(`unknown encoding "${enc}" in the "echo" command`)
    this.#queue.push(this.#encoding === 'url' ? urlEncode(value) : this.#encoding === 'entity' ? entityEncode(value) : value)
  }

  /** ngx_http_ssi_include's checks, then the subrequest (at once, or when the chunk is done). */
  async #include(p: Params): Promise<typeof SSI_ERROR | undefined> {
    const virtual = p.get('virtual')
    const file = p.get('file')
    const set = p.get('set')
    const stub = p.get('stub')
    const wait = p.get('wait')
    if (virtual !== undefined && file !== undefined) {
      this.log(`inclusion may be either virtual="${virtual}" or file="${file}"`)
      return SSI_ERROR
    }
    if (virtual === undefined && file === undefined) {
      this.log('no parameter in "include" SSI command')
      return SSI_ERROR
    }
    if (set !== undefined && stub !== undefined) {
      this.log('"set" and "stub" cannot be used together in "include" SSI command')
      return SSI_ERROR
    }
    let waited = virtual === undefined
    if (wait !== undefined) {
      if (virtual === undefined) {
        this.log(`"wait" cannot be used with file="${file}"`)
        return SSI_ERROR
      }
      const w = wait.toLowerCase()
      if (w === 'yes') waited = true
      else if (w !== 'no') {
        this.log(`invalid value "${wait}" in the "wait" parameter`)
        return SSI_ERROR
      }
    }
    const evaluated = evaluate(this, (virtual ?? file) as string, true)
    if (evaluated === SSI_ERROR) return evaluated
    const target = unsafeUri(evaluated)
    if (target === undefined) {
      this.log(`unsafe URI "${evaluated}" was detected`)
      return SSI_ERROR
    }
    let stubText: string[] | undefined
    if (stub !== undefined) {
      stubText = this.shared.blocks.find((b) => b.name === stub)?.text
      if (stubText === undefined) {
        this.log(`"stub"="${stub}" for "include" not found`)
        return SSI_ERROR
      }
    }
    let setName: string | undefined
    if (set !== undefined) {
      setName = set.toLowerCase()
      if (!this.shared.variables.has(setName)) this.shared.variables.set(setName, '')
    }
    if (this.st.subrequestsLeft <= 0) {
      this.log(`subrequests cycle while processing "${target.path}"`)
      return SSI_ERROR
    }
    if (this.shared.subrequests >= MAX_SUBREQUESTS) {
      this.log(`request reference counter overflow while processing "${target.path}"`)
      return SSI_ERROR
    }
    this.shared.subrequests++
    const run = () => this.#subrequest(target.path, target.args, setName, stubText)
    if (!waited && setName === undefined) {
      this.#queue.push(run)
      return
    }
    await this.#flush()
    await run()
  }

  async #subrequest(uri: string, args: string, setName: string | undefined, stub: string[] | undefined): Promise<void> {
    // Bodies go straight to the output, but for `set=` (kept, up to what nginx keeps) and for a
    // `stub` include whose answer is an error (a stub may replace it once it is over).
    const held: Buffer[] = []
    let size = 0
    let streamed = false
    const sub = await runSubrequest(this.st, uri, args, (chunk, status) => {
      size += chunk.length
      if (setName === undefined && (stub === undefined || status < 300)) {
        streamed = true
        this.push(chunk.toString('latin1'))
      } else if (setName === undefined || size <= SET_BUFFER) held.push(chunk)
      else if (size - chunk.length <= SET_BUFFER) {
        // ngx_http_postpone_filter_in_memory: past the buffer the subrequest fails and takes the
        // whole answer with it; the client gets what was sent so far and a closed connection.
        this.log(`too big subrequest response: ${size}`)
        this.shared.abort()
      }
    })
    const status = sub.res.statusCode
    if (setName !== undefined) {
      // ngx_http_ssi_set_variable: the body kept in memory, when the answer is not an error.
      if (size <= SET_BUFFER && status < 300 && size > 0) this.shared.variables.set(setName, Buffer.concat(held).toString('latin1'))
      return
    }
    if (stub === undefined) return
    // ngx_http_ssi_stub_output: the block instead of an answer that failed or said nothing
    // (an answer relayed from a backend is its own, whatever its status).
    const failed = status >= 300 && sub.upstreamFields === undefined
    if (streamed) return
    if (!failed && size > 0) {
      this.push(Buffer.concat(held).toString('latin1'))
      return
    }
    const text = stub.join('')
    // A failed answer has no head yet: the stub gets the document's type and goes through the
    // subrequest's SSI filter. An empty one already had its head, without the filter (a known
    // empty body is not filtered), so its stub goes out as written.
    if (failed && sub.conf.ssi.on) {
      const doc = new SsiDocument(sub, this.shared, sub.conf.ssi, this.push)
      await doc.feed(text)
    } else this.push(text)
  }
}
