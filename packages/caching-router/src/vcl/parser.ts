import type { AclEntry, Decl, Expr, Field, Program, Stmt, VclDialect } from './ast.js'
import { spanOf, type Token, tokenize } from './lexer.js'
import { type VclSource, VclError } from './source.js'

/** Deepest nesting the compiler takes (varnishd has no limit but takes minutes at 10,000 levels). */
const MAX_NESTING = 1000
const COMPARISONS = new Set(['==', '!=', '<', '>', '<=', '>=', '~', '!~'])
const ACTIONS = new Set(['synthetic', 'hash_data', 'ban'])

/**
 * Parses VCL into an AST. A file starting with `vcl 4.0;` or `vcl 4.1;` is VCL 4; a file with
 * no `vcl` line is read as varnish 3's dialect (the article's default.vcl), which varnishd 4+
 * refuses with "VCL version declaration missing" and we accept on purpose.
 */
export function parseVcl(source: VclSource | Token[], forced?: VclDialect): Program {
  return new Parser(Array.isArray(source) ? source : tokenize(source)).program(forced)
}

class Parser {
  #tokens: Token[]
  #i = 0
  #dialect: VclDialect = '4.1'
  /** Blocks, parentheses and operator chains open around the current token (see #deeper). */
  #depth = 0

  constructor(tokens: Token[]) {
    this.#tokens = tokens
  }

