import { ConfigError } from '@edgestack/common'

export { errnoText } from '@edgestack/common'

/**
 * A config error worded as nginx words it (`[emerg] unknown directive "x" in FILE:LINE`), so
 * people and scripts that know nginx's messages read ours unchanged. It is still a
 * ConfigError (exit 1, position kept) for the rest of edgestack.
 */
export class NginxConfError extends ConfigError {
  constructor(problem: string, file: string, line: number, directive?: string) {
    super(problem, { position: { file, line }, ...(directive ? { directive } : {}) })
    this.message = line > 0 ? `[emerg] ${problem} in ${file}:${line}` : `[emerg] ${problem}`
  }
}

