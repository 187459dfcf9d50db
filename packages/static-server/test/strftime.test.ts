import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'
import { strftime } from '../src/strftime.js'

/**
 * SSI's timefmt goes through C's strftime in nginx; GNU date formats with the same strftime in
 * the C locale, so it is the reference here, at instants around the edges a format can get
 * wrong (single-digit days and hours, noon and midnight, the year's first and last day, a leap day).
 */
const FORMAT = '%A %a %B %b %h %d %e %m %y %Y %j %u %w %C %D %F %H %I %M %S %p %T %R %r %c %x %X %k %l %s %z %Z %% %n %t|'
const INSTANTS = [0, 1_700_000_000, 951_782_400, 1_704_067_199, 1_704_067_200, 1_709_164_800 + 12 * 3600, 1_000_000_000 + 3600 * 5]

test('strftime in GMT writes what C strftime writes (GNU date, C locale)', () => {
  for (const sec of INSTANTS) {
    const theirs = execFileSync('date', ['-u', '-d', `@${sec}`, `+${FORMAT}`], { env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' } })
      .toString()
      .replace(/\n$/, '')
    // GNU date names UTC "UTC" under -u; gmtime's tm_zone, which nginx formats, is "GMT".
    assert.equal(strftime(FORMAT, sec, false), theirs.replace(/ UTC /, ' GMT '), String(sec))
  }
})
