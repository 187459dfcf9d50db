import { ConfigError, UsageError } from '@edgestack/common'
import { type BuildOptions, type BuiltModel, buildModel } from './build-model.js'

export interface SimpleFlags {
  accept: string
  connect: string
  cert: string
  key: string
}

/** The service name the flags give their one service. */
export const FLAGS_SERVICE_NAME = 'default'

/**
 * `--accept --connect --cert --key` are the stunnel.conf
 *
 *     foreground = yes
 *     [default]
 *     accept = ...  connect = ...  cert = ...  key = ...
 *
 * and go through the same builder, so both ways in give the same model.
 */
export function modelFromFlags(flags: SimpleFlags, opts: Omit<BuildOptions, 'source'> = {}): BuiltModel {
  const option = (name: string, value: string) => ({ name, value, position: undefined })
  try {
    return buildModel(
      [
        { name: undefined, position: undefined, options: [option('foreground', 'yes')] },
        {
          name: FLAGS_SERVICE_NAME,
          position: undefined,
          options: [
            option('accept', flags.accept),
            option('connect', flags.connect),
            option('cert', flags.cert),
            option('key', flags.key),
          ],
        },
      ],
      { ...opts, source: '(command line)' },
    )
  } catch (err) {
    if (err instanceof ConfigError && err.directive) throw new UsageError(`--${err.directive}: ${err.problem}`)
    throw err
  }
}
