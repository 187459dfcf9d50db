import { createHash, randomBytes } from 'node:crypto'
import type { Readable, Writable } from 'node:stream'

/** varnishd's CLI status codes (include/vcli.h). */
export const CLIS = { SYNTAX: 100, UNKNOWN: 101, UNIMPL: 102, TOOFEW: 104, TOOMANY: 105, PARAM: 106, AUTH: 107, OK: 200, TRUNCATED: 201, CANT: 300, COMMS: 400, CLOSE: 500 } as const

export type CliAnswer = [status: number, body: string]

export interface CliSessionOptions {
  /** The secret that `auth` must prove; undefined: no challenge (varnishd's -d console). */
  secret: Buffer | undefined
  /** The banner sent after authentication (or at once without a secret). */
  banner(): string
  run(words: string[]): Promise<CliAnswer>
  /** Each command and its answer, for the log (varnishd's `Rd` / `Wr` CLI records). */
  onAnswer?(line: string, answer: CliAnswer): void
}

/** varnishd's CLI framing: a 13-byte line `%-3d %-8d\n`, the body, a newline. */
export function cliFrame(status: number, body: string): string {
  return `${String(status).padEnd(3)} ${String(Buffer.byteLength(body)).padEnd(8)}\n${body}\n`
}

/** The answer varnishadm computes: SHA-256 of challenge, NL, the secret file, challenge, NL. */
export function authResponse(challenge: string, secret: Buffer): string {
  return createHash('sha256').update(`${challenge}\n`).update(secret).update(`${challenge}\n`).digest('hex')
}

/** Bytes a command (with its here-document) may take before the session is dropped. */
const MAX_COMMAND = 1024 * 1024

/**
 * One CLI session in varnishd's protocol (vcli_serve.c), on a socket (-T, -M) or on stdin and
 * stdout (-d): the challenge and `auth`, one command a line in VAV_Parse's quoting, and the
 * here-document form `cmd ARGS << TOKEN` whose following lines up to TOKEN are the last
 * argument (how varnishtest sends `vcl.inline`). Answers go out in the order the commands came.
 */
export function serveCli(input: Readable, output: Writable, o: CliSessionOptions): void {
  input.setEncoding('latin1')
  let challenge: string | undefined
  if (o.secret !== undefined) {
    challenge = randomChallenge()
    output.write(cliFrame(CLIS.AUTH, `${challenge}\n\nAuthentication required.\n`))
  } else output.write(cliFrame(CLIS.OK, o.banner()))
  let buffered = ''
  let heredoc: { words: string[]; token: string; lines: string[]; line: string } | undefined
  let queue: Promise<void> = Promise.resolve()
  const send = (line: string, answer: () => Promise<CliAnswer>) => {
    queue = queue.then(async () => {
      const a = await answer().catch((err: Error): CliAnswer => [CLIS.CANT, err.message])
      o.onAnswer?.(line, a)
      if (output.destroyed || output.writableEnded) return
      output.write(cliFrame(a[0], a[1]))
      if (a[0] === CLIS.CLOSE) output.end()
    })
  }
  const onLine = (line: string) => {
    if (heredoc !== undefined) {
      if (line !== heredoc.token) {
        heredoc.lines.push(line)
        return
      }
      const { words, lines } = heredoc
      const full = heredoc.line
      heredoc = undefined
      send(full, () => o.run([...words, lines.map((l) => `${l}\n`).join('')]))
      return
    }
    if (line.trim() === '') return
    const words = tokenize(line)
    if (words === undefined) {
      send(line, async () => [CLIS.SYNTAX, 'Syntax Error: bad quoting\n'])
      return
    }
    if (challenge !== undefined) {
      if (words[0] === 'auth' && words[1] === authResponse(challenge, o.secret as Buffer)) {
        challenge = undefined
        send(line, async () => [CLIS.OK, o.banner()])
      } else {
        // varnishd answers anything but the right response with a fresh challenge.
        challenge = randomChallenge()
        const text = `${challenge}\n\nAuthentication required.\n`
        send(line, async () => [CLIS.AUTH, text])
      }
      return
    }
    if (words.length >= 3 && words[words.length - 2] === '<<') {
      heredoc = { words: words.slice(0, -2), token: words[words.length - 1] as string, lines: [], line }
      return
    }
    send(line, () => o.run(words))
  }
  input.on('data', (chunk: string) => {
    buffered += chunk
    let start = 0
    for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n', start)) {
      onLine(buffered.slice(start, nl).replace(/\r$/, ''))
      start = nl + 1
    }
    buffered = buffered.slice(start)
    const pending = buffered.length + (heredoc?.lines.reduce((n, l) => n + l.length + 1, 0) ?? 0)
    if (pending > MAX_COMMAND) input.destroy()
  })
}

function randomChallenge(): string {
  // 32 lower-case letters, as varnishd's mgt_cli_challenge makes.
  const bytes = randomBytes(32)
  let s = ''
  for (const b of bytes) s += String.fromCharCode(97 + (b % 26))
  return s
}

/** The CLI's words: blanks separate, double quotes group with backslash escapes (varnish's VAV_Parse). */
export function tokenize(line: string): string[] | undefined {
  const out: string[] = []
  let i = 0
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++
    if (i >= line.length) break
    let word = ''
    if (line[i] === '"') {
      i++
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) {
          const next = line[i + 1] as string
          word += next === 'n' ? '\n' : next === 't' ? '\t' : next
          i += 2
        } else word += line[i++]
      }
      if (line[i] !== '"') return undefined
      i++
    } else {
      while (i < line.length && line[i] !== ' ' && line[i] !== '\t') word += line[i++]
    }
    out.push(word)
  }
  return out
}
