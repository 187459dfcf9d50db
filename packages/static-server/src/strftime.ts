
/** The local zone's short name (%Z), formatted by one formatter made once. */
const ZONE_NAME = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' })

/**
 * C's strftime in the "C" locale (what nginx's workers run with), for SSI's `config timefmt`
 * and $date_local / $date_gmt. `local` uses this process's time zone (TZ), as nginx uses its own.
 */
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']

interface Tm {
  year: number
  mon: number
  mday: number
  wday: number
  hour: number
  min: number
  sec: number
  yday: number
  /** Minutes east of UTC. */
  offset: number
  zone: string
}

function tm(sec: number, local: boolean): Tm {
  const d = new Date(sec * 1000)
  if (!local) {
    const start = Date.UTC(d.getUTCFullYear(), 0, 1)
    return {
      year: d.getUTCFullYear(),
      mon: d.getUTCMonth(),
      mday: d.getUTCDate(),
      wday: d.getUTCDay(),
      hour: d.getUTCHours(),
      min: d.getUTCMinutes(),
      sec: d.getUTCSeconds(),
      yday: Math.floor((d.getTime() - start) / 86_400_000),
      offset: 0,
      zone: 'GMT',
    }
  }
  const start = new Date(d.getFullYear(), 0, 1)
  const zone = ZONE_NAME.formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? ''
  return {
    year: d.getFullYear(),
    mon: d.getMonth(),
    mday: d.getDate(),
    wday: d.getDay(),
    hour: d.getHours(),
    min: d.getMinutes(),
    sec: d.getSeconds(),
    yday: Math.round((new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() - start.getTime()) / 86_400_000),
    offset: -d.getTimezoneOffset(),
    zone: zone === 'UTC' ? 'UTC' : zone,
  }
}

const p2 = (n: number) => String(n).padStart(2, '0')

/** `format` with `sec` (seconds since the epoch) in GMT or local time. */
export function strftime(format: string, sec: number, local: boolean): string {
  const t = tm(sec, local)
  let out = ''
  for (let i = 0; i < format.length; i++) {
    const c = format[i] as string
    if (c !== '%' || i === format.length - 1) {
      out += c
      continue
    }
    const f = format[++i] as string
    out += conversion(f, t, sec) ?? `%${f}`
  }
  return out
}

function conversion(f: string, t: Tm, sec: number): string | undefined {
  switch (f) {
    case 'a':
      return DAYS[t.wday]?.slice(0, 3)
    case 'A':
      return DAYS[t.wday]
    case 'b':
    case 'h':
      return MONTHS[t.mon]?.slice(0, 3)
    case 'B':
      return MONTHS[t.mon]
    case 'c':
      return `${DAYS[t.wday]?.slice(0, 3)} ${MONTHS[t.mon]?.slice(0, 3)} ${String(t.mday).padStart(2, ' ')} ${p2(t.hour)}:${p2(t.min)}:${p2(t.sec)} ${t.year}`
    case 'C':
      return p2(Math.floor(t.year / 100))
    case 'd':
      return p2(t.mday)
    case 'D':
      return `${p2(t.mon + 1)}/${p2(t.mday)}/${p2(t.year % 100)}`
    case 'e':
      return String(t.mday).padStart(2, ' ')
    case 'F':
      return `${t.year}-${p2(t.mon + 1)}-${p2(t.mday)}`
    case 'H':
      return p2(t.hour)
    case 'I':
      return p2(t.hour % 12 || 12)
    case 'j':
      return String(t.yday + 1).padStart(3, '0')
    case 'k':
      return String(t.hour).padStart(2, ' ')
    case 'l':
      return String(t.hour % 12 || 12).padStart(2, ' ')
    case 'm':
      return p2(t.mon + 1)
    case 'M':
      return p2(t.min)
    case 'n':
      return '\n'
    case 'p':
      return t.hour < 12 ? 'AM' : 'PM'
    case 'P':
      return t.hour < 12 ? 'am' : 'pm'
    case 'r':
      return `${p2(t.hour % 12 || 12)}:${p2(t.min)}:${p2(t.sec)} ${t.hour < 12 ? 'AM' : 'PM'}`
    case 'R':
      return `${p2(t.hour)}:${p2(t.min)}`
    case 's':
      return String(sec)
    case 'S':
      return p2(t.sec)
    case 't':
      return '\t'
    case 'T':
      return `${p2(t.hour)}:${p2(t.min)}:${p2(t.sec)}`
    case 'u':
      return String(t.wday || 7)
    case 'w':
      return String(t.wday)
    case 'x':
      return `${p2(t.mon + 1)}/${p2(t.mday)}/${p2(t.year % 100)}`
    case 'X':
      return `${p2(t.hour)}:${p2(t.min)}:${p2(t.sec)}`
    case 'y':
      return p2(t.year % 100)
    case 'Y':
      return String(t.year)
    case 'z': {
      const o = Math.abs(t.offset)
      return `${t.offset < 0 ? '-' : '+'}${p2(Math.floor(o / 60))}${p2(o % 60)}`
    }
    case 'Z':
      return t.zone
    case '%':
      return '%'
  }
  return undefined
}