  program(forced?: VclDialect): Program {
    const decls: Decl[] = []
    const first = this.#peek()
    if (first.kind === 'id' && first.value === 'vcl') {
      const vcl = this.#next()
      const v = this.#next()
      if ((v.kind !== 'number' && v.kind !== 'id') || (v.value !== '4.0' && v.value !== '4.1')) {
        throw new VclError(`VCL version ${v.value} not supported.`, { source: v.source, offset: vcl.offset, length: v.offset + v.length - vcl.offset })
      }
      this.#dialect = v.value
      this.#expectOp(';')
    } else {
      this.#dialect = forced ?? '3.0'
    }
    while (this.#peek().kind !== 'eof') decls.push(this.#decl())
    return { dialect: this.#dialect, decls }
  }

  #decl(): Decl {
    const t = this.#next()
    if (t.kind === 'id') {
      switch (t.value) {
        case 'backend':
        case 'probe': {
          const name = this.#expectId()
          // `backend NAME none;` (VCL 4.1): a backend that never answers; fetches fail.
          const none = this.#peek()
          if (t.value === 'backend' && none.kind === 'id' && (none.value === 'none' || none.value === 'None')) {
            this.#next()
            this.#expectOp(';')
            return { kind: 'backend', keyword: t, name, fields: [], none: true }
          }
          return { kind: t.value, keyword: t, name, fields: this.#fields() }
        }
        case 'acl':
          return { kind: 'acl', name: this.#expectId(), entries: this.#aclEntries() }
        case 'director':
          if (this.#dialect === '3.0') return this.#director(t)
          break
        case 'sub': {
          const name = this.#expectId()
          return { kind: 'sub', name, body: this.#block() }
        }
        case 'import': {
          const module = this.#expectId()
          if (this.#peek().kind === 'id' && this.#peek().value === 'from') {
            this.#next()
            this.#expect('string')
          }
          this.#expectOp(';')
          return { kind: 'import', module }
        }
        case 'include':
          // Includes are read from disk, asynchronously, by loadVclFile() before parsing.
          throw new VclError('include needs a file: load the VCL with loadVclFile()', spanOf(t))
        case 'vcl':
          throw new VclError("The 'vcl' line must be the first thing in the file", spanOf(t))
      }
    }
    throw new VclError(`Expected one of\n\t'acl', 'sub', 'backend', 'probe', 'import', or 'vcl'\nFound: '${t.value}' at`, spanOf(t))
  }

  #fields(): Field[] {
    this.#expectOp('{')
    const fields: Field[] = []
    while (!this.#isOp('}')) {
      this.#expectOp('.')
      const name = this.#expectId()
      this.#expectOp('=')
      if (this.#isOp('{')) {
        fields.push({ name, value: this.#fields(), more: [] })
        if (this.#isOp(';')) this.#next()
        continue
      }
      const value = this.#expr()
      const more: Token[] = []
      while (this.#peek().kind === 'string') more.push(this.#next())
      this.#expectOp(';')
      fields.push({ name, value, more })
    }
    this.#next()
    return fields
  }

  #director(keyword: Token): Decl {
    const name = this.#expectId()
    const type = this.#expectId()
    this.#expectOp('{')
    const fields: Field[] = []
    const members: { start: Token; fields: Field[] }[] = []
    while (!this.#isOp('}')) {
      if (this.#isOp('{')) {
        members.push({ start: this.#peek(), fields: this.#fields() })
        continue
      }
      this.#expectOp('.')
      const field = this.#expectId()
      this.#expectOp('=')
      fields.push({ name: field, value: this.#expr(), more: [] })
      this.#expectOp(';')
    }
    this.#next()
    return { kind: 'director', keyword, name, type, fields, members }
  }

  #aclEntries(): AclEntry[] {
    this.#expectOp('{')
    const entries: AclEntry[] = []
    while (!this.#isOp('}')) {
      let negated = false
      if (this.#isOp('!')) {
        this.#next()
        negated = true
      }
      const address = this.#expect('string')
      let mask: Token | undefined
      if (this.#isOp('/')) {
        this.#next()
        mask = this.#expect('number')
      }
      this.#expectOp(';')
      entries.push(mask ? { negated, address, mask } : { negated, address })
    }
    this.#next()
    return entries
  }

  #block(): Stmt[] {
    // A block costs the compiler and the compiled closures several frames a level: it counts 4.
    this.#deeper(this.#expectOp('{'), 4)
    const body: Stmt[] = []
    while (!this.#isOp('}')) {
      if (this.#peek().kind === 'eof') this.#expectOp('}')
      body.push(this.#stmt())
    }
    this.#next()
    this.#depth -= 4
    return body
  }

  /**
   * Entering one more level of nesting at `t`. The parser, the compiler and the compiled
   * closures all recurse once per level, so a depth bomb (10,000 nested `if`s or parentheses)
   * is refused here in one positioned line instead of overflowing the stack.
   */
  #deeper(t: Token, levels = 1): void {
    this.#depth += levels
    if (this.#depth > MAX_NESTING) {
      throw new VclError(`Too deeply nested: more than ${MAX_NESTING} levels of blocks, parentheses or operators`, spanOf(t))
    }
  }

  #stmt(): Stmt {
    const t = this.#peek()
    if (t.kind === 'op' && t.value === '{') throw new VclError('Nested blocks are not supported: use if', spanOf(t))
    if (t.kind !== 'id') throw new VclError('Syntax error at', spanOf(t))
    const name = t.value
    if (name === 'if') return this.#if()
    if (name === 'set') {
      const keyword = this.#next()
      const target = this.#expectId()
      const op = this.#next()
      if (op.kind !== 'op' || !['=', '+=', '-=', '*=', '/='].includes(op.value)) {
        throw new VclError(`Expected '=' got '${op.value}'`, spanOf(op))
      }
      const value = this.#expr()
      this.#expectOp(';')
      return { kind: 'set', keyword, target, op, value }
    }
    if (name === 'unset' || (name === 'remove' && this.#dialect === '3.0')) {
      const keyword = this.#next()
      const target = this.#expectId()
      this.#expectOp(';')
      return { kind: 'unset', keyword, target }
    }
    if (name === 'return') {
      const keyword = this.#next()
      // `return;`: leave the subroutine with no action (vcc_action.c, VCL 4.1).
      if (this.#isOp(';')) {
        this.#next()
        return { kind: 'return', keyword, action: undefined, args: [] }
      }
      this.#expectOp('(')
      const action = this.#expectId()
      const args: Expr[] = []
      if (this.#isOp('(')) {
        this.#next()
        while (!this.#isOp(')')) {
          args.push(this.#expr())
          if (!this.#isOp(')')) this.#expectOp(',')
        }
        this.#next()
      }
      this.#expectOp(')')
      this.#expectOp(';')
      return { kind: 'return', keyword, action, args }
    }
    if (name === 'call') {
      const keyword = this.#next()
      const sub = this.#expectId()
      this.#expectOp(';')
      return { kind: 'call', keyword, name: sub }
    }
    if (name === 'new') {
      const keyword = this.#next()
      const id = this.#expectId()
      this.#expectOp('=')
      const ctor = this.#expr()
      this.#expectOp(';')
      return { kind: 'new', keyword, name: id, ctor }
    }
    if (name === 'error' && this.#dialect === '3.0') {
      const keyword = this.#next()
      const args: Expr[] = []
      while (!this.#isOp(';')) args.push(this.#primary())
      this.#next()
      return { kind: 'error', keyword, args }
    }
    if (name === 'purge' && this.#dialect === '3.0' && this.#tokens[this.#i + 1]?.value === ';') {
      // varnish 3: `purge;` in vcl_hit / vcl_miss drops the object and its variants.
      const keyword = this.#next()
      this.#next()
      return { kind: 'action', keyword, args: [] }
    }
    if (name === 'ban_url' && this.#dialect === '3.0' && this.#tokens[this.#i + 1]?.value === '(') {
      // varnish 3: `ban_url(regex);` is `ban("req.url ~ " + regex);`.
      const keyword = this.#next()
      this.#expectOp('(')
      const arg = this.#expr()
      this.#expectOp(')')
      this.#expectOp(';')
      return { kind: 'action', keyword, args: [arg] }
    }
    if (name === 'synthetic' && this.#dialect === '3.0' && this.#tokens[this.#i + 1]?.value !== '(') {
      // varnish 3: `synthetic "text";` without parentheses.
      const keyword = this.#next()
      const arg = this.#expr()
      this.#expectOp(';')
      return { kind: 'action', keyword, args: [arg] }
    }
    if (ACTIONS.has(name) && this.#tokens[this.#i + 1]?.value === '(') {
      const keyword = this.#next()
      this.#expectOp('(')
      const args: Expr[] = []
      while (!this.#isOp(')')) {
        args.push(this.#expr())
        if (!this.#isOp(')')) this.#expectOp(',')
      }
      this.#next()
      this.#expectOp(';')
      return { kind: 'action', keyword, args }
    }
    // Only calls stand alone as statements; anything else is an unknown action (4.x `error`).
    if (this.#tokens[this.#i + 1]?.value !== '(') throw new VclError(`Symbol not found: '${name}'`, spanOf(t))
    const expr = this.#expr()
    this.#expectOp(';')
    return { kind: 'expr', expr }
  }

  #if(): Stmt {
    this.#next()
    const branches: { cond: Expr; body: Stmt[] }[] = [{ cond: this.#condition(), body: this.#block() }]
    let otherwise: Stmt[] | undefined
    for (;;) {
      const t = this.#peek()
      if (t.kind !== 'id') break
      if (t.value === 'elseif' || t.value === 'elsif' || t.value === 'elif') {
        this.#next()
        branches.push({ cond: this.#condition(), body: this.#block() })
      } else if (t.value === 'else') {
        this.#next()
        const n = this.#peek()
        if (n.kind === 'id' && n.value === 'if') {
          this.#next()
          branches.push({ cond: this.#condition(), body: this.#block() })
        } else {
          otherwise = this.#block()
          break
        }
      } else break
    }
    return otherwise ? { kind: 'if', branches, otherwise } : { kind: 'if', branches }
  }

  #condition(): Expr {
    this.#expectOp('(')
    const e = this.#expr()
    this.#expectOp(')')
    return e
  }

  #expr(): Expr {
    const depth = this.#depth
    let left = this.#and()
    while (this.#isOp('||')) {
      const token = this.#next()
      this.#deeper(token)
      left = { kind: 'binary', token, left, right: this.#and() }
    }
    this.#depth = depth
    return left
  }

  #and(): Expr {
    const depth = this.#depth
    let left = this.#not()
    while (this.#isOp('&&')) {
      const token = this.#next()
      this.#deeper(token)
      left = { kind: 'binary', token, left, right: this.#not() }
    }
    this.#depth = depth
    return left
  }

  #not(): Expr {
    if (this.#isOp('!')) {
      const token = this.#next()
      this.#deeper(token)
      const operand = this.#not()
      this.#depth--
      return { kind: 'unary', token, operand }
    }
    const left = this.#add()
    const t = this.#peek()
    if (t.kind === 'op' && COMPARISONS.has(t.value)) {
      this.#next()
      return { kind: 'binary', token: t, left, right: this.#add() }
    }
    return left
  }

  #add(): Expr {
    const depth = this.#depth
    let left = this.#mul()
    while (this.#isOp('+') || this.#isOp('-')) {
      const token = this.#next()
      this.#deeper(token)
      left = { kind: 'binary', token, left, right: this.#mul() }
    }
    this.#depth = depth
    return left
  }

  #mul(): Expr {
    const depth = this.#depth
    let left = this.#unary()
    while (this.#isOp('*') || this.#isOp('/')) {
      const token = this.#next()
      this.#deeper(token)
      left = { kind: 'binary', token, left, right: this.#unary() }
    }
    this.#depth = depth
    return left
  }

  #unary(): Expr {
    if (this.#isOp('-')) {
      const token = this.#next()
      this.#deeper(token)
      const operand = this.#unary()
      this.#depth--
      return { kind: 'unary', token, operand }
    }
    return this.#primary()
  }

  #primary(): Expr {
    const t = this.#next()
    if (t.kind === 'op' && t.value === '(') {
      this.#deeper(t)
      const e = this.#expr()
      this.#expectOp(')')
      this.#depth--
      return e
    }
    if (t.kind === 'string') return { kind: 'string', token: t }
    if (t.kind === 'number') return { kind: 'number', token: t }
    if (t.kind === 'duration') return { kind: 'duration', token: t }
    if (t.kind === 'id') {
      if (!this.#isOp('(')) return { kind: 'ident', token: t }
      this.#next()
      const args: Expr[] = []
      const named = new Map<string, Expr>()
      const names = new Map<string, Token>()
      while (!this.#isOp(')')) {
        const n = this.#peek()
        if (n.kind === 'id' && this.#tokens[this.#i + 1]?.value === '=' && this.#tokens[this.#i + 2]?.value !== '=') {
          // VCC: a named argument given twice (vcc_expr.c's vcc_do_arg).
          if (named.has(n.value)) throw new VclError(`Argument '${n.value}' already used`, spanOf(n))
          this.#next()
          this.#next()
          names.set(n.value, n)
          named.set(n.value, this.#expr())
        } else {
          args.push(this.#expr())
        }
        if (!this.#isOp(')')) this.#expectOp(',')
      }
      const end = this.#next()
      return { kind: 'call', token: t, args, named, names, end }
    }
    throw new VclError(t.kind === 'eof' ? 'Unexpected end of file' : 'Syntax error at', spanOf(t))
  }

  #peek(): Token {
    return this.#tokens[this.#i] as Token
  }

  #next(): Token {
    const t = this.#tokens[this.#i] as Token
    if (t.kind !== 'eof') this.#i++
    return t
  }

  #isOp(value: string): boolean {
    const t = this.#peek()
    return t.kind === 'op' && t.value === value
  }

  #expectOp(value: string): Token {
    const t = this.#peek()
    if (t.kind !== 'op' || t.value !== value) {
      throw new VclError(`Expected '${value}' got '${t.kind === 'eof' ? 'EOF' : t.value}'`, spanOf(t))
    }
    return this.#next()
  }

  #expectId(): Token {
    const t = this.#peek()
    if (t.kind !== 'id') throw new VclError(`Expected an identifier got '${t.kind === 'eof' ? 'EOF' : t.value}'`, spanOf(t))
    return this.#next()
  }

  #expect(kind: 'string' | 'number'): Token {
    const t = this.#peek()
    if (t.kind !== kind) throw new VclError(`Expected a ${kind} got '${t.kind === 'eof' ? 'EOF' : t.value}'`, spanOf(t))
    return this.#next()
  }
}
