import { type CliAnswer, CLIS } from './cli-session.js'
import { VclAdminError, VclError, type VclProgram, type VclRegistry } from '../vcl/index.js'

const VCL_ARGS: Record<string, [number, number]> = {
  'vcl.load': [2, 3],
  'vcl.inline': [2, 3],
  'vcl.use': [1, 1],
  'vcl.list': [0, 1],
  'vcl.discard': [1, 1],
  'vcl.show': [1, 2],
}

/** The load-time regex warnings before the verdict, where varnishd prints VCC's warnings. */
function compiled(program: VclProgram): CliAnswer {
  return [CLIS.OK, `${program.compiled.regexNotes.map((n) => `WARNING: ${n}\n`).join('')}VCL compiled.\n`]
}

/** The vcl.* commands, answered the way varnishd's mgt_vcl.c answers them. */
export async function runVclCommand(vcl: VclRegistry | undefined, cmd: string, args: string[]): Promise<CliAnswer> {
  const [min, max] = VCL_ARGS[cmd] as [number, number]
  if (args.length < min) return [CLIS.TOOFEW, 'Too few parameters\n']
  if (args.length > max) return [CLIS.TOOMANY, 'Too many parameters\n']
  if (vcl === undefined) return [CLIS.PARAM, 'No VCL: the router was started without -f\n']
  try {
    switch (cmd) {
      case 'vcl.load':
        return compiled(await vcl.load(args[0] as string, args[1] as string))
      case 'vcl.inline':
        return compiled(await vcl.load(args[0] as string, { name: '<vcl.inline>', text: args[1] as string }))
      case 'vcl.use':
        vcl.use(args[0] as string)
        return [CLIS.OK, `VCL '${args[0]}' now active`]
      case 'vcl.list':
        return [CLIS.OK, vcl.list()]
      case 'vcl.discard':
        vcl.discard(args[0] as string)
        return [CLIS.OK, '']
      default: {
        const verbose = args[0] === '-v'
        return [CLIS.OK, vcl.show(args[verbose ? 1 : 0] as string, verbose)]
      }
    }
  } catch (err) {
    if (err instanceof VclError) return [CLIS.PARAM, `Message from VCC-compiler:\n${err.message}\nRunning VCC-compiler failed, exited with 2\nVCL compilation failed`]
    if (err instanceof VclAdminError) return [err.cliStatus, err.message]
    // An unreadable file and the like: the running VCL stays.
    return [CLIS.PARAM, (err as Error).message]
  }
}
