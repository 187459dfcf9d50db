import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defaultCaseDir, missingPrerequisite, readExpected, runCase } from './vtc/vtc-case.js'

// The varnish 7.1.1 test cases the router passes (vtc/expected.json "pass"), each run by
// Debian's varnishtest with the router as `varnishd`: a case that stops passing fails
// `npm test`. `npm run test:vtc` runs the rest and reports newly passing ones.

const dir = defaultCaseDir()
const missing = await missingPrerequisite(dir)
if (missing !== undefined && process.env.CI === undefined) {
  // Loud on a developer machine, where varnish or ../shared may simply not be there.
  process.stderr.write(`\n*** vtc.test: SKIPPED, ${missing}\n\n`)
}
const expected = await readExpected()
// Generous for a loaded machine: the cases take 1-10 s each on an idle one.
const CASE_TIMEOUT_S = 45

describe('varnishtest cases against caching-router (vtc/expected.json)', { concurrency: 2 }, () => {
  if (missing !== undefined) {
    if (process.env.CI !== undefined) {
      it('has varnishtest and the test cases (CI)', () => assert.fail(`CI: ${missing}`))
    } else {
      it('varnishtest cases', { skip: missing }, () => {})
    }
    return
  }
  for (const name of expected.pass) {
    it(name, async () => {
      const r = await runCase(name, { dir, timeout: CASE_TIMEOUT_S })
      if (r.outcome !== 'passed') {
        // The tail of varnishtest's log is where its failure and the router's last words are.
        assert.fail(`${name} ${r.outcome}: ${r.why}\n${r.log.split('\n').slice(-60).join('\n')}`)
      }
    })
  }
})
