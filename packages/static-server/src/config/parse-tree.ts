import { readdir, readFile } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join } from 'node:path'
import { checkValue, repeats } from './directive-rules.js'
import { checkSupported } from './directive-support.js'
import { type Context, DIRECTIVES } from './directives.js'
import { errnoText, NginxConfError } from './errors.js'
import { type Token, type Tokens, tokenize } from './tokenizer.js'

export interface Directive {
  name: string
  args: string[]
  file: string
  line: number
  /** Children of a block directive, includes already expanded. */
  block?: Directive[]
  /** The line of a block's closing `}`, where nginx reports what it checks at a block's end. */
  endLine?: number
}

/**
 * Blocks nested deeper than this are refused in one line. nginx has no limit (it compiles
 * 5,000 nested locations and overflows its stack somewhere past that); no real file comes near.
 */
export const MAX_BLOCK_DEPTH = 100
/** Files one configuration may read through include: a bound on include fan-out. */
const MAX_INCLUDED_FILES = 10_000

/** What one parse carries across blocks and included files. */
interface ParseState {
  confDir: string
  /** Files being read, outermost first: an include of one of them would never end. */
  reading: string[]
  included: number
}

/**
 * Reads an nginx.conf into a tree of directives, checked as ngx_conf_parse checks them:
 * known names, allowed context, argument count, blocks and `;`. `include` is expanded in
 * place; relative includes resolve against `confDir` (nginx's conf prefix: the directory of
 * the -c file), and globs (`conf.d/*.conf`) are read in name order, as glob(3) returns them.
 */
export async function parseTree(file: string, confDir: string, extra: string[] = [], text?: string): Promise<Directive[]> {
  const name = text === undefined ? file : 'command line'
  const state: ParseState = { confDir, reading: [name], included: 0 }
  // -g directives join the main context; nginx reads them first, so a file that sets one of
  // them again is the one told it is a duplicate.
  const seen = new Set<string>()
  const g = extra.length > 0 ? await parseBlock(new Cursor(tokenize(extra.join(' '), 'command line'), 'command line'), 'main', state, 0, true, seen) : []
  const src = text ?? (await readSource(file, file, 0))
  const top = await parseBlock(new Cursor(tokenize(src, name), name), 'main', state, 0, true, seen)
  return [...top, ...g]
}

class Cursor {
  i = 0
  /** The line of the last `}` read: a block's end. */
  closeLine = 0
  readonly tokens: Token[]
  readonly eofLine: number
  constructor(
    t: Tokens,
    readonly file: string,
  ) {
    this.tokens = t.tokens
    this.eofLine = t.eofLine
  }
  next(): Token | undefined {
    return this.tokens[this.i++]
  }
}

/**
 * One block's directives. `seen` holds the names set so far in this block's configuration
 * (an included file adds to the block that includes it), for nginx's "is duplicate".
 */
