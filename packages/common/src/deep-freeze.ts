/**
 * A configuration model made read-only all the way down (fastify freezes its validated
 * options): Maps' values and plain objects are frozen; Buffers (which cannot be frozen) and
 * RegExps (whose lastIndex moves) are left as they are.
 */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !Buffer.isBuffer(value) && !(value instanceof RegExp)) {
    Object.freeze(value)
    if (value instanceof Map) for (const v of value.values()) deepFreeze(v)
    else for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
