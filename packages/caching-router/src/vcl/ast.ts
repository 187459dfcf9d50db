import type { Token } from './lexer.js'

/** `3.0` is the dialect of files without a `vcl` line (varnish 3), mapped to 4.x meanings. */
export type VclDialect = '3.0' | '4.0' | '4.1'

export interface Program {
  readonly dialect: VclDialect
  readonly decls: Decl[]
}

export type Decl = BackendDecl | ProbeDecl | AclDecl | SubDecl | ImportDecl | DirectorDecl

export interface Field {
  readonly name: Token
  /** An expression, or the fields of an inline `.probe = { ... }`. */
  readonly value: Expr | Field[]
  /** `.request = "GET / HTTP/1.1" "Host: x";`: the string lines after the first. */
  readonly more: Token[]
}

export interface BackendDecl {
  readonly kind: 'backend'
  readonly keyword: Token
  readonly name: Token
  readonly fields: Field[]
  /** `backend NAME none;` */
  readonly none?: boolean
}

export interface ProbeDecl {
  readonly kind: 'probe'
  readonly keyword: Token
  readonly name: Token
  readonly fields: Field[]
}

/** varnish 3's `director NAME TYPE { .retries = n; { .backend = b; .weight = n; } ... }`. */
export interface DirectorDecl {
  readonly kind: 'director'
  readonly keyword: Token
  readonly name: Token
  readonly type: Token
  readonly fields: Field[]
  readonly members: { start: Token; fields: Field[] }[]
}

export interface AclEntry {
  readonly negated: boolean
  readonly address: Token
  readonly mask?: Token
}

export interface AclDecl {
  readonly kind: 'acl'
  readonly name: Token
  readonly entries: AclEntry[]
}

export interface SubDecl {
  readonly kind: 'sub'
  readonly name: Token
  readonly body: Stmt[]
}

export interface ImportDecl {
  readonly kind: 'import'
  readonly module: Token
}

export type Stmt =
  | { readonly kind: 'set'; readonly keyword: Token; readonly target: Token; readonly op: Token; readonly value: Expr }
  | { readonly kind: 'unset'; readonly keyword: Token; readonly target: Token }
  | { readonly kind: 'if'; readonly branches: { cond: Expr; body: Stmt[] }[]; readonly otherwise?: Stmt[] }
  | { readonly kind: 'return'; readonly keyword: Token; readonly action: Token | undefined; readonly args: Expr[] }
  | { readonly kind: 'call'; readonly keyword: Token; readonly name: Token }
  | { readonly kind: 'action'; readonly keyword: Token; readonly args: Expr[] }
  | { readonly kind: 'new'; readonly keyword: Token; readonly name: Token; readonly ctor: Expr }
  | { readonly kind: 'expr'; readonly expr: Expr }
  /** varnish 3's `error CODE "reason";`, which is `return (synth(CODE, "reason"))` in 4.x. */
  | { readonly kind: 'error'; readonly keyword: Token; readonly args: Expr[] }

export type Expr =
  | { readonly kind: 'string'; readonly token: Token }
  | { readonly kind: 'number'; readonly token: Token }
  | { readonly kind: 'duration'; readonly token: Token }
  | { readonly kind: 'ident'; readonly token: Token }
  | {
      readonly kind: 'call'
      readonly token: Token
      readonly args: Expr[]
      readonly named: Map<string, Expr>
      /** Where each named argument's name stands (for VCC's "Unknown argument" and the like). */
      readonly names?: Map<string, Token>
      readonly end: Token
    }
  | { readonly kind: 'unary'; readonly token: Token; readonly operand: Expr }
  | { readonly kind: 'binary'; readonly token: Token; readonly left: Expr; readonly right: Expr }

/** The first token of an expression, where errors about it point. */
export function exprToken(e: Expr): Token {
  if (e.kind === 'binary') return exprToken(e.left)
  return e.token
}