async function parseBlock(
  cur: Cursor,
  ctx: Context,
  state: ParseState,
  depth: number,
  top: boolean,
  seen = new Set<string>(),
): Promise<Directive[]> {
  const out: Directive[] = []
  for (;;) {
    const t = cur.next()
    if (!t) {
      if (!top) throw new NginxConfError('unexpected end of file, expecting "}"', cur.file, cur.eofLine)
      return out
    }
    if (t.kind === '}') {
      if (top) throw new NginxConfError('unexpected "}"', cur.file, t.line)
      cur.closeLine = t.line
      return out
    }
    if (t.kind !== 'word') throw new NginxConfError(`unexpected "${t.text}"`, cur.file, t.line)
    const args: string[] = []
    let end: Token | undefined
    for (;;) {
      const a = cur.next()
      if (!a) throw new NginxConfError('unexpected end of file, expecting ";" or "}"', cur.file, cur.eofLine)
      if (a.kind === 'word') {
        args.push(a.text)
        continue
      }
      end = a
      break
    }
    const name = t.text
    if (end.kind === '}' && ctx !== 'types' && ctx !== 'map') throw new NginxConfError('unexpected "}"', cur.file, end.line)
    if (ctx === 'types' || ctx === 'map') {
      if (end.kind !== ';') throw new NginxConfError(`unexpected "${end.text}"`, cur.file, end.line)
      // A map's `include FILE;` line reads more key/value lines (ngx_http_map calls ngx_conf_include).
      if (ctx === 'map' && name === 'include' && args.length === 1) {
        out.push(...(await include(args[0] as string, ctx, state, cur.file, t.line, depth, seen)))
        continue
      }
      out.push({ name, args, file: cur.file, line: t.line })
      continue
    }
    const spec = DIRECTIVES.get(name)
    // nginx prints the name as a C string: a NUL byte ends it.
    if (!spec) throw new NginxConfError(`unknown directive "${name.split('\0')[0]}"`, cur.file, t.line, name)
    if (!spec.contexts.includes(ctx)) {
      throw new NginxConfError(`"${name}" directive is not allowed here`, cur.file, t.line, name)
    }
    // `server` is a block in http and a one-line directive in upstream.
    // `if` in a server block only takes the rewrite module's directives (NGX_HTTP_SIF_CONF).
    const block = name === 'server' ? (ctx === 'http' ? 'server' : undefined) : name === 'if' && ctx === 'server' ? 'sif' : spec.block
    const [min, max] = name === 'server' ? (ctx === 'http' ? [0, 0] : [1, 7]) : [spec.min, spec.max]
    if (block && end.kind !== '{') {
      throw new NginxConfError(`directive "${name}" has no opening "{"`, cur.file, t.line, name)
    }
    if (!block && end.kind !== ';') {
      throw new NginxConfError(`directive "${name}" is not terminated by ";"`, cur.file, t.line, name)
    }
    if (args.length < min || args.length > max) {
      throw new NginxConfError(`invalid number of arguments in "${name}" directive`, cur.file, t.line, name)
    }
    if (name === 'include') {
      out.push(...(await include(args[0] as string, ctx, state, cur.file, t.line, depth, seen)))
      continue
    }
    const d: Directive = { name, args, file: cur.file, line: t.line }
    if (!repeats(name, ctx)) {
      const other = name === 'root' ? 'alias' : name === 'alias' ? 'root' : undefined
      if (other !== undefined && seen.has(other)) {
        throw new NginxConfError(`"${name}" directive is duplicate, "${other}" directive was specified earlier`, d.file, d.line, name)
      }
      if (seen.has(name)) throw new NginxConfError(`"${name}" directive is duplicate`, d.file, d.line, name)
      seen.add(name)
    }
    checkValue(d)
    checkSupported(d, ctx)
    if (block) {
      if (depth + 1 > MAX_BLOCK_DEPTH) {
        throw new NginxConfError(`blocks nested deeper than ${MAX_BLOCK_DEPTH} levels are not supported by static-server`, d.file, d.line, name)
      }
      d.block = await parseBlock(cur, block, state, depth + 1, false)
      d.endLine = cur.closeLine
    }
    out.push(d)
  }
}

async function include(pattern: string, ctx: Context, state: ParseState, file: string, line: number, depth: number, seen: Set<string>) {
  const full = isAbsolute(pattern) ? pattern : join(state.confDir, pattern)
  const files = /[*?[]/.test(basename(full)) ? await globDir(full) : [full]
  const out: Directive[] = []
  for (const f of files) {
    // nginx follows an include loop until its stack overflows; we name it once the file is
    // read a second time inside itself, so the errors nginx would report first still come first.
    if (state.reading.filter((r) => r === f).length > 1) {
      throw new NginxConfError(`include of "${f}" loops back to a file being read`, file, line, 'include')
    }
    if (++state.included > MAX_INCLUDED_FILES) {
      throw new NginxConfError(`more than ${MAX_INCLUDED_FILES} included files are not supported by static-server`, file, line, 'include')
    }
    const src = await readSource(f, file, line)
    state.reading.push(f)
    out.push(...(await parseBlock(new Cursor(tokenize(src, f), f), ctx, state, depth, true, seen)))
    state.reading.pop()
  }
  return out
}

async function readSource(f: string, from: string, line: number): Promise<string> {
  try {
    return await readFile(f, 'utf8')
  } catch (err) {
    const why = errnoText(err as NodeJS.ErrnoException)
    if (line === 0) throw new NginxConfError(`open() "${f}" failed (${why})`, from, 0)
    throw new NginxConfError(`open() "${f}" failed (${why})`, from, line, 'include')
  }
}

/** glob(3) on the last path component only, which is what nginx configs use. */
async function globDir(full: string): Promise<string[]> {
  const dir = dirname(full)
  const pat = basename(full)
  const re = new RegExp(
    `^${pat.replace(/[.+^${}()|\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')}$`,
  )
  const names = await readdir(dir).catch(() => [] as string[])
  return names.filter((n) => !n.startsWith('.') && re.test(n)).sort().map((n) => join(dir, n))
}
