import { readdir, readFile } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join } from 'node:path'
import { type Context, DIRECTIVES } from './directives.js'
import { NginxConfError } from './errors.js'
import { type Token, tokenize } from './tokenizer.js'

export interface Directive {
  name: string
  args: string[]
  file: string
  line: number
  /** Children of a block directive, includes already expanded. */
  block?: Directive[]
}

/**
 * Reads an nginx.conf into a tree of directives, checked as ngx_conf_parse checks them:
 * known names, allowed context, argument count, blocks and `;`. `include` is expanded in
 * place; relative includes resolve against `confDir` (nginx's conf prefix: the directory of
 * the -c file), and globs (`conf.d/*.conf`) are read in name order, as glob(3) returns them.
 */
export async function parseTree(file: string, confDir: string, extra: string[] = [], text?: string): Promise<Directive[]> {
  const name = text === undefined ? file : 'command line'
  const src = text ?? (await readSource(file, file, 0))
  const top = await parseBlock(new Cursor(tokenize(src, name), name), 'main', confDir, 0)
  if (extra.length > 0) {
    // -g directives join the main context, as nginx parses them after the file.
    const g = extra.join(' ')
    top.push(...(await parseBlock(new Cursor(tokenize(g, 'command line'), 'command line'), 'main', confDir, 0)))
  }
  return top
}

class Cursor {
  i = 0
  constructor(
    readonly tokens: Token[],
    readonly file: string,
  ) {}
  next(): Token | undefined {
    return this.tokens[this.i++]
  }
  lastLine(): number {
    return this.tokens[this.tokens.length - 1]?.line ?? 1
  }
}

async function parseBlock(cur: Cursor, ctx: Context, confDir: string, depth: number, top = depth === 0): Promise<Directive[]> {
  const out: Directive[] = []
  for (;;) {
    const t = cur.next()
    if (!t) {
      if (!top) throw new NginxConfError('unexpected end of file, expecting "}"', cur.file, cur.lastLine())
      return out
    }
    if (t.kind === '}') {
      if (top) throw new NginxConfError('unexpected "}"', cur.file, t.line)
      return out
    }
    if (t.kind !== 'word') throw new NginxConfError(`unexpected "${t.text}"`, cur.file, t.line)
    const args: string[] = []
    let end: Token | undefined
    for (;;) {
      const a = cur.next()
      if (!a) throw new NginxConfError('unexpected end of file, expecting ";" or "}"', cur.file, cur.lastLine())
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
        out.push(...(await include(args[0] as string, ctx, confDir, cur.file, t.line, depth)))
        continue
      }
      out.push({ name, args, file: cur.file, line: t.line })
      continue
    }
    const spec = DIRECTIVES.get(name)
    if (!spec) throw new NginxConfError(`unknown directive "${name}"`, cur.file, t.line, name)
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
      out.push(...(await include(args[0] as string, ctx, confDir, cur.file, t.line, depth)))
      continue
    }
    const d: Directive = { name, args, file: cur.file, line: t.line }
    if (block) d.block = await parseBlock(cur, block, confDir, depth + 1, false)
    out.push(d)
  }
}

async function include(pattern: string, ctx: Context, confDir: string, file: string, line: number, depth: number) {
  if (depth > 50) throw new NginxConfError('include nesting too deep', file, line, 'include')
  const full = isAbsolute(pattern) ? pattern : join(confDir, pattern)
  const files = /[*?[]/.test(basename(full)) ? await globDir(full) : [full]
  const out: Directive[] = []
  for (const f of files) {
    const src = await readSource(f, file, line)
    out.push(...(await parseBlock(new Cursor(tokenize(src, f), f), ctx, confDir, depth + 1, true)))
  }
  return out
}

async function readSource(f: string, from: string, line: number): Promise<string> {
  try {
    return await readFile(f, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ENOENT' ? '2: No such file or directory' : e.code === 'EACCES' ? '13: Permission denied' : e.message
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
