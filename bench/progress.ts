/**
 * One progress line on stderr, rewritten in place on a terminal and printed line by line
 * otherwise (CI logs), so a run of several minutes always shows what it is doing.
 */
export class Progress {
  readonly #tty = process.stderr.isTTY === true
  readonly #t0 = Date.now()
  #last = ''
  #done = 0
  #total = 0

  /** How many measurements the run will make, for the `[i/N]` counter. */
  expect(total: number): void {
    this.#total = total
  }

  /** A measurement starts: counted, then shown. */
  measure(text: string): void {
    this.#done++
    this.step(`[${this.#done}/${this.#total}] ${text}`)
  }

  step(text: string): void {
    const line = `[${((Date.now() - this.#t0) / 1000).toFixed(0).padStart(3)} s] ${text}`
    if (this.#tty) process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`)
    else process.stderr.write(`${line}\n`)
    this.#last = line
  }

  /** A message that must stay on screen (a skipped scenario, a contender that failed). */
  note(text: string): void {
    if (this.#tty && this.#last) process.stderr.write('\r\x1b[K')
    process.stderr.write(`${text}\n`)
    if (this.#tty && this.#last) process.stderr.write(this.#last)
  }

  done(): void {
    if (this.#tty) process.stderr.write('\r\x1b[K')
  }

  elapsedS(): number {
    return (Date.now() - this.#t0) / 1000
  }
}
