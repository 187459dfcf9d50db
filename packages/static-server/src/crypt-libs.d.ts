// The two crypt(3) packages ship JavaScript without types.
declare module 'apache-md5' {
  /** MD5-crypt: `$apr1$` (Apache) or `$1$` (glibc) as the setting's magic says. */
  export default function md5(password: string, setting?: string): string
}
declare module 'unix-crypt-td-js' {
  /** Traditional DES crypt(3): a two-character salt, the first eight password bytes. */
  export default function crypt(password: string | number[], salt: string | number[]): string
}
