// What every package's `bin/` file runs: the compiled CLI, or one line saying what is missing.
// npm links a workspace's bin at `npm install` only if its target exists then, and dist/ does
// not exist before the first build; so each bin is a checked-in file that comes here. Plain
// JavaScript, so that it works before `npm run build` and on any Node that can say it is too old.
import { existsSync } from 'node:fs'

const FLOOR = [22, 19]

/** Runs `dist/src/cli.js` of the package whose bin file is `binUrl`. */
export async function launch(program, binUrl) {
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (major < FLOOR[0] || (major === FLOOR[0] && minor < FLOOR[1])) {
    process.stderr.write(`${program}: needs Node.js ${FLOOR.join('.')} or later (this is ${process.version}); see README.md\n`)
    process.exitCode = 1
    return
  }
  const cli = new URL('../dist/src/cli.js', binUrl)
  if (!existsSync(cli)) {
    process.stderr.write(`${program}: not built yet: run \`npm run build\` in the repository first\n`)
    process.exitCode = 1
    return
  }
  await import(cli.href)
}
