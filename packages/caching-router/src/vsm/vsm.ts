import { randomBytes } from 'node:crypto'
import { type FileHandle, mkdir, open, rename, rm, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { StartupError } from '@edgestack/common'

/**
 * varnishd's shared-memory directories under `-n DIR`, in 7.1's layout (common_vsmw.c): a
 * manager set `_.vsm_mgt/` and a child set `_.vsm_child/`, each an `_.index` text file that
 * begins `# PID BIRTH` and lists segments as `+ FILE OFFSET LENGTH CLASS IDENT`. Readers
 * (libvarnishapi's vsm.c: varnishtest, varnishlog, varnishstat) call a set running while
 * `kill(PID, 0)` succeeds and mmap the files the index names. Node has no mmap: the segment
 * files are written with positioned writes, which land in the page cache the readers' shared
 * mappings see.
 */
export class VsmSet {
  readonly dir: string
  readonly #lines: string[] = []
  // Fixed for the set's life: a reader takes a new BIRTH for a restarted process.
  readonly #birth = Math.floor(Date.now() / 1000)
  #indexed: Promise<void> = Promise.resolve()

  private constructor(dir: string) {
    this.dir = dir
  }

  /** Creates (or empties) `root/name` and writes its index header. */
  static async create(root: string, name: string): Promise<VsmSet> {
    const set = new VsmSet(join(root, name))
    try {
      await rm(set.dir, { recursive: true, force: true })
      await mkdir(set.dir, { recursive: true, mode: 0o750 })
      await set.#writeIndex()
    } catch (err) {
      throw new StartupError(`-n ${root}: cannot create the shared memory directory ${set.dir}: ${(err as Error).message}`, { cause: err })
    }
    return set
  }

  /**
   * A new segment file of `length` bytes (sparse), listed in the index once `fill` has
   * written its header, so a reader never maps a half-made segment.
   */
  async addSegment(kind: string, ident: string, length: number, fill: (fd: FileHandle) => Promise<void>): Promise<{ file: string; fd: FileHandle }> {
    const file = `_.${kind}.${randomBytes(8).toString('hex')}`
    const fd = await open(join(this.dir, file), 'wx+', 0o640)
    // Whole pages: readers map the file by pages (vsm.c: vsm_mapseg).
    await fd.truncate(Math.ceil(length / 4096) * 4096)
    await fill(fd)
    this.#lines.push(`+ ${file} 0 ${length} ${kind} ${ident}\n`)
    await this.#writeIndex()
    return { file, fd }
  }

  /**
   * A segment gone (common_vsmw.c VSMW_Free): out of the index first, so a reader that
   * sees the new index never maps the file, then the file.
   */
  async removeSegment(file: string): Promise<void> {
    const i = this.#lines.findIndex((l) => l.startsWith(`+ ${file} `))
    if (i === -1) return
    this.#lines.splice(i, 1)
    await this.#writeIndex()
    await unlink(join(this.dir, file)).catch(() => {})
  }

  /**
   * An `Arg` segment (mgt_main.c, mgt_cli.c): a command-line argument for readers, such as
   * `-T` (`HOST PORT` lines) and `-S` (the secret file) that `varnishadm -n DIR` looks up.
   */
  async addArg(flag: string, text: string): Promise<void> {
    const body = Buffer.from(`${text}\0`, 'latin1')
    // PRNDUP: lengths in the index are rounded up to a pointer's size.
    const length = Math.ceil(body.length / 8) * 8
    const { fd } = await this.addSegment('Arg', flag, length, async (h) => {
      await h.write(body, 0, body.length, 0)
    })
    await fd.close()
  }

  /** The set's index removed: readers see the process behind it gone (a stopped child). */
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true })
  }

  // Written whole each time, under a new inode (readers compare inode, size and mtime), one
  // at a time so that a slower earlier write never replaces a later one.
  #writeIndex(): Promise<void> {
    const next = this.#indexed.catch(() => {}).then(() => this.#replaceIndex())
    this.#indexed = next
    return next
  }

  async #replaceIndex(): Promise<void> {
    const tmp = join(this.dir, `_.index.${randomBytes(4).toString('hex')}`)
    await writeFile(tmp, `# ${process.pid} ${this.#birth}\n${this.#lines.join('')}`, { mode: 0o640 })
    await rename(tmp, join(this.dir, '_.index'))
  }
}
