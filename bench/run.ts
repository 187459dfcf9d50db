#!/usr/bin/env node
// Placeholder until the bench harness issue lands: says so instead of pretending to measure.
process.stderr.write('bench: the harness is not written yet (see the open bench issue)\n')
process.exitCode = 1
