/**
 * The SSI command scanner of ngx_http_ssi_filter_module (ngx_http_ssi_parse), fed the body in
 * the chunks it arrives in: a command opener or a whole command may be split anywhere across
 * them. Bytes are kept as latin1 strings (one char a byte), so multi-byte text passes intact.
 *
 * What nginx does and we do: `<!--#` opens a command; the name (32 bytes at most) and up to
 * the parameters `key="value"` / `key='value'` (keys 32 bytes, values ssi_value_length bytes,
 * a backslash keeps the next byte) end at `-->`. Anything unexpected is logged in nginx's words
 * and the rest up to the next `-->` is dropped, and the command answers with the error text.
 * A prefix of `<!--#` left at the very end of the body, and an unterminated command, are
 * dropped, as nginx drops them.
 */

/** NGX_HTTP_SSI_COMMAND_LEN and NGX_HTTP_SSI_PARAM_LEN. */
const COMMAND_LEN = 32
const PARAM_LEN = 32
const OPENER = '<!--#'

enum S {
  Text,
  /** `pending` holds a prefix of `<!--` (its length says which). */
  Opener,
  PreCommand,
  Command,
  PreParam,
  Param,
  PreEqual,
  PreValue,
  DoubleQuoted,
  Quoted,
  QuotedSymbol,
  PostParam,
  CommentEnd0,
  CommentEnd1,
  Error,
  ErrorEnd0,
  ErrorEnd1,
}

export interface SsiCommand {
  name: string
  params: [string, string][]
}

export interface ParserSink {
  text(bytes: string): void
  command(cmd: SsiCommand): void
  /** A malformed command: answered with the error text (or nothing under ssi_silent_errors). */
  error(): void
  log(message: string): void
}

const isSpace = (c: string) => c === ' ' || c === '\r' || c === '\n' || c === '\t'

export class SsiParser {
  #state = S.Text
  #pending = ''
  #name = ''
  #params: [string, string][] = []
  #key = ''
  #value = ''
  #saved: S.DoubleQuoted | S.Quoted = S.DoubleQuoted

  constructor(
    readonly valueLength: number,
    readonly sink: ParserSink,
  ) {}

  /** One chunk of the body (latin1). Text runs are handed on whole, up to a command. */
  feed(chunk: string): void {
    const sink = this.sink
    let from = 0
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as string
      switch (this.#state) {
        case S.Text: {
          const lt = chunk.indexOf('<', i)
          if (lt < 0) {
            i = chunk.length
            break
          }
          if (lt > from) sink.text(chunk.slice(from, lt))
          this.#pending = '<'
          this.#state = S.Opener
          i = lt
          from = chunk.length
          break
        }
        case S.Opener: {
          const want = OPENER[this.#pending.length] as string
          if (c === want) {
            if (this.#pending.length === 4) {
              this.#pending = ''
              this.#state = S.PreCommand
            } else this.#pending += c
          } else if (c === '<') {
            // ngx_http_ssi_parse's tag state: what was looked at is text; a new opener may start here.
            sink.text(this.#pending)
            this.#pending = '<'
          } else {
            sink.text(this.#pending)
            this.#pending = ''
            this.#state = S.Text
            from = i
            i--
          }
          break
        }
        case S.PreCommand:
          if (isSpace(c)) break
          this.#name = c
          this.#params = []
          this.#state = S.Command
          break
        case S.Command:
          if (isSpace(c)) this.#state = S.PreParam
          else if (c === '-') this.#state = S.CommentEnd0
          else if (this.#name.length === COMMAND_LEN) {
            this.#fail(`the "${this.#name}${c}..." SSI command is too long`, S.Error)
          } else this.#name += c
          break
        case S.PreParam:
          if (isSpace(c)) break
          if (c === '-') {
            this.#state = S.CommentEnd0
            break
          }
          this.#key = c
          this.#value = ''
          this.#state = S.Param
          break
        case S.Param:
          if (isSpace(c)) this.#state = S.PreEqual
          else if (c === '=') this.#state = S.PreValue
          else if (c === '-') {
            this.#key += c
            this.#fail(`invalid "${this.#key}" parameter in "${this.#name}" SSI command`, S.ErrorEnd0)
          } else if (this.#key.length === PARAM_LEN) {
            this.#fail(`too long "${this.#key}${c}..." parameter in "${this.#name}" SSI command`, S.Error)
          } else this.#key += c
          break
        case S.PreEqual:
          if (isSpace(c)) break
          if (c === '=') this.#state = S.PreValue
          else this.#fail(`unexpected "${c}" symbol after "${this.#key}" parameter in "${this.#name}" SSI command`, c === '-' ? S.ErrorEnd0 : S.Error)
          break
        case S.PreValue:
          if (isSpace(c)) break
          if (c === '"') this.#state = S.DoubleQuoted
          else if (c === "'") this.#state = S.Quoted
          else this.#fail(`unexpected "${c}" symbol before value of "${this.#key}" parameter in "${this.#name}" SSI command`, c === '-' ? S.ErrorEnd0 : S.Error)
          break
        case S.DoubleQuoted:
        case S.Quoted: {
          const quote = this.#state === S.DoubleQuoted ? '"' : "'"
          if (c === quote) {
            this.#params.push([this.#key, this.#value])
            this.#state = S.PostParam
            break
          }
          if (c === '\\') {
            this.#saved = this.#state
            this.#state = S.QuotedSymbol
          }
          this.#valueByte(c)
          break
        }
        case S.QuotedSymbol:
          this.#state = this.#saved
          this.#valueByte(c)
          break
        case S.PostParam:
          if (isSpace(c)) this.#state = S.PreParam
          else if (c === '-') this.#state = S.CommentEnd0
          else {
            const [key, value] = this.#params[this.#params.length - 1] as [string, string]
            this.#fail(`unexpected "${c}" symbol after "${value}" value of "${key}" parameter in "${this.#name}" SSI command`, S.Error)
          }
          break
        case S.CommentEnd0:
          if (c === '-') this.#state = S.CommentEnd1
          else this.#fail(`unexpected "${c}" symbol in "${this.#name}" SSI command`, S.Error)
          break
        case S.CommentEnd1:
          if (c === '>') {
            this.#state = S.Text
            from = i + 1
            sink.command({ name: this.#name, params: this.#params })
          } else this.#fail(`unexpected "${c}" symbol in "${this.#name}" SSI command`, S.Error)
          break
        case S.Error:
          if (c === '-') this.#state = S.ErrorEnd0
          break
        case S.ErrorEnd0:
          this.#state = c === '-' ? S.ErrorEnd1 : S.Error
          break
        case S.ErrorEnd1:
          if (c === '>') {
            this.#state = S.Text
            from = i + 1
            sink.error()
          } else this.#state = S.Error
          break
      }
    }
    if (this.#state === S.Text && from < chunk.length) sink.text(chunk.slice(from))
  }

  /** A value byte, unless the value is already ssi_value_length long ("too long ... value"). */
  #valueByte(c: string): void {
    if (this.#value.length === this.valueLength) {
      this.#fail(`too long "${this.#value}${c}..." value of "${this.#key}" parameter in "${this.#name}" SSI command`, S.Error)
      return
    }
    this.#value += c
  }

  #fail(message: string, next: S): void {
    this.sink.log(message)
    this.#state = next
  }
}
